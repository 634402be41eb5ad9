"""Early stops are visible: a configuration ASHA stopped is STOPPED, with the metrics of
the last epoch it trained; one whose trainer returned after fewer epochs of its own
accord is TERMINATED. A stopped one is finished: counted as such, measured by the
analysis, and not trained again by `resume`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

import analysis
from analysis.place import Place
from analysis.threshold import measured
from sweeps.record.fanout import Fanout
from sweeps.record.protocol import EPOCH, FINAL, encode
from sweeps.record.results import RunWriter
from tests.helpers.runs import frames, read_run, write_spec
from tests.sweeps.conftest import run_cli

CONFIGS = [{"x": 1}, {"x": 2}]


def epoch(number: int) -> dict[str, float]:
    return {"epoch": number, "loss": 1 / number, "accuracy": 0.5, "val_loss": 1 / number,
            "val_accuracy": 0.5 + number / 10, "train_time_s": 1.5 * number}  # fmt: skip


def test_a_trial_ended_before_its_final_report_is_stopped_with_its_last_epochs_metrics(
    tmp_path: Path,
) -> None:
    writer = RunWriter(Place.of(tmp_path), "run1", CONFIGS, 0.0)
    fanout = Fanout(CONFIGS, [[0], [1]], writer, [])
    fanout.start("stopped", [0])  # ASHA's STOP after epoch 2: Tune completes the trial
    for number in (1, 2):
        fanout.report("stopped", encode(EPOCH, [epoch(number)]))
    fanout.end("stopped", None)
    fanout.start("quit", [1])  # its trainer returned after 1 epoch, with its final report
    fanout.report("quit", encode(EPOCH, [epoch(1)]))
    fanout.report("quit", encode(FINAL, [{**epoch(1), "test_accuracy": 0.4}]))
    fanout.end("quit", None)
    trials = frames(tmp_path)[0].set_index("trial_id")
    stopped, quit = trials.loc["stopped"], trials.loc["quit"]
    assert stopped["status"] == "STOPPED" and pd.isna(stopped["error"])
    assert stopped["epochs_completed"] == 2
    assert stopped["val_accuracy"] == 0.7 and stopped["val_loss"] == 0.5
    assert stopped["train_time_s"] == 3.0  # a result column, from its last epoch
    assert quit["status"] == "TERMINATED" and quit["epochs_completed"] == 1


def test_the_analysis_measures_a_stopped_trial_as_a_finished_one() -> None:
    trials = pd.DataFrame({
        "trial_id": ["a", "b", "c", "d"], "status": ["TERMINATED", "STOPPED", "DIVERGED", "ERROR"],
        "x": [1, 1, 2, 2], "val_accuracy": [0.9, 0.8, 0.1, 0.2],
    })  # fmt: skip
    assert list(measured(trials, "val_accuracy")["trial_id"]) == ["a", "b"]
    table = analysis.config_table(trials, ["x"], ["val_accuracy"])
    assert list(table["failed"]) == [0, 2]


@pytest.mark.slow
@pytest.mark.usefixtures("local_ray")
def test_asha_stops_are_stopped_early_a_trainer_that_quits_is_done_and_resume_keeps_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One at a time, best first: each later trial is worse at the first rung (epoch 1) and
    # ASHA stops it there. x=6 trains 2 of its 4 epochs and returns, as its own early
    # stopping would: nobody stopped it.
    spec = write_spec(
        tmp_path / "asha.yaml", name="asha", trainer="user_trainers:quits_early",
        dataset=None, scheduler="asha", max_concurrent=1,
        base={"epochs": 4, "quits": [6]}, grid={"x": [6, 5, 4, 3]},
    )  # fmt: skip
    assert run_cli("run", spec, "--results", str(tmp_path / "results")) == 0
    run = capsys.readouterr()
    run_dir, trials, epochs = read_run(tmp_path / "results")
    by_x = trials.set_index("x")
    assert by_x.loc[6, "status"] == "TERMINATED" and by_x.loc[6, "epochs_completed"] == 2
    for x in (5, 4, 3):
        assert by_x.loc[x, "status"] == "STOPPED" and by_x.loc[x, "epochs_completed"] == 1
        assert by_x.loc[x, "val_accuracy"] == 1 - 1 / (1 + x)  # its epoch 1's
        assert by_x.loc[x, "train_loss"] == 1.0 and pd.isna(by_x.loc[x, "error"])
    assert len(epochs) == 2 + 3
    assert "4 trials: 1 finished, 3 stopped early, 0 failed, 0 not run." in run.out
    assert re.search(r"^\d\d:\d\d:\d\d  4/4 ended  1 done, 3 stopped early, 0 running,"
                     r" 0 pending, 0 failed$", run.err, re.MULTILINE), run.err  # fmt: skip
    stopped = re.findall(r"\d/4 stopped  \S+  x=(\d)  val_accuracy \S+ after 1 of 4 epochs",
                         run.err)  # fmt: skip
    assert sorted(stopped) == ["3", "4", "5"], run.err
    assert re.search(r"\S+ │ 5 │ stopped │ +0\.8333 │", run.out), run.out  # the summary table
    counts = json.loads((run_dir / "manifest.json").read_text())["counts"]
    assert counts == {"TERMINATED": 1, "STOPPED": 3}

    loaded = analysis.load_run(run_dir)
    assert len(measured(loaded.trials, "val_accuracy")) == 4

    assert run_cli("resume", str(run_dir)) == 0
    resumed = capsys.readouterr()
    assert "4 of 4 configurations have results, 0 to train" in resumed.err, resumed.err
    assert "4 trials: 1 finished, 3 stopped early, 0 failed, 0 not run." in resumed.out
    again, _ = frames(run_dir)
    kept = trials.set_index("trial_id")["started_at"]
    assert again.set_index("trial_id")["started_at"].equals(kept.loc[again["trial_id"]])
