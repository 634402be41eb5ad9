"""A trainer's own metrics, first class: found in a run written to Parquet here
(tests/helpers/metric_runs.py: lr x width, repeats 2, `val_macro_f1` the spec's metric and
`val_top2`), then in every table, the HTML page and every figure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis import Run, RunDataError, load_run, report_table
from analysis.figures import run_figures
from analysis.html import trials_frame
from analysis.metrics import (
    BUILT_IN,
    EPOCH_BOOKKEEPING,
    TRIAL_COLUMNS,
    custom_metrics,
    epoch_metrics,
    metric_mode,
    run_metric,
)
from analysis.plots import learning_curves
from analysis.report import build_report, html_page
from tests.helpers.metric_runs import CUSTOM, write_custom_run
from tests.helpers.plots import error_bars


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return load_run(write_custom_run(tmp_path))


def test_the_names_agree_with_the_writers() -> None:
    """analysis imports nothing of sweeps: its lists of columns mirror the writer's."""
    from sweeps.record.columns import EPOCH_SCHEMA, HEAD, METRICS

    assert set(EPOCH_SCHEMA.names) == {*BUILT_IN, *EPOCH_BOOKKEEPING} - {"sweep"}
    assert {name for name, _ in HEAD + METRICS} <= TRIAL_COLUMNS


def test_a_runs_own_metrics_are_found_per_epoch_and_at_the_end(run: Run) -> None:
    assert epoch_metrics(run.epochs) == [*BUILT_IN, *CUSTOM]
    assert custom_metrics(run.trials, run.epochs, run.config_columns) == CUSTOM
    # One reported only at the end is a trials column alone; config and flags are none.
    trials = run.trials.assign(test_f1=0.8, flag=True)
    assert custom_metrics(trials, run.epochs, run.config_columns) == [*CUSTOM, "test_f1"]
    assert custom_metrics(trials.assign(test_f1=None), config=["lr", "width", "seed", "epochs"])
    assert epoch_metrics(run.epochs.assign(lr=0.1), config=["lr"]) == [*BUILT_IN, *CUSTOM]


def test_the_metric_is_the_specs_unless_asked_and_a_missing_one_is_named(run: Run) -> None:
    assert run_metric(run) == "val_macro_f1" and run_metric(run, "val_top2") == "val_top2"
    with pytest.raises(RunDataError, match=r"no column 'val_f1' in the run; its metrics: "
                       r"train_loss, .*, val_macro_f1, val_top2$"):  # fmt: skip
        run_metric(run, "val_f1")
    assert metric_mode({"metric": "val_macro_f1", "mode": "min"}, "val_macro_f1") == "min"
    assert metric_mode({"metric": "val_macro_f1", "mode": "min"}, "val_loss") == "min"


def test_the_report_table_shows_the_metric_and_the_custom_ones_not_empty_columns(
    run: Run,
) -> None:
    title, table, _ = report_table(run.trials, run.spec, run.swept)
    assert title == "configurations"
    metrics = [c for c in table.columns if c not in ("lr", "width", "runs", "failed")
               and not c.endswith("_std")]  # fmt: skip
    assert metrics == ["val_macro_f1", "val_top2", "val_accuracy", "val_loss", "train_time_s"]
    assert "test_accuracy" not in table.columns  # no value anywhere
    _, by_top2, _ = report_table(run.trials, run.spec, run.swept, metric="val_top2")
    assert list(by_top2.columns[4:6]) == ["val_top2", "val_top2_std"]


def test_report_b_and_a_layouts_carry_the_custom_metrics_too(run: Run) -> None:
    held_out = {**run.spec, "base": {"validation_split": 0.1}}
    _, table, _ = report_table(run.trials, held_out, run.swept)
    assert {"val_macro_f1", "val_top2", "params"} <= set(table.columns)
    assert "test_accuracy" not in table.columns
    one = run.trials[(run.trials["lr"] == 0.01)].rename(columns={"width": "batch_size"})
    spec = {**run.spec, "base": {"epochs": 3, "lr": 0.01}, "grid": {"batch_size": [32, 64]}}
    title, wide, _ = report_table(one, spec, ["batch_size", "seed"])
    assert title == "val_macro_f1 by batch size"
    assert list(wide["batch_size"]) == ["val_macro_f1", "val_macro_f1_std", "val_top2",
                                        "val_top2_std"]  # fmt: skip


def test_the_best_trial_and_the_status_are_of_the_metric(run: Run) -> None:
    report = build_report(run)
    assert report.metric == "val_macro_f1" and report.custom == ("val_top2",)
    assert report.notes() == ["best: c_00009  lr=0.01  width=64  seed=1  val_macro_f1 0.9220"]
    assert build_report(run, "val_loss").notes()[0].endswith("val_loss 0.1780")


def test_the_page_covers_every_metric(run: Run) -> None:
    frame = trials_frame(run)
    assert list(frame.columns[:6]) == ["trial_id", "lr", "width", "seed", "val_macro_f1",
                                       "val_top2"]  # fmt: skip
    assert "test_accuracy" not in frame.columns
    page = html_page(build_report(run), [])
    assert "<th>val_top2</th>" in page and "0.9210 ± 0.0014" in page


def test_every_metric_gets_its_figures(run: Run) -> None:
    plots = {plot.name: plot.figure for plot in run_figures(run)}
    assert list(plots) == [
        "val_macro_f1-vs-lr.png", "val_macro_f1-vs-width.png", "parallel-coordinates.png",
        "val_top2-vs-lr.png", "val_top2-vs-width.png", "learning-curves-by-lr.png",
        "learning-curves-by-width.png",
    ]  # fmt: skip
    figure = plots["val_top2-vs-lr.png"]
    assert figure.get_suptitle() == "cnn run cnn-1\nval_top2 vs lr (mean ± std over 2 repeats)"
    assert set(error_bars(figure)) == {"width=32", "width=64"}
    asked = [plot.name for plot in run_figures(run, metric="val_loss")]
    assert asked[:2] == ["val_loss-vs-lr.png", "val_loss-vs-width.png"]


def test_learning_curves_draw_the_custom_metrics(run: Run) -> None:
    figure = learning_curves(run.trials, run.epochs, "lr")
    titles = [axes.get_title() for axes in figure.axes if axes.get_visible()]
    assert titles == ["training accuracy", "validation accuracy", "training loss",
                      "validation loss", *CUSTOM]  # fmt: skip
    panel = figure.axes[4]
    assert len(panel.get_lines()) == 12 and panel.get_ylabel() == "val_macro_f1"
    only = learning_curves(run.trials, run.epochs, None, metrics=["val_top2"])
    assert [axes.get_title() for axes in only.axes if axes.get_visible()] == ["val_top2"]
    with pytest.raises(RunDataError, match="no metric 'val_f1'; its metrics: train_loss"):
        learning_curves(run.trials, run.epochs, None, metrics=["val_f1"])


def test_a_frame_by_hand_pairs_a_train_metric_with_its_val_twin(run: Run) -> None:
    epochs = run.epochs.assign(train_macro_f1=run.epochs["val_macro_f1"] + 0.01)
    figure = learning_curves(run.trials, epochs, None, metrics=["val_macro_f1", "train_macro_f1"])
    left, right = figure.axes  # one row: training beside validation
    assert [left.get_title(), right.get_title()] == ["train_macro_f1", "val_macro_f1"]
    assert left.get_ylim() == right.get_ylim()  # one scale: the gap between them reads


def test_frames_from_load_carry_the_swept_axes_and_metric(run: Run) -> None:
    assert run.trials.attrs == {"swept": ["lr", "width", "seed"], "metric": "val_macro_f1"}
    assert pd.read_parquet(run.dir.place.path + "/trials").attrs == {}
