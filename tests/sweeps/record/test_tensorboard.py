"""The TensorBoard logger fed a run's events directly: no Ray, real event files read back
as TensorBoard reads them. (A whole run's event files: test_loggers.py.)"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from analysis.place import Place
from analysis.rundir import Status
from sweeps.record.events import Configuration, Ended, Epoch, Started
from sweeps.record.tensorboard import TensorBoardLogger
from tests.helpers.tensorboard import read_events

STARTED_AT = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)


def configuration(trial_id: str, **config: Any) -> Configuration:
    return Configuration(trial_id, 0, config, trial_id, 0, 1)


def epoch(number: int, loss: float) -> dict[str, Any]:
    return {"epoch": number, "loss": loss, "accuracy": 0.5, "val_loss": loss + 0.1,
            "val_accuracy": 0.4, "epoch_time_s": 0.01}  # fmt: skip


def train(
    logger: TensorBoardLogger,
    trial: Configuration,
    losses: list[float],
    status: Status = Status.DONE,
    retry: bool = False,
) -> None:
    """A configuration's start, an epoch per loss, and its end with a test accuracy."""
    logger.started(Started(trial, retry))
    epochs = [epoch(number, loss) for number, loss in enumerate(losses, 1)]
    for metrics in epochs:
        logger.epoch(Epoch(trial, metrics))
    final = {**epochs[-1], "test_accuracy": 0.3, "params": 610, "confusion": [[1, 2], [3, 4]]}
    why = "RuntimeError: boom" if status == Status.FAILED else None
    logger.ended(trial.id, [Ended(trial, status, why, epochs, final, STARTED_AT)])


def test_each_configuration_has_its_curves_config_and_outcome_in_a_folder(
    tmp_path: Path,
) -> None:
    logger = TensorBoardLogger(Place.of(tmp_path))
    logger.setup()
    good = configuration("t1", hidden=[64, 32], lr=0.1, activation="relu", shuffle=True)
    bad = configuration("t2", hidden=[8], lr=math.inf, activation="tanh", shuffle=False)
    train(logger, good, [0.9, 0.6])
    train(logger, bad, [2.0], status=Status.FAILED)
    logger.finished()

    assert sorted(os.listdir(tmp_path / "tensorboard")) == ["t1", "t2"]
    first = read_events(tmp_path / "tensorboard" / "t1")
    # The Parquet columns' names: the trainer's `loss` is train_loss.
    assert first.scalars["train_loss"] == pytest.approx({1: 0.9, 2: 0.6})
    assert first.scalars["val_loss"] == pytest.approx({1: 1.0, 2: 0.7})
    # The final report's figure no epoch had, at the last epoch's step; bookkeeping is no curve.
    assert first.scalars["test_accuracy"] == pytest.approx({2: 0.3})
    assert not {"params", "epoch", "confusion"} & set(first.scalars)
    # A list is shown as its text: the hparams view takes numbers, flags and text only.
    assert first.hparams == {"hidden": "[64, 32]", "lr": 0.1, "activation": "relu",
                             "shuffle": True}  # fmt: skip
    assert first.status == "STATUS_SUCCESS"
    second = read_events(tmp_path / "tensorboard" / "t2")
    assert second.hparams["lr"] == "inf"  # not a number the hparams view can hold
    assert second.status == "STATUS_FAILURE"


def test_each_epoch_is_on_disk_as_it_is_logged(tmp_path: Path) -> None:
    """`tensorboard --logdir` shows a configuration's epochs while it trains."""
    logger = TensorBoardLogger(Place.of(tmp_path))
    trial = configuration("t1", lr=0.1)
    logger.started(Started(trial, retry=False))
    logger.epoch(Epoch(trial, epoch(1, 0.8)))
    seen = read_events(tmp_path / "tensorboard" / "t1")
    assert seen.scalars["train_loss"] == pytest.approx({1: 0.8})
    assert seen.hparams == {"lr": 0.1} and seen.status is None  # not ended yet
    logger.abandon()


def test_a_retry_replaces_the_curves_of_the_attempt_before(tmp_path: Path) -> None:
    logger = TensorBoardLogger(Place.of(tmp_path))
    trial = configuration("t1", lr=0.1)
    logger.started(Started(trial, retry=False))
    for number, loss in ((1, 9.0), (2, 8.0)):
        logger.epoch(Epoch(trial, epoch(number, loss)))
    train(logger, trial, [0.5], retry=True)  # the first attempt died after two epochs
    logger.finished()
    seen = read_events(tmp_path / "tensorboard" / "t1")
    assert seen.scalars["train_loss"] == pytest.approx({1: 0.5})
    assert seen.status == "STATUS_SUCCESS"


def test_a_write_that_fails_stops_the_logger_and_nothing_else(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk, say: one warning, every file closed, and later events are ignored."""
    logger = TensorBoardLogger(Place.of(tmp_path))
    first = configuration("t1", lr=0.1)
    logger.started(Started(first, retry=False))
    (tmp_path / "tensorboard" / "t2").write_text("in the way")  # where t2's folder would go
    second = configuration("t2", lr=0.2)
    with caplog.at_level(logging.WARNING):
        logger.started(Started(second, retry=False))
        train(logger, configuration("t3", lr=0.3), [0.5])
    assert logger.stopped and logger.writers == {}
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("tensorboard stopped logging: FileExistsError: ")
    assert not (tmp_path / "tensorboard" / "t3").exists()


def test_a_resumed_run_drops_the_tensorboard_folders_of_unfinished_trials(tmp_path: Path) -> None:
    """Configurations with a trials row keep their folder; an interrupted one's goes: resume
    trains it again under a new trial id, and its attempt would show twice."""
    for name in ("alone", "pack-0", "pack-1", "killed-0"):
        (tmp_path / "tensorboard" / name).mkdir(parents=True)
        (tmp_path / "tensorboard" / name / "events.out.tfevents.1.host").write_bytes(b"")
    (tmp_path / "trials").mkdir()
    pq.write_table(pa.table({"trial_id": ["alone"]}), tmp_path / "trials" / "alone.parquet")
    pq.write_table(pa.table({"trial_id": ["pack-0", "pack-1"]}),
                   tmp_path / "trials" / "pack-0.parquet")  # fmt: skip
    TensorBoardLogger(Place.of(str(tmp_path))).setup()
    kept = sorted(path.name for path in (tmp_path / "tensorboard").iterdir())
    assert kept == ["alone", "pack-0", "pack-1"]


def test_a_run_in_a_bucket_gets_each_configurations_folder_as_it_ends(
    s3_server: str, tmp_path: Path
) -> None:
    """Written in a local folder first (event files are appended to, an object is not),
    copied once the configuration ends; the local folder goes when the run ends."""
    run_dir = Place.of(s3_server) / "run1"
    logger = TensorBoardLogger(run_dir)
    logger.setup()  # a fresh run: nothing in the bucket to drop
    local = Path(logger.root)
    trial = configuration("t1", lr=0.1)
    logger.started(Started(trial, retry=False))
    logger.epoch(Epoch(trial, epoch(1, 0.7)))
    assert not (run_dir / "tensorboard").exists()  # nothing in the bucket while it trains
    logger.ended(trial.id, [Ended(trial, Status.DONE, None, [epoch(1, 0.7)], {}, STARTED_AT)])
    copied = tmp_path / "copied"
    copied.mkdir()
    pafs.copy_files((run_dir / "tensorboard" / "t1").path, str(copied),
                    source_filesystem=run_dir.fs,
                    destination_filesystem=pafs.LocalFileSystem())  # fmt: skip
    seen = read_events(copied)
    assert seen.scalars["train_loss"] == pytest.approx({1: 0.7})
    assert seen.status == "STATUS_SUCCESS"
    assert local.is_dir()
    logger.finished()
    assert not local.exists()
