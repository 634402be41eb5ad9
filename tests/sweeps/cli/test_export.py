"""`sweeps export` and `sweeps.load_model`: a configuration's model from the checkpoints
of a run, here written as a trial writes them (sweeps.runs.checkpoints.Keeper over the
built-in trainer), on a local disk and on S3, without Ray."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import sweeps
from analysis import RunDataError
from analysis.place import Place
from sweeps.runs.checkpoints import Checkpoints, Keeper
from trainers.checkpoint import load_model, train_kept
from trainers.data import make_splits

SWEEPS = [sys.executable, "-m", "sweeps"]
CONFIG = {"dataset": "digits", "epochs": 3, "batch_size": 32, "lr": 0.5, "hidden": [32]}


def kept_run(run_dir: str, digits, which: str, trial_id: str = "t_00000") -> list[dict]:
    """One configuration trained as a run's trial keeps it; its epochs' metrics."""
    checkpoints = Checkpoints(str(Place.of(run_dir) / "checkpoints"), which, "val_loss",
                              "min", {})  # fmt: skip
    reports: list[dict] = []
    train_kept(CONFIG, digits, reports.append, Keeper(checkpoints, trial_id, 0).keep)
    return reports


def accuracy(model: torch.nn.Module, digits) -> float:
    validation = make_splits(digits, 0.0, 0, torch.device("cpu")).validation
    return (model(validation.images).argmax(1) == validation.labels).float().mean().item()


def export(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SWEEPS, "export", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)  # fmt: skip


def test_export_writes_the_model_that_predicts_what_the_run_recorded(tmp_path, digits) -> None:
    run_dir = tmp_path / "run"
    reports = kept_run(str(run_dir), digits, "best")
    best = min(reports, key=lambda r: r["val_loss"])
    done = export(str(run_dir), "t_00000", "--output", str(tmp_path / "model.pt"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # By default the best epoch's weights, where the run kept them.
    assert f"t_00000 best: epoch {best['epoch']} of 3" in done.stderr
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert set(state) == {"format", "config", "image_shape", "epoch", "history", "params"}
    assert accuracy(load_model(state), digits) == best["val_accuracy"]

    done = export(str(run_dir), "t_00000", "--which", "last", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    last = torch.load(tmp_path / "t_00000-last.pt", weights_only=True)
    assert last["epoch"] == 3
    assert accuracy(load_model(last), digits) == reports[-1]["val_accuracy"]
    model = sweeps.load_model(run_dir, "t_00000", which="last")
    assert accuracy(model, digits) == reports[-1]["val_accuracy"]
    assert model.config.hidden == (32,)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["nowhere", "t_00000"], "run directory '{root}/nowhere' does not exist"),
        (["run", "t_9"], "no checkpoints of configuration 't_9' in {root}/run; it has t_00000"),
        (["run", "t_00000", "--which", "first"], "--which must be one of best, last, got 'first'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, digits, args, says) -> None:
    kept_run(str(tmp_path / "run"), digits, "last")
    done = export(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert says.format(root=tmp_path) in " ".join(done.stderr.split()), done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing written


def test_what_is_missing_is_named(tmp_path, digits) -> None:
    kept_run(str(tmp_path / "run"), digits, "last")  # last.pt only
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDataError, match=r"configuration 't_00000' has no best\.pt in"):
        sweeps.load_model(tmp_path / "run", "t_00000", which="best")
    with pytest.raises(RunDataError, match=r"it has none \(a run keeps them with checkpoint"):
        sweeps.load_model(tmp_path / "empty", "t_00000")
    (tmp_path / "run" / "checkpoints" / "t_00000" / "last.pt").write_bytes(b"torn")
    with pytest.raises(RunDataError, match=r"last\.pt: not a checkpoint of the built-in trainer"):
        sweeps.load_model(tmp_path / "run", "t_00000")


def test_checkpoints_on_s3_load_as_from_a_disk(s3_server, digits) -> None:
    run_dir = f"{s3_server.partition('?')[0]}/sweep/run-1?{s3_server.partition('?')[2]}"
    reports = kept_run(run_dir, digits, "best", trial_id="t_00001")
    model = sweeps.load_model(run_dir, "t_00001")
    best = min(reports, key=lambda r: r["val_loss"])
    assert accuracy(model, digits) == best["val_accuracy"]
