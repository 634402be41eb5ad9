"""The Parquet writer, fed the reports of fake trials: no Ray, real files."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from analysis.place import Place
from sweeps.record.fanout import Fanout
from sweeps.record.protocol import EPOCH, FINAL, encode
from sweeps.record.results import RunWriter, finished_configs
from tests.helpers.runs import frames

CONFIGS = [{"x": 1, "lr": 0.1}, {"x": 2, "lr": 0.1}, {"x": 3, "lr": 0.01}]


def epoch(number: int, loss: float = 0.5, **extra: object) -> dict[str, object]:
    return {"epoch": number, "loss": loss, "accuracy": 0.8, "val_loss": loss,
            "val_accuracy": 0.75, "epoch_time_s": 0.1, **extra}  # fmt: skip


def train(fanout: Fanout, key: str, indices: list[int], epochs: list[list[dict]]) -> None:
    """A trial as Tune relays it: start, a report per epoch, the final report, the end."""
    fanout.start(key, indices)
    for per_member in zip(*epochs, strict=True):
        fanout.report(key, encode(EPOCH, list(per_member)))
    finals = [{**rows[-1], "test_accuracy": 0.7, "params": 10} for rows in epochs]
    fanout.report(key, encode(FINAL, finals))
    fanout.end(key, None)


def test_a_trial_and_a_group_each_write_a_row_per_configuration(tmp_path: Path) -> None:
    writer = RunWriter(Place.of(tmp_path), "run1", CONFIGS, 0.0)
    fanout = Fanout(CONFIGS, [], writer, [])
    train(fanout, "t1", [0], [[epoch(1), epoch(2)]])
    train(fanout, "t2", [1, 2], [[epoch(1), epoch(2)], [epoch(1), epoch(2)]])
    trials, epochs = frames(tmp_path)
    trials = trials.sort_values("config_index", ignore_index=True)
    assert list(trials["trial_id"]) == ["t1", "t2-0", "t2-1"]
    assert list(trials["bundle_id"].fillna("-")) == ["-", "t2", "t2"]
    assert list(trials["x"]) == [1, 2, 3] and list(trials["config_index"]) == [0, 1, 2]
    assert set(trials["status"]) == {"TERMINATED"} and trials["error"].isna().all()
    assert set(trials["epochs_completed"]) == {2} and set(trials["test_accuracy"]) == {0.7}
    assert len(epochs) == 6 and set(epochs["trial_id"]) == {"t1", "t2-0", "t2-1"}


def test_custom_metrics_are_kept_typed_in_every_file(tmp_path: Path) -> None:
    writer = RunWriter(Place.of(tmp_path), "run1", CONFIGS, 0.0)
    fanout = Fanout(CONFIGS, [], writer, [])
    train(fanout, "t1", [0], [[epoch(1)]])  # before the custom metric is first seen
    train(fanout, "t2", [1], [[epoch(1, my_metric=3.5, my_count=7, my_note="ok")]])
    trials, epochs = frames(tmp_path)
    assert {"my_metric", "my_count", "my_note"} <= set(trials.columns) & set(epochs.columns)
    by_x = trials.set_index("x")
    assert by_x.loc[2, "my_metric"] == 3.5 and by_x.loc[2, "my_count"] == 7
    assert math.isnan(by_x.loc[1, "my_metric"]) and pd.isna(by_x.loc[1, "my_note"])
    assert str(trials["my_count"].dtype) in ("Int64", "int64", "float64")
    assert epochs.set_index("trial_id").loc["t2", "my_note"] == "ok"
    # A float after ints widens the column, in the files already written too.
    train(fanout, "t3", [2], [[epoch(1, my_count=0.5)]])
    trials, _ = frames(tmp_path)
    assert sorted(trials["my_count"].dropna()) == [0.5, 7.0]


def test_a_metric_named_like_a_config_key_does_not_replace_it(tmp_path: Path) -> None:
    writer = RunWriter(Place.of(tmp_path), "run1", CONFIGS, 0.0)
    fanout = Fanout(CONFIGS, [], writer, [])
    train(fanout, "t1", [0], [[epoch(1, x=99)]])
    trials, _ = frames(tmp_path)
    assert trials.loc[0, "x"] == 1 and trials.loc[0, "metric_x"] == 99


def test_a_loss_that_becomes_nan_is_recorded_as_diverged(tmp_path: Path) -> None:
    writer = RunWriter(Place.of(tmp_path), "run1", CONFIGS, 0.0)
    fanout = Fanout(CONFIGS, [], writer, [])
    train(fanout, "t1", [0, 1], [[epoch(1), epoch(2, loss=math.nan)], [epoch(1), epoch(2)]])
    trials, _ = frames(tmp_path)
    by_x = trials.set_index("x")
    assert by_x.loc[1, "status"] == "DIVERGED"
    assert by_x.loc[1, "error"] == "loss became NaN at epoch 2"
    assert by_x.loc[2, "status"] == "TERMINATED" and pd.isna(by_x.loc[2, "error"])


def test_an_error_fails_every_member_and_keeps_its_epochs(tmp_path: Path) -> None:
    writer = RunWriter(Place.of(tmp_path), "run1", CONFIGS, 0.0)
    fanout = Fanout(CONFIGS, [], writer, [])
    fanout.start("t1", [0, 1])
    fanout.report("t1", encode(EPOCH, [epoch(1), epoch(1)]))
    fanout.end("t1", "RuntimeError: boom")
    trials, epochs = frames(tmp_path)
    assert list(trials["status"]) == ["ERROR", "ERROR"]
    assert set(trials["error"]) == {"RuntimeError: boom"} and len(epochs) == 2


def test_a_restarted_trial_forgets_its_failed_attempt(tmp_path: Path) -> None:
    writer = RunWriter(Place.of(tmp_path), "run1", CONFIGS, 0.0)
    fanout = Fanout(CONFIGS, [], writer, [])
    fanout.start("t1", [0])
    fanout.report("t1", encode(EPOCH, [epoch(1, loss=9.0)]))
    train(fanout, "t1", [0], [[epoch(1), epoch(2)]])
    _, epochs = frames(tmp_path)
    assert list(epochs["train_loss"]) == [0.5, 0.5]


def test_resume_sees_the_finished_configurations_and_their_columns(tmp_path: Path) -> None:
    place = Place.of(tmp_path)
    first = RunWriter(place, "run1", CONFIGS, 0.0)
    train(Fanout(CONFIGS, [], first, []), "t1", [0, 1], [[epoch(1, f1=0.9)]] * 2)
    # A trial whose epochs landed but whose trials row did not (the driver died between).
    RunWriter(place, "run1", CONFIGS, 0.0)._write("epochs", "t9", [{"epoch": 1}])
    assert (tmp_path / "epochs" / "t9.parquet").exists()
    assert finished_configs(place) == {0, 1}
    assert not (tmp_path / "epochs" / "t9.parquet").exists()
    resumed = RunWriter(place, "run1", CONFIGS, 0.0)
    fanout = Fanout(CONFIGS, [], resumed, [])
    train(fanout, "t2", [2], [[epoch(1)]])  # no f1 this time: the column stays
    trials, _ = frames(tmp_path)
    assert sorted(trials["config_index"]) == [0, 1, 2] and "f1" in trials.columns


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_an_infinite_loss_is_named(tmp_path: Path, value: float) -> None:
    writer = RunWriter(Place.of(tmp_path), "run1", CONFIGS, 0.0)
    fanout = Fanout(CONFIGS, [], writer, [])
    train(fanout, "t1", [0], [[epoch(1, loss=value)]])
    trials, _ = frames(tmp_path)
    assert trials.loc[0, "error"] == f"loss became {'inf' if value > 0 else '-inf'} at epoch 1"


def test_a_name_means_one_thing_of_one_type_in_both_folders(tmp_path: Path) -> None:
    """The config key `loss` (text) and the epoch metric `loss` (a number) once shared a
    name; so did a custom metric and the config key it is named like, in the epochs."""
    configs = [{"loss": "mse", "hidden": [8, 8], "x": 1}, {"loss": "categorical_crossentropy",
               "hidden": [16], "x": 2}]  # fmt: skip
    writer = RunWriter(Place.of(tmp_path), "run1", configs, 0.0)
    fanout = Fanout(configs, [], writer, [])
    train(fanout, "t1", [0], [[epoch(1, x=7), epoch(2, x=8)]])
    train(fanout, "t2", [1], [[epoch(1, x=9.5)]])  # a float after ints: one type in both
    files = sorted((tmp_path / "trials").glob("*.parquet")) + sorted(
        (tmp_path / "epochs").glob("*.parquet")
    )
    schema = pa.unify_schemas([pq.read_schema(file) for file in files])
    both = ds.dataset(files, schema=schema).to_table()
    assert both.num_rows == 2 + 3
    assert schema.field("loss").type == pa.string() and schema.field("x").type == pa.int64()
    assert schema.field("train_loss").type == pa.float64()
    assert schema.field("metric_x").type == pa.float64()
    trials, epochs = frames(tmp_path)
    assert "loss" not in epochs.columns and list(epochs["train_loss"]) == [0.5, 0.5, 0.5]
    assert sorted(epochs["metric_x"]) == [7, 8, 9.5] and "x" not in epochs.columns
    merged = epochs.merge(trials[["trial_id", "loss", "hidden", "x"]], on="trial_id")
    assert {"loss", "train_loss", "x", "metric_x"} <= set(merged.columns)
    assert not [column for column in merged.columns if column.endswith(("_x", "_y"))
                and column != "metric_x"]  # fmt: skip


def test_a_packs_bundles_are_written_as_they_end_and_once(tmp_path: Path) -> None:
    """A pack of two bundles ([0] and [1, 2]): the first ends and is on disk at once; the
    second fails; a retry of the whole trial writes nothing twice."""
    writer = RunWriter(Place.of(tmp_path), "run1", CONFIGS, 0.0)
    fanout = Fanout(CONFIGS, [], writer, [])
    fanout.start("p", [0, 1, 2])
    fanout.report("p", encode(EPOCH, [epoch(1)], positions=[0]))
    fanout.report("p", encode(EPOCH, [epoch(1), epoch(1)], positions=[1, 2]))
    fanout.report("p", encode(FINAL, [{"test_accuracy": 0.7}], positions=[0],
                                     errors=[None]))  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "trials").iterdir()) == ["p-0.parquet"]
    assert finished_configs(Place.of(tmp_path)) == {0}

    fanout.start("p", [0, 1, 2])  # Tune retries the trial: the pack trains all again
    fanout.report("p", encode(FINAL, [{"test_accuracy": 0.6}], positions=[0],
                                     errors=[None]))  # fmt: skip
    fanout.report("p", encode(EPOCH, [epoch(1), epoch(1)], positions=[1, 2]))
    oom = "RuntimeError: CUDA out of memory"
    fanout.report("p", encode(FINAL, [{}, {}], positions=[1, 2], errors=[oom, oom]))
    fanout.end("p", None)
    trials, epochs = frames(tmp_path)
    trials = trials.sort_values("config_index", ignore_index=True)
    assert list(trials["config_index"]) == [0, 1, 2]  # each once
    assert list(trials["status"]) == ["TERMINATED", "ERROR", "ERROR"]
    assert list(trials["error"].fillna("-")) == ["-", oom, oom]
    assert trials.loc[0, "test_accuracy"] == 0.7  # the first attempt's, kept
    assert list(trials["bundle_id"]) == ["p", "p", "p"]
    assert sorted(epochs["trial_id"]) == ["p-0", "p-1", "p-2"]


def test_a_trial_that_fails_writes_the_members_not_written_yet(tmp_path: Path) -> None:
    writer = RunWriter(Place.of(tmp_path), "run1", CONFIGS, 0.0)
    fanout = Fanout(CONFIGS, [], writer, [])
    fanout.start("p", [0, 1, 2])
    fanout.report("p", encode(FINAL, [{}], positions=[2], errors=[None]))
    fanout.end("p", "ActorDiedError: the worker died")
    trials = frames(tmp_path)[0].sort_values("config_index", ignore_index=True)
    assert list(trials["status"]) == ["ERROR", "ERROR", "TERMINATED"]
    assert set(trials["error"][:2]) == {"ActorDiedError: the worker died"}
