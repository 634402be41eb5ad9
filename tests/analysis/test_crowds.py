"""Figures of many configurations (analysis.crowds): past a dozen no legend entry a
configuration, a colour bar or a legend of categories instead, the best and the worst 3 by
the metric drawn out, thick and named; read off the figures' artists."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from analysis import Run
from analysis.crowds import CROWD, extremes, palette
from analysis.figures import run_figures
from analysis.parallel import parallel_coordinates
from analysis.plots import learning_curves, metric_vs_param, png
from tests.helpers.plots import assert_drawn

CONFIGURATIONS = 1000
EPOCHS = 2


@pytest.fixture(scope="module")
def crowd() -> tuple[pd.DataFrame, pd.DataFrame]:
    """1,000 configurations of a random search: lr sampled, each its own, x batch size x
    activation; val_accuracy peaks at lr 0.05. Two epochs each, the last at val_accuracy."""
    rng = np.random.default_rng(0)
    lrs = np.exp(rng.uniform(np.log(1e-4), np.log(0.5), CONFIGURATIONS))
    trials = pd.DataFrame({
        "trial_id": [f"t{i:04d}" for i in range(CONFIGURATIONS)], "status": "TERMINATED",
        "batch_size": rng.choice([32, 64, 128, 256, 512], CONFIGURATIONS),
        "activation": rng.choice(["relu", "tanh"], CONFIGURATIONS), "lr": lrs,
        "val_accuracy": 0.97 - 0.02 * np.log10(lrs / 0.05) ** 2
                        + rng.normal(0, 0.005, CONFIGURATIONS),
    })  # fmt: skip
    trials.attrs = {"swept": ["batch_size", "activation", "lr"], "metric": "val_accuracy"}
    final = trials["val_accuracy"]
    epochs = pd.concat([
        trials[["trial_id"]].assign(epoch=epoch, train_accuracy=final - 0.1 / epoch,
                                    val_accuracy=final - 0.05 * (EPOCHS - epoch))
        for epoch in range(1, EPOCHS + 1)
    ])  # fmt: skip
    return trials, epochs


def legends(figure: Figure) -> list[list[str]]:
    """The entries of every legend, the figure's and each panel's."""
    found = [*figure.legends, *(axes.get_legend() for axes in figure.axes)]
    return [[text.get_text() for text in legend.get_texts()] for legend in found if legend]


def colour_bars(figure: Figure) -> list[str]:
    """The labels of the figure's colour bars."""
    return [axes.get_ylabel() for axes in figure.axes if axes.get_label() == "<colorbar>"]


def drawn_out(axes: Axes) -> list[tuple[float, str]]:
    """The lines drawn out of the crowd (the rest is a LineCollection): (width, style)."""
    return [(line.get_linewidth(), line.get_linestyle()) for line in axes.get_lines()
            if line.get_path_effects()]  # fmt: skip


def ranked(trials: pd.DataFrame) -> pd.DataFrame:
    return trials.sort_values("val_accuracy", ascending=False, ignore_index=True)


def test_learning_curves_of_1000_configurations(crowd: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    trials, epochs = crowd
    figure = learning_curves(trials, epochs, "lr", title="s run r1")
    assert all(len(entries) <= CROWD for entries in legends(figure))
    assert colour_bars(figure) == ["lr"]
    panel = next(axes for axes in figure.axes if axes.get_title() == "validation accuracy")
    (rest,) = [c for c in panel.collections if isinstance(c, LineCollection)]
    assert len(rest.get_segments()) == CONFIGURATIONS - 6  # every other curve, thin
    assert set(rest.get_linewidths()) == {0.7}
    assert drawn_out(panel) == [(2.4, "-")] * 3 + [(2.4, "--")] * 3
    # Each line drawn out is its trial's curve, the best first, the worst last.
    order = ranked(trials)
    chosen = [*order["trial_id"][:3], *order["trial_id"][-3:]]
    curves = epochs.set_index("trial_id")["val_accuracy"]
    for line, trial_id in zip(panel.get_lines(), chosen, strict=True):
        assert line.get_ydata().tolist() == pytest.approx(curves[trial_id].tolist())
    (named,) = [entries for entries in legends(figure) if entries[0].startswith("best")]
    assert [entry.split(":")[0] for entry in named] == [
        "best 1", "best 2", "best 3", "worst 3", "worst 2", "worst 1"]  # fmt: skip
    best = order.iloc[0]
    assert named[0].endswith(f"(val_accuracy {best['val_accuracy']:.4g})")
    assert f"batch_size={best['batch_size']}, activation={best['activation']}, lr=" in named[0]
    assert_drawn(png(figure))


def test_a_categorical_value_colours_by_a_legend_of_its_values(
    crowd: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    trials, epochs = crowd
    figure = learning_curves(trials, epochs, "activation", metrics=["val_accuracy"])
    assert colour_bars(figure) == []
    assert ["relu", "tanh"] in legends(figure)
    (panel,) = [axes for axes in figure.axes if axes.get_visible()]
    (rest,) = panel.collections
    tanh = to_rgba(figure.legends[0].legend_handles[1].get_color())
    is_tanh = trials.set_index("trial_id")["activation"].eq("tanh")
    ids = [tid for tid in trials["trial_id"] if tid not in set(ranked(trials)["trial_id"][:3])
           and tid not in set(ranked(trials)["trial_id"][-3:])]  # fmt: skip
    colours = [tuple(c) for c in rest.get_colors()]
    assert [c[:3] == tanh[:3] for c in colours] == is_tanh[ids].tolist()


def test_metric_vs_param_of_1000_configurations(crowd: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Against batch size: 1,000 lines (lr x activation, a point each), coloured by lr."""
    trials, _ = crowd
    figure = metric_vs_param(trials, "batch_size", "val_accuracy")
    assert all(len(entries) <= CROWD for entries in legends(figure))
    assert colour_bars(figure) == ["lr"]
    axes = figure.axes[0]
    lines = [line for line in axes.get_lines() if line.get_path_effects()]
    assert drawn_out(axes) == [(2.4, "-")] * 3 + [(2.4, "--")] * 3
    best = ranked(trials).iloc[0]
    assert lines[0].get_xydata().tolist() == [[best["batch_size"], best["val_accuracy"]]]
    assert "one run each" in figure.get_suptitle()


def test_parallel_coordinates_of_1000_configurations(
    crowd: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    trials, _ = crowd
    figure = parallel_coordinates(trials, ["batch_size", "activation", "lr"], "val_accuracy")
    axes = figure.axes[0]
    (rest,) = [c for c in axes.collections if isinstance(c, LineCollection)]
    assert len(rest.get_segments()) == CONFIGURATIONS - 6
    assert drawn_out(axes) == [(2.4, "-")] * 3 + [(2.4, "--")] * 3
    labels = [text.get_text() for text in axes.texts]
    assert len(labels) == 5 + 2 + CROWD // 2 + 5  # batch sizes, activations, 6 lrs, the metric
    assert colour_bars(figure) == ["val_accuracy (higher is better)"]
    assert all(len(entries) <= CROWD for entries in legends(figure))


def test_a_run_of_30_configurations_gets_crowds(make_run: Callable[..., Run]) -> None:
    """Through the run's figures: the metric and mode of the spec pick the lines drawn out."""
    rows = [{"lr": 0.001 * (i + 1), "width": w, "val_loss": 1.0 / (i + 1) + w / 1000,
             "val_accuracy": 0.5} for i in range(15) for w in (32, 64)]  # fmt: skip
    run = make_run("r", rows, grid={"width": [32, 64]}, sample={"lr": {"uniform": [0, 1]}},
                   metric="val_loss", mode="min")  # fmt: skip
    plots = {plot.name: plot.figure for plot in run_figures(run)}
    # lr is drawn: its figure of points, not lines; one figure of its 30 curves.
    assert set(plots) == {"val_loss-by-param.png", "parallel-coordinates.png",
                          "learning-curves-by-lr.png"}  # fmt: skip
    for name, figure in plots.items():
        assert all(len(entries) <= CROWD for entries in legends(figure)), name
    curves = plots["learning-curves-by-lr.png"]
    assert colour_bars(curves) == ["lr"]
    (named,) = [entries for entries in legends(curves) if entries[0].startswith("best")]
    assert named[0].startswith("best 1: width=32, lr=0.015 (val_loss ")  # the lowest loss


def test_palette_numbers_categories_and_ranks() -> None:
    numbers = palette([1, 10, 100], "lr", [0.1, 0.2, 0.3], "acc", "max")
    assert numbers.mappable is not None and numbers.title == "lr" and not numbers.categories
    assert numbers.mappable.norm.__class__.__name__ == "LogNorm"
    few = palette(["a", "b", "a"], "act", [0.1, 0.2, 0.3], "acc", "max")
    assert few.mappable is None and list(few.categories) == ["a", "b"]
    assert few.colours[0] == few.colours[2] != few.colours[1]
    names = [f"n{i}" for i in range(CROWD + 1)]
    many = palette(names, "name", list(range(CROWD + 1)), "acc", "min")
    assert many.title == "rank by acc (1 = the best)" and many.mappable is not None
    assert many.mappable.to_rgba(1) == pytest.approx(many.colours[0])  # the lowest, rank 1


def test_extremes_best_first_worst_last_nan_skipped() -> None:
    scores = [0.5, np.nan, 0.9, 0.1, 0.7, 0.3, 0.8, 0.2]
    assert extremes(scores, "max") == ([2, 6, 4], [5, 7, 3])
    assert extremes(scores, "min") == ([3, 7, 5], [4, 6, 2])
    assert extremes([0.1, 0.2, 0.3, 0.4], "max") == ([3, 2, 1], [0])  # too few for both
