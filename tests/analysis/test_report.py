"""analysis.report: what `sweeps report` shows of a run written to Parquet here, before
any of it is printed: the status line, the tables, the notes, the page.
tests/sweeps/cli/test_report_*.py print reports of real sweeps."""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from analysis import Run, RunDataError, load_run
from analysis.report import build_report, figures, html_page
from tests.helpers.runs import write_run

BATCH_SIZES = {"batch_size": [64, 32, 16]}


def outcome(status: str, batch_size: int, val_accuracy: float) -> dict[str, object]:
    return {"status": status, "batch_size": batch_size, "val_accuracy": val_accuracy}


@pytest.fixture
def mixed_run(make_run: Callable[..., Run]) -> Run:
    """Three batch sizes: one finished, one diverged (with a number that measures nothing),
    one failed."""
    rows = [outcome("TERMINATED", 64, 0.9), outcome("DIVERGED", 32, 0.99),
            outcome("ERROR", 16, math.nan)]  # fmt: skip
    return make_run("r", rows, grid=BATCH_SIZES)


def with_manifest(run: Run, **manifest: object) -> Run:
    """The run read again with this manifest.json."""
    (Path(run.path) / "manifest.json").write_text(json.dumps(manifest))
    return load_run(run.path)


def test_a_finished_run_sums_up_its_trials(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path))
    report = build_report(run)
    assert report.summary() == {
        "sweep": "sweep", "id": "run-2", "path": run.path, "trials": 2, "finished": 2,
        "failed": 0, "planned": 2, "in_progress": False,
    }  # fmt: skip
    assert report.status() == "sweep run run-2: 2 trials, 2 finished, 0 failed"


def test_the_status_counts_diverged_trials_where_there_are_some(mixed_run: Run) -> None:
    report = build_report(mixed_run)
    assert report.status() == "sweep run r: 3 trials, 1 finished, 1 diverged, 1 failed"
    assert report.summary()["failed"] == 1  # a diverged trial did not fail


def test_trials_stopped_early_are_counted_and_measure_their_configuration(
    make_run: Callable[..., Run],
) -> None:
    rows = [outcome("TERMINATED", 64, 0.9), outcome("STOPPED", 32, 0.95),
            outcome("TERMINATED", 16, 0.91)]  # fmt: skip
    report = build_report(make_run("r", rows, grid=BATCH_SIZES))
    assert report.status() == "sweep run r: 3 trials, 2 finished, 1 stopped early, 0 failed"
    # Its metric is what the scheduler judged it by: it can be the best.
    assert report.best["trial_id"].tolist() == ["r-1"]


def test_the_status_of_a_run_cut_short_says_how_to_resume(mixed_run: Run) -> None:
    run = with_manifest(mixed_run, trials=5, started_at="t0", finished_at="t1")
    assert build_report(run).status() == (
        "sweep run r: 3 of 5 trials (1 finished, 1 diverged, 1 failed); the rest never ran:"
        f" `sweeps resume {run.path}`"
    )


def test_the_status_of_a_run_not_ended_says_so_before_counting_what_is_missing(
    mixed_run: Run,
) -> None:
    run = with_manifest(mixed_run, trials=5, started_at="t0")
    assert build_report(run).status() == (
        "sweep run r: 3 of 5 trials so far (1 finished, 1 diverged, 1 failed): the run has not"
        " ended (still running, or stopped without ending)"
    )
    assert build_report(run).summary()["in_progress"] is True


@pytest.mark.parametrize(
    ("grid", "repeats", "has_threshold"),
    [
        (BATCH_SIZES, 1, True),
        (BATCH_SIZES, 2, True),  # seeds are repeats, not another axis
        ({**BATCH_SIZES, "lr": [0.1]}, 1, False),  # its levels would pool two models
    ],
)
def test_a_threshold_only_where_batch_size_alone_is_swept(
    make_run: Callable[..., Run], grid: dict[str, list[float]], repeats: int, has_threshold: bool
) -> None:
    rows = [{**outcome("TERMINATED", size, 0.9 - size / 1000), "seed": 0, "lr": 0.1}
            for size in grid["batch_size"]]  # fmt: skip
    report = build_report(make_run("r", rows, grid=grid, repeats=repeats))
    assert (report.threshold is not None) is has_threshold
    tables = report.tables()
    if has_threshold:
        assert list(tables) == ["report", "threshold", "best"]
        heading, frame, sources = tables["threshold"]
        assert heading == "batch_size threshold (val_accuracy)" and sources == []
        assert frame["batch_size"].tolist() == [64, 32, 16]
    else:
        assert list(tables) == ["report", "best"]


def test_every_diverged_trial_leaves_no_threshold_to_find(make_run: Callable[..., Run]) -> None:
    rows = [outcome("DIVERGED", 64, 0.1), outcome("DIVERGED", 32, 0.2)]
    report = build_report(make_run("r", rows, grid=BATCH_SIZES))
    assert report.threshold is None and list(report.tables()) == ["report"]
    assert report.notes() == ["no best trial: all 2 configurations diverged"]


def test_every_failed_trial_keeps_the_thresholds_own_error(make_run: Callable[..., Run]) -> None:
    rows = [outcome("ERROR", 64, math.nan), outcome("ERROR", 32, math.nan)]
    with pytest.raises(RunDataError, match="no trial has both 'batch_size' and 'val_accuracy'"):
        build_report(make_run("r", rows, grid=BATCH_SIZES))


@pytest.fixture
def f1_run(make_run: Callable[..., Run]) -> Run:
    """A run whose trainer reports a metric of its own, val_macro_f1, ranking the batch
    sizes otherwise than val_accuracy does."""
    rows = [
        {**outcome("TERMINATED", size, accuracy), "val_macro_f1": f1}
        for size, accuracy, f1 in ((64, 0.9, 0.8), (32, 0.95, 0.85), (16, 0.91, 0.9))
    ]
    return make_run("r", rows, grid={"batch_size": [64, 32, 16]})  # fmt: skip


def test_a_report_covers_the_runs_metric_and_its_custom_ones(f1_run: Run) -> None:
    report = build_report(f1_run)
    assert (report.metric, report.mode, report.custom) == ("val_accuracy", "max",
                                                           ("val_macro_f1",))  # fmt: skip
    assert report.notes()[-1] == "best: r-1  batch_size=32  val_accuracy 0.9500"


def test_a_report_on_a_metric_asked_for_picks_its_best_by_it(f1_run: Run) -> None:
    report = build_report(f1_run, "val_macro_f1")
    assert report.metric == "val_macro_f1" and report.threshold is not None
    assert report.threshold.metric == "val_macro_f1"
    assert report.notes()[-1] == "best: r-2  batch_size=16  val_macro_f1 0.9000"


def test_a_metric_the_run_lacks_is_named_with_those_it_has(f1_run: Run) -> None:
    with pytest.raises(RunDataError) as caught:
        build_report(f1_run, "test_f1")
    metrics = "val_accuracy, val_macro_f1"
    assert str(caught.value) == f"no column 'test_f1' in the run; its metrics: {metrics}"


def test_the_rule_is_applied_to_each_references_own_figures(tmp_path: Path) -> None:
    references = [
        {"source": "one figure", "rows": [{"batch_size": 64, "val_accuracy": 0.95}]},
        {"source": "table A1", "rows": [{"batch_size": 64, "val_accuracy": 0.95},
                                        {"batch_size": 32, "val_accuracy": 0.9505}]},
    ]  # fmt: skip
    report = build_report(load_run(write_run(tmp_path, reference=references)))
    assert report.sources == ["one figure", "table A1"]  # ref1, ref2 in the table
    assert report.notes() == [
        "the same rule on ref2's figures: Potential threshold for insignificant accuracy"
        " change: Batch size 32 with accuracy 0.9505",  # one figure has no change to judge
        "best: t_00001  batch_size=32  val_accuracy 0.9100",
    ]


def test_the_rule_on_a_references_figures_names_it_as_the_table_does(tmp_path: Path) -> None:
    references = [
        {"source": "headline", "rows": [{"val_accuracy": 0.98}]},  # no batch size: no row
        {"source": "table A1", "rows": [{"batch_size": 64, "val_accuracy": 0.91},
                                        {"batch_size": 32, "val_accuracy": 0.92}]},
    ]  # fmt: skip
    report = build_report(load_run(write_run(tmp_path, reference=references)))
    assert report.sources == ["table A1"]
    assert report.notes()[0] == (
        "the same rule on ref1's figures: No threshold within the data: no change <= 0.001"
        " going from 64 down to 32")  # fmt: skip


def test_the_rule_on_a_references_figures_judges_the_reports_metric(
    make_run: Callable[..., Run],
) -> None:
    rows = [{**outcome("TERMINATED", size, 0.9), "val_macro_f1": f1}
            for size, f1 in ((64, 0.8), (32, 0.85))]  # fmt: skip
    # Only the macro F1 is published: on val_accuracy there would be nothing to judge.
    published = ((64, 0.8), (32, 0.8005))
    reference = {
        "source": "paper",
        "rows": [{"batch_size": b, "val_macro_f1": f} for b, f in published],
    }
    run = make_run("r", rows, grid={"batch_size": [64, 32]}, reference=[reference])
    report = build_report(run, "val_macro_f1")
    assert report.sources == ["paper"]
    assert report.notes()[0] == (
        "the same rule on ref1's figures: Potential threshold for insignificant macro f1"
        " change: Batch size 32 with macro f1 0.8005")  # fmt: skip


def test_the_best_trial_by_the_specs_metric_and_mode(make_run: Callable[..., Run]) -> None:
    rows = [{**outcome("TERMINATED", size, 0.9), "val_loss": loss}
            for size, loss in ((64, 0.3), (32, 0.2), (16, 0.25))]  # fmt: skip
    report = build_report(make_run("r", rows, grid=BATCH_SIZES, metric="val_loss", mode="min"))
    assert report.best.to_dict("records") == [
        {"trial_id": "r-1", "batch_size": 32, "val_loss": 0.2}
    ]
    assert report.notes()[-1] == "best: r-1  batch_size=32  val_loss 0.2000"
    assert report.tables()["best"][0] == "best trial"


def test_a_diverged_trial_is_never_the_best(mixed_run: Run) -> None:
    report = build_report(mixed_run)
    assert report.best["trial_id"].tolist() == ["r-0"]  # 0.9, not the diverged 0.99


@pytest.mark.parametrize(
    ("statuses", "note"),
    [
        (["DIVERGED", "ERROR"], "no best trial: no configuration finished with a finite"
                                " val_accuracy: 1 diverged, 1 failed"),
        (["ERROR", "ERROR"], "no best trial: no configuration finished with a finite"
                             " val_accuracy: 2 failed"),
        # Finished, but the metric is no number: nothing diverged or failed to name.
        (["TERMINATED", "TERMINATED"], "no best trial: no configuration finished with a"
                                       " finite val_accuracy"),
    ],
)  # fmt: skip
def test_no_best_trial_says_why(
    make_run: Callable[..., Run], statuses: list[str], note: str
) -> None:
    # lr is swept, not batch_size: no threshold, whose own error would come first.
    accuracy = {"TERMINATED": math.inf}  # finished, and no finite figure
    rows = [{"status": status, "lr": lr, "val_accuracy": accuracy.get(status, math.nan)}
            for status, lr in zip(statuses, (0.1, 0.5), strict=True)]  # fmt: skip
    report = build_report(make_run("r", rows, grid={"lr": [0.1, 0.5]}))
    assert report.best.empty and "best" not in report.tables()
    assert report.notes() == [note]


def test_figures_are_pngs_named_and_flagged_as_the_run_figures(tmp_path: Path) -> None:
    drawn = figures(build_report(load_run(write_run(tmp_path))))
    assert [(name, detail) for name, _, detail in drawn] == [
        ("val_accuracy-vs-batch_size.png", False), ("learning-curves-by-batch_size.png", False),
    ]  # fmt: skip
    assert all(data.startswith(b"\x89PNG\r\n\x1a\n") for _, data, _ in drawn)


def test_the_page_leaves_out_close_ups_and_keeps_the_thresholds_lines(tmp_path: Path) -> None:
    report = build_report(load_run(write_run(tmp_path)))
    drawn = [("val_accuracy-vs-batch_size.png", b"\x89PNG overview", False),
             ("confusion-batch_size=64.png", b"\x89PNG close-up", True)]  # fmt: skip
    page = html_page(report, drawn)
    assert re.findall(r'<figure id="([^"]+)"', page) == ["val_accuracy-vs-batch_size.png"]
    lines = [
        "Direction: higher val_accuracy is better (mode max)",
        "Change in accuracy from 32 to 64: 0.0100",
        "No threshold within the data: no change <= 0.001 going from 64 down to 32",
    ]
    assert f'<p class="lines">{html.escape(chr(10).join(lines))}</p>' in page
    # The status without the title the heading above it shows; the notes after the tables.
    assert '<p class="status">2 trials, 2 finished, 0 failed</p>' in page
    assert "best: t_00001  batch_size=32  val_accuracy 0.9100" in page
