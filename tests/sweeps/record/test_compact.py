"""A run's Parquet folders compacted as it ends: folders the writer wrote (no Ray), real
files on a local disk and on S3, compactions stopped half-way; then one real run and its
resume."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.place import Place
from analysis.rundir import EPOCHS, TRIALS, RunDir
from sweeps.record import compact
from sweeps.record.compact import compact_run
from sweeps.record.fanout import Fanout
from sweeps.record.protocol import EPOCH, FINAL, encode
from sweeps.record.results import RunWriter, finished_configs
from tests.helpers.runs import write_spec
from tests.sweeps.conftest import run_cli

CONFIGS = [{"x": index, "lr": 0.1} for index in range(10)]
BIG = 2**70  # an int beyond int64: its column becomes text, in the files written before too


def write(place: Place, trials: dict[str, list[int]]) -> None:
    """Trials as RunWriter writes them (a resumed writer, if the run has rows), each
    configuration two epochs, with custom metrics whose types widen as they come."""
    writer = RunWriter(place, "run1", CONFIGS, 0.0)
    fanout = Fanout(CONFIGS, [], writer, [])
    for key, indices in trials.items():
        fanout.start(key, indices)
        rows = [[_metrics(index, epoch) for index in indices] for epoch in (1, 2)]
        for per_member in rows:
            fanout.report(key, encode(EPOCH, per_member))
        fanout.report(key, encode(FINAL, [{**row, "test_accuracy": 0.7} for row in rows[-1]]))
        fanout.end(key, None)


def _metrics(index: int, epoch: int) -> dict[str, Any]:
    return {"epoch": epoch, "loss": 1 / epoch, "accuracy": 0.5, "val_loss": 1 / epoch,
            "val_accuracy": index / 10, "epoch_time_s": 0.1,
            "my_count": index if index < 4 else index + 0.5,  # int64, then double
            "my_seed": index if index != 5 else BIG,  # int64, then string
            **({"late": "yes"} if index == 9 else {})}  # fmt: skip


FIRST = {f"a{index}": [index] for index in range(6)} | {"g": [6, 7]}  # g: a group of two


def read(place: Place) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's trials and epochs as the analysis reads them, in a fixed order."""
    run = RunDir(place, place.uri)
    trials = run.read_folder(TRIALS).sort_values("config_index", ignore_index=True)
    epochs = run.read_folder(EPOCHS).sort_values(["trial_id", "epoch"], ignore_index=True)
    return trials, epochs


def names(place: Place, folder: str) -> list[str]:
    return [os.path.basename(path) for path in (place / folder).parquet_files()]


def assert_same(place: Place, expected: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    for got, want in zip(read(place), expected, strict=True):
        pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize("where", ["local", "s3"])
def test_compacted_folders_read_as_before_and_a_resume_compacts_again(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    place = Place.of(tmp_path if where == "local" else request.getfixturevalue("s3_server"))
    write(place, FIRST)
    before = read(place)
    on_disk = pd.read_parquet(tmp_path / TRIALS) if where == "local" else None
    assert len(names(place, TRIALS)) == 7 and len(before[1]) == 16

    compact_run(place, compact_from=2)
    assert names(place, TRIALS) == names(place, EPOCHS) == ["part-compact-1.parquet"]
    assert_same(place, before)
    schema = pq.read_schema((place / TRIALS / "part-compact-1.parquet").path, filesystem=place.fs)
    assert schema.field("my_count").type == pa.float64()  # widened in the files it replaced
    assert schema.field("my_seed").type == pa.string() and schema.metadata is None
    assert before[0].set_index("x").loc[5, "my_seed"] == str(BIG)
    if on_disk is not None:  # as the README reads it
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / TRIALS).sort_values("trial_id", ignore_index=True),
            on_disk.sort_values("trial_id", ignore_index=True),
        )

    assert finished_configs(place) == set(range(8))
    write(place, {"a8": [8], "a9": [9]})  # resumed: small files again, and a new column
    assert len(names(place, TRIALS)) == 3
    trials, epochs = read(place)
    assert sorted(trials["config_index"]) == list(range(10)) and len(epochs) == 20
    assert list(trials["late"].fillna("-")) == ["-"] * 9 + ["yes"]
    compact_run(place)  # beside a compacted file, however few
    assert names(place, TRIALS) == names(place, EPOCHS) == ["part-compact-2.parquet"]
    assert_same(place, (trials, epochs))


def stop_removing_after(count: int) -> Callable[[Place, str], None]:
    removed = []

    def remove(run_dir: Place, path: str) -> None:
        if len(removed) == count:
            raise KeyboardInterrupt
        removed.append(path)
        run_dir.fs.delete_file(path)

    return remove


def stop_writing_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The epochs' compacted file written, not the trials'."""
    write_parquet = Place.write_parquet

    def once(self: Place, table: pa.Table) -> None:
        if self.parent.name == TRIALS:
            raise KeyboardInterrupt
        write_parquet(self, table)

    monkeypatch.setattr(Place, "write_parquet", once)


@pytest.mark.parametrize("stop", ["writing trials", 0, 1, 7, 13])
def test_a_compaction_stopped_half_way_loses_no_row_and_shows_none_twice(
    stop: str | int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped before the trials' compacted file, or after `stop` of the 14 small files
    were removed: read, resumed (finished_configs), and compacted again, every row once."""
    place = Place.of(tmp_path)
    write(place, FIRST)
    before = read(place)
    with monkeypatch.context() as patch:
        if stop == "writing trials":
            stop_writing_trials(patch)
        else:
            patch.setattr(compact, "remove", stop_removing_after(int(stop)))
        with pytest.raises(KeyboardInterrupt):
            compact_run(place, compact_from=2)
    assert (tmp_path / EPOCHS / "part-compact-1.parquet").exists()
    assert_same(place, before)
    assert finished_configs(place) == set(range(8))  # and drops epochs with no trials row
    assert_same(place, before)
    compact_run(place, compact_from=2)
    assert len(names(place, TRIALS)) == len(names(place, EPOCHS)) == 1
    assert_same(place, before)


@pytest.mark.slow
@pytest.mark.usefixtures("local_ray")
def test_a_run_ends_compacted_and_its_resume_appends_and_compacts_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compact, "COMPACT_FROM", 2)
    spec = write_spec(
        tmp_path / "flaky.yaml", name="flaky", trainer="user_trainers:flaky", dataset=None,
        base={"epochs": 2}, grid={"x": [1, 2, 3, 4, 5, 6]},
    )  # fmt: skip
    assert run_cli("run", spec, "--results", str(tmp_path)) == 1  # x = 3 and 6 fail
    (run_dir,) = (tmp_path / "flaky").iterdir()
    place = Place.of(run_dir)
    assert names(place, TRIALS) == names(place, EPOCHS) == ["part-compact-1.parquet"]
    first, _ = read(place)
    assert sorted(first["x"]) == [1, 2, 3, 4, 5, 6]

    # The failed two read from the compacted file, removed from it, trained again.
    assert run_cli("resume", str(run_dir), "--retry-failed") == 1
    assert names(place, TRIALS) == names(place, EPOCHS) == ["part-compact-2.parquet"]
    trials, epochs = read(place)
    assert sorted(trials["config_index"]) == list(range(6))
    again = trials[trials["status"] == "ERROR"]
    assert sorted(again["x"]) == [3, 6] and not set(again["trial_id"]) & set(first["trial_id"])
    assert len(epochs) == 4 * 2 and set(epochs["trial_id"]) < set(trials["trial_id"])
