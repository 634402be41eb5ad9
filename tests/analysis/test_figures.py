"""analysis.figures: which figures a run gets and their file names, on runs written to
Parquet here; what each figure draws is test_plots.py's and test_confusion.py's."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from analysis import Run, find_threshold, load_run
from analysis.figures import file_label, references, run_figures
from analysis.plots import Reference, save
from analysis.tables import report_table
from tests.helpers.plots import assert_drawn, legend_labels
from tests.helpers.runs import EPOCHS, trial_row, write_run

# The spec of each run written here, besides its grid and repeats.
SPEC = {
    "metric": "val_accuracy",
    "reference": [{"source": "paper", "rows": [{"batch_size": 16, "val_accuracy": 0.9}]}],
}


def one_seed(trials: pd.DataFrame) -> pd.DataFrame:
    """batch_trials' finished trials of seed 0: one a batch size (16, 64, 256)."""
    return trials[(trials["seed"] == 0) & (trials["status"] == "TERMINATED")]


def test_file_label() -> None:
    row = {"hidden": (64, 32), "lr": 0.001, "activation": "leaky relu/x"}
    assert file_label(row, ["hidden", "lr", "activation"]) == (
        "hidden=64-32,lr=0.001,activation=leaky_relu_x")  # fmt: skip


@pytest.mark.parametrize(
    ("row", "keys", "label"),
    [
        ({"lr": 1e-05, "epochs": 20.0}, ["lr", "epochs"], "lr=1e-05,epochs=20"),
        ({"hidden": [128]}, ["hidden"], "hidden=128"),  # a list as Parquet gives it back
        ({"lr": 0.1}, [], "all"),  # nothing swept
    ],
)
def test_file_label_values_as_a_line_shows_them(
    row: dict[str, object], keys: list[str], label: str
) -> None:
    assert file_label(row, keys) == label


def test_file_label_tells_a_value_from_those_beside_it() -> None:
    row = {"lr": 0.0123456}
    assert file_label(row, ["lr"]) == "lr=0.01235"  # alone: four digits
    # Two sampled learning rates alike to four digits still name two files.
    assert file_label(row, ["lr"], {"lr": [0.0123456, 0.0123499]}) == "lr=0.012346"


def test_references_giving_the_metric_are_numbered_and_marked_when_measured_otherwise(
    make_run: Callable[..., Run],
) -> None:
    settings = {"dataset": "digits", "epochs": 1}
    rows = [{"batch_size": 64, "val_accuracy": 0.9}]
    spec = {"dataset": "digits", "base": {"epochs": 1}, "grid": {"batch_size": [64]},
            "reference": [
                {"source": "losses only", "settings": settings,
                 "rows": [{"batch_size": 64, "val_loss": 0.3}]},
                {"source": "same settings", "settings": settings, "rows": rows},
                {"source": "report", "settings": {**settings, "epochs": 20}, "rows": rows},
                {"rows": rows},  # no source, no settings: a run saved before they had them
            ]}  # fmt: skip
    run = make_run("r", [{"batch_size": 64, "val_accuracy": 0.8}], **spec)
    assert references(run, "val_accuracy") == [
        Reference("ref1: same settings", tuple(rows)),
        Reference("ref2 (other settings): report", tuple(rows)),
        Reference("ref3: reference", tuple(rows)),
    ]
    assert [ref.label for ref in references(run, "val_loss")] == ["ref1: losses only"]


def test_references_are_numbered_as_the_reports_table_numbers_them(tmp_path: Path) -> None:
    # The headline names no batch size: the table has no row for it, and no number.
    headline = {"source": "headline", "rows": [{"val_accuracy": 0.98}]}
    table = {"source": "table A1", "rows": [{"batch_size": 64, "val_accuracy": 0.91},
                                            {"batch_size": 32, "val_accuracy": 0.92}]}  # fmt: skip
    run = load_run(write_run(tmp_path, reference=[headline, table]))
    assert report_table(run.trials, run.spec, run.swept)[2] == ["table A1"]  # its ref1
    assert [ref.label for ref in references(run, "val_accuracy")] == [
        "not in the table: headline", "ref1: table A1"]  # fmt: skip
    figure = next(run_figures(run)).figure
    assert [label for label in legend_labels(figure) if "table" in label] == ["ref1: table A1"]


def test_run_figures_through_parquet(batch_trials: pd.DataFrame, tmp_path: Path) -> None:
    """A run read back from Parquet (lists as tuples): every figure, named by configuration."""
    grid = {"batch_size": [256, 64, 16]}
    run = load_run(write_run(tmp_path, batch_trials, grid, epochs=EPOCHS, repeats=3, **SPEC))
    plots = list(run_figures(run))
    assert [p.name for p in plots] == [
        "val_accuracy-vs-batch_size.png", "learning-curves-by-batch_size.png",
        "confusion-grid.png", "confusion-batch_size=16.png", "confusion-batch_size=64.png",
        "confusion-batch_size=256.png",
    ]  # fmt: skip
    assert [p.detail for p in plots] == [False, False, False, True, True, True]
    for plot in plots:
        assert plot.figure.get_suptitle().startswith("sweep run r1\n"), plot.name
    assert "ref1: paper" in legend_labels(plots[0].figure)
    for plot in plots[:3]:
        assert_drawn(save(plot.figure, tmp_path / "plots" / plot.name))


def test_run_figures_of_a_two_axis_grid(grid_trials: pd.DataFrame, tmp_path: Path) -> None:
    grid = {"lr": [0.01, 0.1], "activation": ["tanh", "relu"]}
    run = load_run(write_run(tmp_path, grid_trials, grid, epochs=EPOCHS, **SPEC))
    names = [p.name for p in run_figures(run)]
    assert names[:5] == ["val_accuracy-vs-lr.png", "val_accuracy-vs-activation.png",
                         "parallel-coordinates.png", "learning-curves-by-lr.png",
                         "learning-curves-by-activation.png"]  # fmt: skip
    assert "confusion-lr=0.1,activation=tanh.png" in names and len(names) == 5 + 1 + 4


def test_confusions_follow_the_grids_order_of_categories(
    grid_trials: pd.DataFrame, tmp_path: Path
) -> None:
    grid = {"lr": [0.1, 0.01], "activation": ["relu", "tanh"]}
    run = load_run(write_run(tmp_path, grid_trials, grid, epochs=EPOCHS))
    names = [p.name for p in run_figures(run) if p.detail]
    # Numbers ascending whatever the grid's order; categories in the grid's.
    assert names == [
        "confusion-lr=0.01,activation=relu.png", "confusion-lr=0.01,activation=tanh.png",
        "confusion-lr=0.1,activation=relu.png", "confusion-lr=0.1,activation=tanh.png",
    ]  # fmt: skip


def test_run_figures_when_every_trial_failed(batch_trials: pd.DataFrame, tmp_path: Path) -> None:
    failed = batch_trials[batch_trials["status"] == "ERROR"]
    run = load_run(write_run(tmp_path, failed, {"batch_size": [64]}, **SPEC))
    assert list(run_figures(run)) == []


def test_a_run_sweeping_nothing_gets_its_curves_and_one_matrix(
    make_run: Callable[..., Run],
) -> None:
    run = make_run("r", [trial_row("t0", 0.95, seed=0)], dataset="digits", base={"epochs": 3})
    plots = list(run_figures(run))
    assert [(p.name, p.detail) for p in plots] == [
        ("learning-curves.png", False), ("confusion-all.png", False),  # no grid: not a close-up
    ]  # fmt: skip
    assert plots[1].figure.axes[0].get_title().startswith("all trials\naccuracy ")


def test_a_run_of_repeats_alone_colours_its_curves_by_seed(make_run: Callable[..., Run]) -> None:
    rows = [trial_row(f"t{seed}", 0.95, seed=seed) for seed in (0, 1)]
    run = make_run("r", rows, repeats=2)
    plots = {plot.name: plot.figure for plot in run_figures(run)}
    assert list(plots) == ["learning-curves.png", "confusion-all.png"]
    (legend,) = plots["learning-curves.png"].legends
    assert legend.get_title().get_text() == "seed"
    assert [text.get_text() for text in legend.get_texts()] == ["0", "1"]
    assert plots["confusion-all.png"].axes[0].get_title().endswith(", 2 seeds pooled)")


@pytest.mark.parametrize(
    ("spec", "ylabel"),
    [
        ({"metric": "val_loss"}, "val_loss (lower is better)"),  # a loss: inferred
        ({"metric": "val_loss", "mode": "max"}, "val_loss (higher is better)"),  # as told
    ],
)
def test_the_specs_metric_and_mode_make_the_metric_figures(
    batch_trials: pd.DataFrame, make_run: Callable[..., Run], spec: dict[str, str], ylabel: str
) -> None:
    rows = one_seed(batch_trials).drop(columns=["confusion"]).to_dict("records")
    run = make_run("r", rows, grid={"batch_size": [16, 64, 256]}, **spec)
    (plot, *_) = run_figures(run)
    assert plot.name == "val_loss-vs-batch_size.png"
    assert plot.figure.axes[0].get_ylabel() == ylabel


def test_a_metric_the_trials_lack_draws_no_metric_figures(
    batch_trials: pd.DataFrame, make_run: Callable[..., Run]
) -> None:
    rows = one_seed(batch_trials).to_dict("records")
    grid = {"batch_size": [16, 64, 256], "activation": ["relu"]}
    run = make_run("r", rows, grid=grid, metric="test_loss")
    names = [plot.name for plot in run_figures(run) if not plot.detail]
    assert names == ["learning-curves-by-batch_size.png", "learning-curves-by-activation.png",
                     "confusion-grid.png"]  # fmt: skip


def test_epochs_without_curves_and_trials_without_matrices_draw_neither(
    batch_trials: pd.DataFrame, make_run: Callable[..., Run]
) -> None:
    rows = one_seed(batch_trials).drop(columns=["confusion"]).to_dict("records")
    run = make_run("r", rows, grid={"batch_size": [16, 64, 256]})
    bare = dataclasses.replace(run, epochs=run.epochs[["trial_id", "epoch"]])
    assert [plot.name for plot in run_figures(bare)] == ["val_accuracy-vs-batch_size.png"]


def test_the_threshold_is_marked_on_its_parameters_figure(
    batch_trials: pd.DataFrame, make_run: Callable[..., Run]
) -> None:
    rows = one_seed(batch_trials).drop(columns=["confusion"]).to_dict("records")
    run = make_run("r", rows, grid={"batch_size": [16, 64, 256]})
    threshold = find_threshold(run.trials, threshold=0.01)  # 64 -> 16 gains 0.005
    (plot, *_) = run_figures(run, threshold)
    # Without repeats the noise-aware answer is the report's: one mark for both.
    assert "threshold (report's rule, noise-aware): batch_size 16" in legend_labels(plot.figure)


def test_each_custom_metric_gets_its_figures_after_the_runs_metric(
    grid_trials: pd.DataFrame, tmp_path: Path
) -> None:
    trials = grid_trials.assign(val_macro_f1=grid_trials["val_accuracy"] - 0.1)
    grid = {"lr": [0.01, 0.1], "activation": ["tanh", "relu"]}
    run = load_run(write_run(tmp_path, trials.drop(columns=["confusion"]), grid, epochs=EPOCHS))
    names = [plot.name for plot in run_figures(run)]
    # Parallel coordinates of the run's metric only: one is enough to read the grid.
    assert names == ["val_accuracy-vs-lr.png", "val_accuracy-vs-activation.png",
                     "parallel-coordinates.png", "val_macro_f1-vs-lr.png",
                     "val_macro_f1-vs-activation.png", "learning-curves-by-lr.png",
                     "learning-curves-by-activation.png"]  # fmt: skip
    asked = [plot.name for plot in run_figures(run, metric="val_loss")]
    assert asked[:3] == ["val_loss-vs-lr.png", "val_loss-vs-activation.png",
                         "parallel-coordinates.png"]  # fmt: skip
    assert "val_accuracy-vs-lr.png" not in asked  # a built-in metric, not a custom one
