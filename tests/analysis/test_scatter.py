"""The metric by each drawn parameter: the figure of a random or TPE search."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.figures import run_figures
from analysis.load import load_run
from analysis.scatter import metric_by_param
from tests.helpers.runs import trial_row, write_run

SEARCH = {
    "grid": {"optimizer": ["sgd", "adam"]},
    "sample": {
        "lr": {"loguniform": [1e-4, 1.0]},
        "momentum": {"uniform": [0.0, 0.99], "when": {"optimizer": "sgd"}},
    },
}


def searched(count: int) -> pd.DataFrame:
    """A TPE run's rows: lr drawn, momentum only where the optimizer is sgd."""
    rng = np.random.default_rng(0)
    rows = []
    for index in range(count):
        optimizer = "sgd" if index % 3 else "adam"
        lr = float(10 ** rng.uniform(-4, 0))
        momentum = float(rng.uniform(0, 0.99)) if optimizer == "sgd" else math.nan
        accuracy = 0.95 - (math.log10(lr) + 2) ** 2 / 20
        rows.append({**trial_row(f"t{index:03d}", accuracy, optimizer=optimizer, lr=lr,
                                 momentum=momentum), "config_index": index})  # fmt: skip
    return pd.DataFrame(rows)


def test_a_panel_a_parameter_a_point_a_configuration_that_has_it() -> None:
    trials = searched(30)
    figure = metric_by_param(trials, ["optimizer", "lr", "momentum"], "val_accuracy")
    panels = [axes for axes in figure.axes if axes.get_xlabel()]
    assert [axes.get_xlabel() for axes in panels] == ["optimizer", "lr", "momentum"]
    points = {axes.get_xlabel(): len(axes.collections[0].get_offsets()) for axes in panels}
    assert points == {"optimizer": 30, "lr": 30, "momentum": 20}  # adam has no momentum
    lr_axes = panels[1]
    assert lr_axes.get_xscale() == "log"
    best = trials.loc[trials["val_accuracy"].idxmax()]
    (star,) = lr_axes.collections[1].get_offsets()
    assert star[0] == best["lr"] and star[1] == best["val_accuracy"]
    colours = lr_axes.collections[0].get_array()
    assert list(colours) == list(range(30))  # coloured by the order proposed
    assert [label.get_text() for label in panels[0].get_xticklabels()] == ["adam", "sgd"]


def test_a_search_run_gets_it_instead_of_lines_and_curves_keep_the_missing_grey(
    tmp_path: Path,
) -> None:
    run = load_run(str(write_run(tmp_path, searched(9), search="tpe", **SEARCH)))
    names = [plot.name for plot in run_figures(run)]
    assert "val_accuracy-by-param.png" in names
    assert not [name for name in names if "-vs-" in name]
    assert "learning-curves-by-momentum.png" in names  # drawn, adam's curves grey
