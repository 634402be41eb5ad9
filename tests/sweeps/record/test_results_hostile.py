"""The Parquet writer against metrics a trainer should not report, but may (issue #24): ints
beyond int64, names of the writer's own columns, a new metric name per configuration."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.place import Place
from sweeps.record.fanout import Fanout
from sweeps.record.protocol import EPOCH, FINAL, encode
from sweeps.record.results import RunWriter, finished_configs
from tests.helpers.runs import frames, read_run, write_spec
from tests.sweeps.conftest import run_cli

CONFIGS = [{"x": x, "lr": 0.1} for x in range(12)]
BIG = 2**64 - 1  # what torch.initial_seed() may return


def epoch(number: int, **extra: object) -> dict[str, object]:
    return {"epoch": number, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.5,
            "val_accuracy": 0.75, "epoch_time_s": 0.1, **extra}  # fmt: skip


def train(fanout: Fanout, key: str, index: int, **extra: object) -> None:
    """A one-configuration trial of two epochs that reports `extra` every epoch."""
    fanout.start(key, [index])
    for number in (1, 2):
        fanout.report(key, encode(EPOCH, [epoch(number, **extra)]))
    fanout.report(key, encode(FINAL, [{**epoch(2, **extra), "test_accuracy": 0.7}]))
    fanout.end(key, None)


def test_an_int_beyond_int64_is_kept_exactly_as_text(tmp_path: Path) -> None:
    writer = RunWriter(Place.of(tmp_path), "run1", CONFIGS, 0.0)
    fanout = Fanout(CONFIGS, [], writer, [])
    train(fanout, "t1", 0, seed=12345)  # fits int64: the column starts as ints
    train(fanout, "t2", 1, seed=BIG)
    train(fanout, "t3", 2, seed=-(2**63) - 1)
    train(fanout, "t4", 3, seed=7)
    trials, epochs = frames(tmp_path)
    by_x = trials.set_index("x")["seed"]
    assert by_x.to_dict() == {0: "12345", 1: str(BIG), 2: str(-(2**63) - 1), 3: "7"}
    assert int(by_x[1]) == BIG  # exact: no float on the way
    assert sorted(epochs["seed"]) == sorted(["12345", str(BIG), str(-(2**63) - 1), "7"] * 2)
    assert set(trials["status"]) == {"TERMINATED"}


def test_a_config_value_beyond_int64_is_kept_exactly_as_text(tmp_path: Path) -> None:
    configs = [{"seed": BIG}, {"seed": 3}]
    writer = RunWriter(Place.of(tmp_path), "run1", configs, 0.0)
    fanout = Fanout(configs, [], writer, [])
    train(fanout, "t1", 0)
    train(fanout, "t2", 1)
    trials, _ = frames(tmp_path)
    assert sorted(trials["seed"]) == sorted([str(BIG), "3"])


OWN_COLUMNS = {"run_id": "theirs", "trial_id": 7, "bundle_id": 1.5, "config_index": "first",
               "status": 0.25, "error": 404, "started_at": "yesterday", "finished_at": 3,
               "gpu_fraction": "all", "train_loss": "low"}  # fmt: skip


def test_a_metric_named_like_a_result_column_is_prefixed_in_both_folders(tmp_path: Path) -> None:
    writer = RunWriter(Place.of(tmp_path), "run1", CONFIGS, 0.0)
    fanout = Fanout(CONFIGS, [], writer, [])
    train(fanout, "t1", 0)
    train(fanout, "t2", 1, **OWN_COLUMNS)
    trials, epochs = frames(tmp_path)
    for frame in (trials, epochs):
        assert set(frame["run_id"]) == {"run1"} and set(frame["trial_id"]) == {"t1", "t2"}
        reported = frame[frame["trial_id"] == "t2"]
        for name, value in OWN_COLUMNS.items():
            assert (reported[f"metric_{name}"] == value).all(), name
    by_trial = trials.set_index("trial_id")
    assert by_trial.loc["t2", "config_index"] == 1 and by_trial.loc["t2", "status"] == "TERMINATED"
    assert by_trial.loc["t2", "train_loss"] == 0.5 and pd.isna(by_trial.loc["t2", "error"])
    assert set(epochs["train_loss"]) == {0.5}
    schema = pq.read_schema(sorted((tmp_path / "trials").glob("*.parquet"))[-1])
    assert schema.field("config_index").type == pa.int64()
    assert schema.field("started_at").type == pa.timestamp("us", tz="UTC")
    # Epochs have no status or config_index of their own: a metric so named is prefixed too,
    # or the two folders would disagree on what (and of which type) `status` is.
    assert not {"status", "config_index", "error"} & set(epochs.columns)


def test_a_new_metric_name_per_configuration_rewrites_no_file_written_before(
    tmp_path: Path,
) -> None:
    place = Place.of(tmp_path)
    writer = RunWriter(place, "run1", CONFIGS, 0.0)
    fanout = Fanout(CONFIGS, [], writer, [])
    for x in range(8):
        train(fanout, f"t{x}", x, **{f"acc_{x}": x / 10})

    def files() -> dict[str, int]:  # a rewrite lands as a new file renamed into place
        return {p.name: p.stat().st_ino for p in tmp_path.glob("*/*.parquet")}

    before = files()
    train(fanout, "t8", 8, acc_8=0.8)
    rewritten = {name for name, inode in before.items() if files()[name] != inode}
    # At most the first file of each folder, which pyarrow takes a dataset's columns from.
    assert rewritten <= {"t0.parquet"}, rewritten
    trials, epochs = frames(tmp_path)
    for frame in (trials, epochs):
        assert {f"acc_{x}" for x in range(9)} <= set(frame.columns)
    assert trials.set_index("x")["acc_3"].dropna().to_dict() == {3: 0.3}
    # The first epochs file goes (its trial never got a trials row: the driver died), and
    # the run resumes: every column is still seen.
    (tmp_path / "trials" / "t0.parquet").unlink()
    assert finished_configs(place) == set(range(1, 9))
    resumed = RunWriter(place, "run1", CONFIGS, 0.0)
    fanout = Fanout(CONFIGS, [], resumed, [])
    train(fanout, "t9", 9, acc_9=0.9)
    trials, epochs = frames(tmp_path)
    for frame in (trials, epochs):
        assert {f"acc_{x}" for x in range(1, 10)} <= set(frame.columns)
    assert len(trials) == 9 and len(epochs) == 18


def test_a_column_that_widens_is_one_type_in_every_file(tmp_path: Path) -> None:
    writer = RunWriter(Place.of(tmp_path), "run1", CONFIGS, 0.0)
    fanout = Fanout(CONFIGS, [], writer, [])
    train(fanout, "t5", 5, f1=1)
    train(fanout, "t6", 6, other=1.0)  # a file without f1
    train(fanout, "t7", 7, f1=0.5)  # f1 now float: t5's ints widen with it
    train(fanout, "t8", 8, f1=BIG)  # and now text
    for folder in ("trials", "epochs"):
        for path in (tmp_path / folder).glob("*.parquet"):
            schema = pq.read_schema(path)
            if "f1" in schema.names:
                assert schema.field("f1").type == pa.string(), path
    trials, _ = frames(tmp_path)
    assert trials.set_index("x")["f1"].dropna().to_dict() == {5: "1", 7: "0.5", 8: str(BIG)}


@pytest.mark.slow
@pytest.mark.usefixtures("local_ray")
def test_a_trainer_reporting_a_seed_beyond_int64_gets_every_row_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(
        tmp_path / "seeds.yaml", name="seeds", trainer="hostile_trainers:big_seed",
        dataset=None, base={"epochs": 2}, grid={"x": [1, 2, 3, 4]},
    )  # fmt: skip
    assert run_cli("run", spec, "--results", str(tmp_path / "results")) == 0
    assert "Traceback" not in capsys.readouterr().err
    _, trials, epochs = read_run(tmp_path / "results")
    assert set(trials["status"]) == {"TERMINATED"}
    seeds = {1: str(2**64 - 1), 2: "2", 3: str(2**64 - 3), 4: "4"}
    assert trials.set_index("x")["seed"].to_dict() == seeds
    assert sorted(epochs["seed"]) == sorted(list(seeds.values()) * 2)


@pytest.mark.slow
@pytest.mark.usefixtures("local_ray")
def test_metrics_named_like_our_columns_and_one_name_per_configuration(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "names.yaml", name="names", trainer="hostile_trainers:own_names",
        dataset=None, base={"epochs": 2},
        grid={"x": [1, 2], "activation": ["relu", "tanh", "sigmoid"]},
    )  # fmt: skip
    assert run_cli("run", spec, "--results", str(tmp_path / "results")) == 0
    run_dir, trials, epochs = read_run(tmp_path / "results")
    assert len(trials) == 6 and len(epochs) == 12
    for frame in (trials, epochs):
        assert set(frame["run_id"]) == {run_dir.name}
        assert set(frame["metric_run_id"]) == {"mine"} and set(frame["metric_status"]) == {0.5}
        assert set(frame["metric_config_index"]) == {"first"}
        assert {"acc_relu", "acc_tanh", "acc_sigmoid"} <= set(frame.columns)
    assert sorted(trials["config_index"]) == list(range(6))
    assert set(trials["status"]) == {"TERMINATED"}
    # trial_id still joins the two folders: each configuration's epochs are its own.
    curves = epochs.merge(trials[["trial_id", "x", "activation"]], on="trial_id")
    assert len(curves) == 12
    assert (curves["metric_trial_id"] == curves["x"]).all()
    by_activation = curves.groupby("activation")
    for activation, rows in by_activation:
        assert (rows[f"acc_{activation}"] == 0.9).all()
        others = {"relu", "tanh", "sigmoid"} - {activation}
        assert rows[[f"acc_{other}" for other in others]].isna().all().all()
