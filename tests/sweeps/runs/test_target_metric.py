"""The spec's metric is checked: a trainer that reports `val_acc` where the spec scores
trials by `val_accuracy` is a warning naming what it did report, and a run where no trial
reported the metric exits 1 saying so, with ASHA as without it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers.runs import read_run, write_spec
from tests.sweeps.conftest import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("local_ray")]

REPORTED = "accuracy, epoch, epoch_time_s, loss, val_acc, val_loss"


def renamed_spec(path: Path, xs: list[int], **extra: object) -> str:
    return write_spec(
        path, name="renamed", trainer="user_trainers:reports_val_acc", dataset=None,
        base={"epochs": 2}, grid={"x": xs}, **extra,
    )  # fmt: skip


def test_a_run_where_no_trial_reported_the_metric_exits_1_naming_what_they_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = renamed_spec(tmp_path / "renamed.yaml", [1, 2])
    code = run_cli("run", spec, "--results", str(tmp_path / "results"))
    run = capsys.readouterr()
    assert code == 1, run.err
    error = (f"error: no trial reported the metric 'val_accuracy' that the spec scores trials"
             f" by; they reported: {REPORTED}")  # fmt: skip
    assert error in run.err.splitlines(), run.err
    assert "warning:" not in run.err  # the error says it once, not a line a trial as well
    assert "2 trials: 2 finished, 0 failed, 0 not run." in run.out  # every row is written
    assert re.search(r"2/2 done  \S+  x=\d  val_accuracy not reported  in", run.err), run.err
    _, trials, epochs = read_run(tmp_path / "results")
    assert set(trials["status"]) == {"TERMINATED"} and trials["val_accuracy"].isna().all()
    assert set(trials["val_acc"]) == {1 - 1 / 3, 1 - 1 / 4} and len(epochs) == 4


def test_trials_alike_without_the_metric_are_one_warning_and_the_run_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = renamed_spec(tmp_path / "some.yaml", [1, 2, 3, 4, 5])
    code = run_cli("run", spec, "--set", "renamed=[2, 3, 4, 5]",
                   "--results", str(tmp_path / "results"))  # fmt: skip
    run = capsys.readouterr()
    assert code == 0, run.err  # x=1 reported it: the run has its answer
    _, trials, _ = read_run(tmp_path / "results")
    renamed = trials[trials["x"] > 1].sort_values("trial_id")["trial_id"].tolist()
    warnings = [line for line in run.err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: 4 trials ({', '.join(renamed[:3])}, +1 more) ended without the metric"
        f" 'val_accuracy'; reported: {REPORTED}"
    ], run.err
    assert "error:" not in run.err


def test_asha_without_its_metric_stops_none_and_says_why_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Tune's own check raised on the first report without the metric ASHA stops on.
    spec = renamed_spec(tmp_path / "asha.yaml", [3, 2, 1], scheduler="asha", max_concurrent=1)
    code = run_cli("run", spec, "--results", str(tmp_path / "results"))
    run = capsys.readouterr()
    assert code == 1, run.err
    error = (f"error: no trial reported the metric 'val_accuracy' that the spec scores trials"
             f" by (so ASHA stopped none); they reported: {REPORTED}")  # fmt: skip
    assert error in run.err.splitlines(), run.err
    assert "Traceback" not in run.err and "TUNE_DISABLE_STRICT_METRIC_CHECKING" not in run.err
    _, trials, _ = read_run(tmp_path / "results")
    assert set(trials["status"]) == {"TERMINATED"} and set(trials["epochs_completed"]) == {2}
