"""analysis.confusion: a trial's matrix read and pooled, and what its figures draw (their
artists' data and text), on matrices made here."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analysis import RunDataError
from analysis.confusion import (
    accuracy,
    confusion_counts,
    confusion_grid,
    confusion_matrix,
    pooled_counts,
    row_normalised,
)
from analysis.plots import png
from tests.helpers.plots import assert_drawn

# 1,010 examples, 1,009 right: one prediction of class 0 as 1, none of 1 as 0.
RARE_ERROR = np.array([[999, 1], [0, 10]])


def panels_of(figure: Figure) -> list[Axes]:
    return [axes for axes in figure.axes if axes.get_label() != "<colorbar>"]


def test_confusion_counts_pooled_and_row_normalised(batch_trials: pd.DataFrame) -> None:
    trial = batch_trials.iloc[1].copy()
    trial["confusion"] = np.asarray(trial["confusion"], dtype=np.int64)  # as Parquet gives it
    counts = confusion_counts(trial)
    assert counts is not None and counts.shape == (10, 10) and counts[0, 0] == 975
    pooled = pooled_counts(batch_trials)  # the failed trial's None left out
    assert pooled is not None and pooled[0, 0] == 970 + 975 + 965 + 955 + 940
    rates = row_normalised(np.array([[3, 1], [0, 0]]))
    assert rates.tolist() == [[0.75, 0.25], [0.0, 0.0]]
    with pytest.raises(RunDataError, match="7 values, not a square"):
        confusion_counts({"trial_id": "x", "confusion": [1] * 7})


@pytest.mark.parametrize("trial", [{"trial_id": "t"}, {"confusion": None}, {"confusion": math.nan}])
def test_a_trial_without_a_matrix_has_none(trial: dict[str, object]) -> None:
    assert confusion_counts(trial) is None


def test_an_empty_matrix_is_no_square_and_names_the_trial() -> None:
    with pytest.raises(RunDataError) as caught:
        confusion_counts({"trial_id": "t_00007", "confusion": []})
    assert str(caught.value) == "trial 't_00007': confusion has 0 values, not a square"


def test_trials_without_matrices_pool_to_none() -> None:
    trials = pd.DataFrame({"trial_id": ["t0", "t1"], "val_accuracy": [0.9, 0.8]})
    assert pooled_counts(trials) is None
    assert pooled_counts(trials.assign(confusion=[None, None])) is None


def test_matrices_of_different_sizes_do_not_pool() -> None:
    trials = pd.DataFrame({"trial_id": ["t0", "t1"], "confusion": [[1, 0, 0, 1], [1] * 9]})
    with pytest.raises(RunDataError, match="the trials' confusion matrices differ in size"):
        pooled_counts(trials)


def test_accuracy_is_the_diagonal_share_and_nan_without_examples() -> None:
    assert accuracy(RARE_ERROR) == pytest.approx(1009 / 1010)
    assert math.isnan(accuracy(np.zeros((3, 3), dtype=int)))


def test_confusion_figures_share_one_scale() -> None:
    counts = np.array([[8, 2, 0], [1, 9, 0], [0, 0, 10]])
    panels = [("batch_size=16", counts, 2), ("batch_size=64", counts * 10, 1)]
    figure = confusion_grid(panels, title="s run r1")
    images = [axes.get_images()[0] for axes in figure.axes if axes.get_images()]
    assert len(images) == 2 and {image.get_clim() for image in images} == {(0.0, 1.0)}
    # Row-normalised: the same matrix at ten times the counts is the same picture.
    assert np.array_equal(images[0].get_array(), images[1].get_array())
    assert images[0].get_array()[0].tolist() == [0.8, 0.2, 0.0]
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert texts[:3] == ["0.80", "0.20", ""]  # a cell no prediction reached is blank
    assert figure.axes[0].get_title() == (
        "batch_size=16\naccuracy 0.9000 (30 examples, 2 seeds pooled)")  # fmt: skip
    colour_bars = [axes for axes in figure.axes if axes.get_label() == "<colorbar>"]
    assert len(colour_bars) == 1
    single = confusion_matrix(counts, "batch_size=16", title="s run r1")
    assert single.get_suptitle() == "s run r1\nconfusion matrix, rows normalised"
    assert_drawn(png(single))


def test_a_rare_prediction_keeps_its_text_where_no_prediction_is_blank() -> None:
    figure = confusion_matrix(RARE_ERROR, "batch_size=64")
    (axes,) = panels_of(figure)
    # 1 of 1,000 rounds to 0.00 and still shows: only a count of 0 is blank.
    assert [text.get_text() for text in axes.texts] == ["1.00", "0.00", "", "1.00"]


def test_one_matrix_is_captioned_with_its_accuracy_and_pooled_seeds() -> None:
    figure = confusion_matrix(RARE_ERROR, "batch_size=64", runs=3)
    (axes,) = panels_of(figure)
    assert axes.get_title() == "batch_size=64\naccuracy 0.9990 (1,010 examples, 3 seeds pooled)"
    assert figure.get_suptitle() == "batch_size=64"  # untitled: headed by its label
    (colour_bar,) = [axes for axes in figure.axes if axes.get_label() == "<colorbar>"]
    assert colour_bar.get_ylabel() == "share of the true class"
    one_run = panels_of(confusion_matrix(RARE_ERROR, "batch_size=64"))[0]
    assert one_run.get_title().endswith("(1,010 examples)")


def test_a_grid_wraps_after_four_panels_and_hides_the_spare_axes() -> None:
    small = np.eye(3, dtype=int) * 5
    wide = np.eye(7, dtype=int) * 5  # more than six classes: smaller cell text
    panels = [(f"lr={index}", small, 1) for index in range(4)] + [("lr=4", wide, 1)]
    figure = confusion_grid(panels)
    grid = panels_of(figure)
    assert len(grid) == 8 and [axes.get_visible() for axes in grid] == [True] * 5 + [False] * 3
    assert figure.get_suptitle() == "confusion matrices, rows normalised, 5 configurations"
    assert {text.get_fontsize() for text in grid[0].texts} == {9}
    assert {text.get_fontsize() for text in grid[4].texts} == {7}
    assert len(panels_of(confusion_grid(panels, columns=2))) == 6  # 3 rows of 2


def test_a_grid_of_no_panels_says_no_trial_has_a_matrix() -> None:
    with pytest.raises(RunDataError, match="no trial has a confusion matrix"):
        confusion_grid([])
