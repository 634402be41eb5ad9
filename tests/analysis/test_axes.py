"""No figure pools another swept axis as repeats: analysis.axes finds the other axes (the
run's, or read off a bare frame), metric_vs_param draws them as lines or panels, and says
what a point averages."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis import RunDataError, load_run
from analysis.axes import averaged, other_axes, repeats
from analysis.plots import metric_vs_param
from tests.helpers.metric_runs import write_custom_run
from tests.helpers.plots import error_bars, legend_labels


@pytest.fixture
def trials(tmp_path: Path) -> pd.DataFrame:
    """lr x width, repeats 2, as analysis.load gives them: the swept axes in attrs."""
    return load_run(write_custom_run(tmp_path)).trials


def test_the_other_axes_are_the_runs_or_read_off_the_frame(trials: pd.DataFrame) -> None:
    assert other_axes(trials, ["lr"], "val_macro_f1") == ["width"]
    bare = pd.DataFrame(trials.to_dict("records"))  # a frame made by hand: no attrs
    assert bare.attrs == {}
    assert other_axes(bare, ["lr"], "val_macro_f1") == ["width"]
    assert other_axes(bare, ["lr", "width"], "val_macro_f1") == []
    assert repeats(bare, ["lr"]) == 4 and repeats(bare, ["lr", "width"]) == 2
    assert averaged(2) == "mean ± std over 2 repeats" and averaged(1) == "one run each"


@pytest.mark.parametrize("attrs", [True, False])
def test_metric_vs_one_param_of_two_draws_a_line_per_other_value(
    trials: pd.DataFrame, attrs: bool
) -> None:
    """The issue's call: what was titled "mean +- std over 6 seeds" pooled three widths."""
    frame = trials if attrs else pd.DataFrame(trials.to_dict("records"))
    figure = metric_vs_param(frame, "lr", "val_macro_f1")
    assert figure.get_suptitle() == "val_macro_f1 vs lr (mean ± std over 2 repeats)"
    series = error_bars(figure)
    assert set(series) == {"width=32", "width=64"}
    assert [round(y, 4) for _, y, _ in series["width=64"]] == [0.871, 0.921, 0.871]


def test_the_runs_metric_is_the_default(trials: pd.DataFrame) -> None:
    figure = metric_vs_param(trials, "width")
    assert figure.get_suptitle() == "val_macro_f1 vs width (mean ± std over 2 repeats)"
    assert set(error_bars(figure)) == {"lr=0.001", "lr=0.01", "lr=0.1"}


def test_a_panel_per_value_of_the_facet(trials: pd.DataFrame) -> None:
    figure = metric_vs_param(trials, "lr", "val_macro_f1", facet="width", title="cnn run 1")
    panels = [axes for axes in figure.axes if axes.get_visible()]
    assert [axes.get_title() for axes in panels] == ["width=32", "width=64"]
    assert figure.get_suptitle() == (
        "cnn run 1\nval_macro_f1 vs lr, a panel per width (mean ± std over 2 repeats)"
    )
    for axes, best in zip(panels, (0.901, 0.921), strict=True):
        (line,) = [c.lines[0] for c in axes.containers]
        assert max(line.get_ydata()) == pytest.approx(best)
    # The best is starred once, in its panel; one legend beside the panels.
    stars = [axes for axes in panels if any(ln.get_label() == "best" for ln in axes.get_lines())]
    assert stars == [panels[1]] and len(figure.legends) == 1
    assert panels[0].get_ylabel().startswith("val_macro_f1") and panels[1].get_ylabel() == ""


def test_a_point_never_pools_another_axis(trials: pd.DataFrame) -> None:
    with pytest.raises(RunDataError, match="the trials also sweep width: a point of the lr"):
        metric_vs_param(trials, "lr", "val_macro_f1", series=())
    bare = pd.DataFrame(trials.to_dict("records"))  # made by hand: two trials share a seed
    with pytest.raises(RunDataError, match=r"trials at lr=0.001 share seed 0: .* pool it as"):
        metric_vs_param(bare, "lr", "val_macro_f1", series=())
    one = trials[trials["width"] == 64]  # a value of the other axis kept: nothing pooled
    figure = metric_vs_param(one, "lr", "val_macro_f1", series=())
    assert "over 2 repeats" in figure.get_suptitle() and "best" in legend_labels(figure)
