"""Checkpoints (sweeps.runs.checkpoints): on real Ray, `sweeps run` killed with SIGKILL in
the middle of a configuration, then `sweeps resume`d, writes the very rows an
uninterrupted run writes, and the configuration cut short trains only its remaining
epochs; a trial a configuration; the built-in trainer's only."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import torch
import yaml

from sweeps.plan.groups import configurations, plan_run
from sweeps.plan.spec import parse_spec
from tests.sweeps.conftest import plugin_env
from trainers import load_dataset, train

SWEEPS = [sys.executable, "-m", "sweeps"]
EPOCHS = 4
# Batches of 2: an epoch takes long enough (~0.2 s) for the kill to land within one.
BASE = {"epochs": EPOCHS, "batch_size": 2, "hidden": [16], "optimizer": "adam", "lr": 0.003}
SEEDS = [0, 1]
METRICS = ["train_loss", "train_accuracy", "val_loss", "val_accuracy"]


def killed_in_its_second_configuration(spec: Path, results: Path) -> Path:
    """`sweeps run` SIGKILLed with every process of its group once the second
    configuration has kept its first epoch; the run directory."""
    process = subprocess.Popen(
        [*SWEEPS, "run", str(spec), "--set", "checkpoint=best", "--results", str(results)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while len(list(results.glob("ck/*/checkpoints/*/last.pt"))) < 2:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.005)
    everyone = [process.pid, *(p.pid for p in psutil.Process(process.pid).children(True))]
    os.killpg(process.pid, signal.SIGKILL)
    for pid in everyone:  # a worker in a session of its own too: it would train on
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.communicate(timeout=60)
    (run_dir,) = (results / "ck").iterdir()
    return run_dir


@pytest.mark.slow
def test_killed_mid_configuration_resume_goes_on_from_its_last_epoch(tmp_path: Path) -> None:
    spec = tmp_path / "ck.yaml"
    spec.write_text(yaml.safe_dump({"name": "ck", "dataset": "digits", "base": BASE,
                                    "grid": {"seed": SEEDS}, "max_concurrent": 1}))  # fmt: skip
    run_dir = killed_in_its_second_configuration(spec, tmp_path / "results")
    # `--set checkpoint=best` on the command line, as the spec saved with the run says.
    assert yaml.safe_load((run_dir / "spec.yaml").read_text())["checkpoint"] == "best"
    before = pd.read_parquet(run_dir / "trials")
    assert len(before) == 1  # the first configuration ended; the second was cut short
    (cut,) = [p for p in (run_dir / "checkpoints").iterdir() if p.name not in set(before.trial_id)]
    kept = torch.load(cut / "last.pt", weights_only=True)
    assert 1 <= kept["epoch"] < EPOCHS and kept["config_index"] == 1

    resumed = subprocess.run([*SWEEPS, "resume", str(run_dir)], capture_output=True, text=True,
                             timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "1 of 2 configurations have results, 1 to train" in resumed.stderr
    trials = pd.read_parquet(run_dir / "trials").sort_values("config_index")
    epochs = pd.read_parquet(run_dir / "epochs")
    again = trials.iloc[1]
    assert f"note: goes on after epoch {kept['epoch']} of {EPOCHS}, from the checkpoint of" \
           f" {cut.name} (trial {again.trial_id})" in resumed.stderr  # fmt: skip

    # Every row as an uninterrupted training of the same configurations writes it.
    digits = load_dataset("digits")
    for (_, row), seed in zip(trials.iterrows(), SEEDS, strict=True):
        reports: list[dict] = []
        final = train({"dataset": "digits", **BASE, "seed": seed, "device": "cpu",
                       "threads": 1}, digits, reports.append)  # fmt: skip
        assert row["status"] == "TERMINATED"
        for name in ("val_loss", "val_accuracy", "test_loss", "test_accuracy"):
            assert row[name] == final[name], (seed, name)
        assert list(row["confusion"]) == [n for counts in final["confusion"] for n in counts]
        ours = epochs[epochs.trial_id == row["trial_id"]].sort_values("epoch")
        assert list(ours["epoch"]) == list(range(1, EPOCHS + 1))
        expected = [[r["loss"], r["accuracy"], r["val_loss"], r["val_accuracy"]] for r in reports]
        assert ours[METRICS].values.tolist() == expected, seed

    # The epochs before the checkpoint were not trained again: their rows are the ones
    # the killed attempt kept, timings and all; the checkpoints moved to the new id.
    ours = epochs[epochs.trial_id == again.trial_id].sort_values("epoch")
    replayed = ours["epoch_time_s"].tolist()[: kept["epoch"]]
    assert replayed == [m["epoch_time_s"] for m in kept["history"]]
    assert not cut.exists()
    last = torch.load(run_dir / "checkpoints" / again.trial_id / "last.pt", weights_only=True)
    assert (
        last["epoch"] == EPOCHS and (run_dir / "checkpoints" / again.trial_id / "best.pt").is_file()
    )


@pytest.mark.parametrize("gpus", [0, 0.25])
def test_with_checkpoints_each_trial_trains_one_configuration(gpus: float) -> None:
    spec = parse_spec({"name": "ck", "base": {"batch_size": 64}, "resources": {"gpus": gpus},
                       "grid": {"activation": ["relu", "tanh", "sigmoid"]}, "pack": "on",
                       "checkpoint": "last"}, "test")  # fmt: skip
    plan = plan_run(spec, configurations(spec), slots=1)
    assert plan.groups == [[0], [1], [2]] and plan.sizes == [[1], [1], [1]]
    fused = plan_run(spec.model_copy(update={"checkpoint": "off"}), plan.configs, slots=1)
    assert fused.groups == [[0, 1, 2]]  # what the same spec does without


def test_a_trainer_of_your_own_with_checkpoints_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "own.yaml"
    spec.write_text(yaml.safe_dump({"name": "own", "trainer": "user_trainers:steady",
                                    "dataset": None, "grid": {"x": [1]}}))  # fmt: skip
    done = subprocess.run(
        [*SWEEPS, "run", str(spec), "--set", "checkpoint=last", "--results", str(tmp_path / "r")],
        env=plugin_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (f"error: {spec.stem} with overrides: checkpoint: last is for the"
                           " built-in trainer only, not 'user_trainers:steady'; set checkpoint:"
                           " off\n")  # fmt: skip
    assert not (tmp_path / "r").exists()
