"""A real sweep whose every configuration diverges: the run's counts say so, and its report
names no threshold and no best trial, since a diverged trial's figures measure nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers.runs import read_run
from tests.sweeps.conftest import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("local_ray")]

BATCH_SIZES = ["64", "128"]


def test_a_run_where_every_configuration_diverged_has_no_threshold_and_no_best(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Exponential units at lr 1e4 overflow to inf in the first steps, then NaN (the real
    # digits, as quickstart trains them): batch_size alone is swept, so the report would
    # look for a threshold.
    code = run_cli(
        "run", "quickstart", "--epochs", "1", "--set", f"batch_size={','.join(BATCH_SIZES)}",
        "--set", "activation=exponential", "--set", "lr=1e4", "--results", str(tmp_path),
    )  # fmt: skip
    run = capsys.readouterr()
    assert code == 0, run.err  # diverging is an answer, not a failure of the run
    run_dir, trials, _ = read_run(tmp_path)
    assert list(trials["status"]) == ["DIVERGED"] * len(BATCH_SIZES)
    assert trials["val_accuracy"].notna().all()  # a number, and the report must not use it
    count = len(BATCH_SIZES)
    ended = rf"{count}/{count} ended  0 done, {count} diverged, 0 running, 0 pending, 0 failed"
    assert re.search(rf"^\d\d:\d\d:\d\d  {ended}$", run.err, re.MULTILINE), run.err
    assert f"{count} trials: 0 finished, {count} diverged, 0 failed, 0 not run." in run.out

    assert run_cli("report", str(run_dir), "--no-plots") == 0
    report = capsys.readouterr().out
    lines = report.splitlines()
    assert lines[0].endswith(f": {count} trials, 0 finished, {count} diverged, 0 failed")
    assert lines[-1] == f"no best trial: all {count} configurations diverged"
    assert not any(line.startswith("best:") for line in lines), report
    assert "threshold" not in report.lower() and "Direction" not in report, report

    assert run_cli("report", str(run_dir), "--no-plots", "--format", "json") == 0
    data = capsys.readouterr()
    assert set(json.loads(data.out)["tables"]) == {"report"}  # no threshold, no best
    assert f"no best trial: all {count} configurations diverged" in data.err.splitlines()
