"""`sweeps` as a user runs it: the console script in its own process, its own Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers.processes import interrupted
from tests.sweeps.conftest import plugin_env

pytestmark = pytest.mark.slow

TRIAL_COLUMNS = [
    "run_id", "trial_id", "bundle_id", "status", "error", "train_loss", "train_accuracy",
    "val_loss", "val_accuracy", "test_loss", "test_accuracy", "train_time_s", "params",
    "epochs_completed", "device", "gpu_fraction", "confusion", "started_at", "finished_at",
]  # fmt: skip
EPOCH_COLUMNS = ["run_id", "trial_id", "epoch", "train_loss", "train_accuracy", "val_loss",
                 "val_accuracy", "epoch_time_s"]  # fmt: skip
SWEEPS = [sys.executable, "-m", "sweeps"]


def test_quickstart_writes_the_documented_layout(tmp_path: Path) -> None:
    completed = subprocess.run(
        [*SWEEPS, "run", "quickstart", "--results", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    (run_dir,) = (tmp_path / "quickstart").iterdir()
    assert "8 trials: 8 finished, 0 failed, 0 not run" in completed.stdout

    spec = yaml.safe_load((run_dir / "spec.yaml").read_text())
    assert spec["name"] == "quickstart" and spec["resources"]["gpus"] == 0.0  # resolved
    manifest = json.loads((run_dir / "manifest.json").read_text())
    for key in ("python", "torch", "ray", "sweeps", "host", "devices", "started_at",
                "finished_at", "ray_address"):  # fmt: skip
        assert manifest[key], key
    assert manifest["run_id"] == run_dir.name

    trials = pd.read_parquet(run_dir / "trials")
    assert set(TRIAL_COLUMNS) <= set(trials.columns)
    assert {"batch_size", "activation", "lr", "hidden", "dataset"} <= set(trials.columns)
    assert len(trials) == 8 and set(trials["status"]) == {"TERMINATED"}
    assert sorted(trials["batch_size"]) == [8, 16, 32, 64, 128, 256, 512, 1024]
    assert trials["trial_id"].is_unique and set(trials["run_id"]) == {run_dir.name}
    assert all(len(c) == 100 and sum(c) == 300 for c in trials["confusion"])
    assert set(trials["device"]) == {"cpu"} and set(trials["gpu_fraction"]) == {0.0}
    assert (trials["finished_at"] > trials["started_at"]).all()
    assert trials["val_accuracy"].max() > 0.85

    epochs = pd.read_parquet(run_dir / "epochs")
    assert list(epochs.columns) == EPOCH_COLUMNS
    assert len(epochs) == 8 * 20
    assert (epochs.groupby("trial_id")["epoch"].apply(list) == [list(range(1, 21))] * 8).all()

    report = subprocess.run(
        [*SWEEPS, "report", str(run_dir)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "160"},
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert "quickstart run" in report.stdout and "8 trials, 8 finished, 0 failed" in report.stdout
    assert "val_accuracy by batch size" in report.stdout
    assert "Change in accuracy from 512 to 1024:" in report.stdout
    assert "threshold" in report.stdout  # an answer, or why there is none
    assert "best: " in report.stdout
    plots = sorted(p.name for p in (run_dir / "plots").glob("*.png"))
    assert len(plots) == 3 + 8 and "val_accuracy-vs-batch_size.png" in plots
    assert f"plots: {len(plots)} PNG files" in report.stdout


def assert_resumes(run_dir: Path, before: pd.DataFrame, xs: list[int]) -> None:
    """`sweeps resume` finishes the run: every trial once, and the trials finished
    `before` were not run again (their started_at is unchanged)."""
    resumed = subprocess.run(
        [*SWEEPS, "resume", str(run_dir)], env=plugin_env(), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    after = pd.read_parquet(run_dir / "trials")
    assert sorted(after["x"]) == xs and after["trial_id"].is_unique
    assert set(after["status"]) == {"TERMINATED"}
    kept = after.set_index("trial_id").loc[before["trial_id"], "started_at"]
    assert list(kept) == list(before["started_at"])
    epochs = pd.read_parquet(run_dir / "epochs")
    assert (epochs.groupby("trial_id").size() == 3).all() and epochs["trial_id"].nunique() == len(
        xs
    )


def test_interrupted_run_resumes_with_each_trial_once(tmp_path: Path) -> None:
    spec = tmp_path / "sleepy.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "sleepy", "trainer": "user_trainers:steady", "dataset": None,
        "base": {"epochs": 3, "sleep_s": 0.4}, "grid": {"x": [1, 2, 3, 4, 5, 6]},
        "max_concurrent": 1,
    }))  # fmt: skip
    results = tmp_path / "results"
    command = [*SWEEPS, "run", str(spec), "--results", str(results)]
    code, stderr = interrupted(command, plugin_env(), results, "sleepy/*/trials/*.parquet", 2)
    assert code == 1, stderr
    (run_dir,) = (results / "sleepy").iterdir()
    assert f"sweeps resume {run_dir}" in stderr
    before = pd.read_parquet(run_dir / "trials")
    assert 2 <= len(before) < 6
    assert_resumes(run_dir, before, [1, 2, 3, 4, 5, 6])


def test_interrupted_fused_run_resumes_with_each_configuration_once(
    tmp_path: Path, mnist_dir: Path
) -> None:
    """Six activations in bundles of two, one bundle at a time, interrupted after the first
    bundle: resume trains the rest, the same bundles, and keeps the first."""
    results = tmp_path / "results"
    process = subprocess.Popen(
        [*SWEEPS, "run", "report-a-activations", "--results", str(results), "--epochs", "2",
         "--set", "activation=sigmoid,relu,tanh,elu,exponential,linear", "--max-bundle", "2",
         "--max-concurrent", "1", "--data-dir", str(mnist_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while not list(results.glob("*/*/trials/*.parquet")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    (run_dir,) = (results / "report-a-activations").iterdir()
    before = pd.read_parquet(run_dir / "trials")
    assert 2 <= len(before) < 6 and len(before) % 2 == 0

    resumed = subprocess.run(
        [*SWEEPS, "resume", str(run_dir), "--data-dir", str(mnist_dir)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    after = pd.read_parquet(run_dir / "trials")
    assert len(after) == 6 and after["trial_id"].is_unique
    assert sorted(after["activation"]) == sorted(
        ["sigmoid", "relu", "tanh", "elu", "exponential", "linear"]
    )
    assert set(after["status"]) == {"TERMINATED"}
    assert (after["bundle_id"].value_counts() == 2).all()
    kept = after.set_index("trial_id").loc[before["trial_id"], "started_at"]
    assert list(kept) == list(before["started_at"])
    epochs = pd.read_parquet(run_dir / "epochs")
    assert len(epochs) == 6 * 2 and epochs["trial_id"].nunique() == 6


def test_a_trainers_warning_reaches_the_terminal_once(tmp_path: Path) -> None:
    """A CUDA graph fallback is logged in the trial's process, whose output goes to files:
    the driver prints it, piped as a user's log would be, naming the trial."""
    spec = tmp_path / "warns.yaml"
    spec.write_text(yaml.safe_dump({"name": "warns", "trainer": "user_trainers:warns",
                                    "dataset": None, "base": {"epochs": 2},
                                    "grid": {"x": [1, 2]}}))  # fmt: skip
    completed = subprocess.run(
        [*SWEEPS, "run", str(spec), "--results", str(tmp_path / "results")], env=plugin_env(),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    note = "note: CUDA graphs off, training eagerly: capture failed: a stand-in (trial "
    assert completed.stderr.count(note) == 2, completed.stderr  # one per trial


def test_a_pack_killed_mid_way_resumes_what_it_had_not_finished(
    tmp_path: Path, mnist_dir: Path
) -> None:
    """Two bundles in one pack: the 1-epoch one ends first and is written at once; the
    driver is killed (-9) that moment, while the 10-epoch one trains; resume keeps the
    first and trains only the second."""
    results = tmp_path / "results"
    spec = tmp_path / "pack.yaml"
    spec.write_text(yaml.safe_dump({"name": "pack", "dataset": "mnist", "pack": "on",
                                    "max_concurrent": 1, "base": {"batch_size": 64},
                                    "grid": {"epochs": [1, 10]}}))  # fmt: skip
    process = subprocess.Popen(
        [*SWEEPS, "run", str(spec), "--results", str(results), "--data-dir", str(mnist_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while not list(results.glob("*/*/trials/*.parquet")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.005)
    process.kill()
    process.communicate(timeout=60)
    (run_dir,) = (results / "pack").iterdir()
    before = pd.read_parquet(run_dir / "trials")
    assert list(before["epochs"]) == [1] and list(before["status"]) == ["TERMINATED"]

    resumed = subprocess.run(
        [*SWEEPS, "resume", str(run_dir), "--data-dir", str(mnist_dir)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "1 of 2 configurations have results, 1 to train" in resumed.stdout + resumed.stderr
    after = pd.read_parquet(run_dir / "trials").sort_values("epochs", ignore_index=True)
    assert list(after["epochs"]) == [1, 10] and set(after["status"]) == {"TERMINATED"}
    assert after.loc[0, "started_at"] == before.loc[0, "started_at"]
    assert list(after["epochs_completed"]) == [1, 10]
    epochs = pd.read_parquet(run_dir / "epochs")
    assert len(epochs) == 11
