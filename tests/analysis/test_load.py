from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import analysis
from analysis import RunDataError, load_run
from tests.helpers.runs import truncate, write_pandas_run, write_run


def test_load_gives_trials_and_epochs(tmp_path: Path) -> None:
    trials, epochs = analysis.load(write_pandas_run(tmp_path))
    assert list(trials["trial_id"]) == ["t_0", "t_1"] and len(epochs) == 4
    run = load_run(write_pandas_run(tmp_path / "again"))
    assert run.name == "sweep" and run.swept == ["batch_size", "seed"]
    assert run.references[0]["source"] == "r"


def test_missing_or_empty_run_directory(tmp_path: Path) -> None:
    with pytest.raises(RunDataError, match=r"run directory '.*nowhere' does not exist"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "empty" / "trials").mkdir(parents=True)
    with pytest.raises(RunDataError, match="has no trial results"):
        load_run(tmp_path / "empty")


def test_pyarrow_run_reads_as_pandas_would(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path)
    for name in (".t_00009.parquet", "_t_00009.parquet"):  # still being written: skipped
        (run_dir / "trials" / name).write_bytes(b"half a file")
    run = load_run(run_dir)
    expected = pd.read_parquet(run_dir / "trials", ignore_prefixes=[".", "_"])
    pd.testing.assert_frame_equal(run.trials, expected.sort_values("trial_id", ignore_index=True))
    pd.testing.assert_frame_equal(run.epochs, pd.read_parquet(run_dir / "epochs"))
    assert list(run.trials["trial_id"]) == ["t_00000", "t_00001"] and len(run.epochs) == 4
    assert run.manifest == {"run_id": "run-2", "host": "h"} and run.swept == ["batch_size"]
    (run_dir / "manifest.json").unlink()
    assert load_run(run_dir).manifest == {}


def test_files_with_a_column_more_concatenate(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path)
    extra = {"run_id": "run-2", "trial_id": "t_00002", "status": "ERROR", "batch_size": 16,
             "val_accuracy": None, "val_loss": None, "error": "out of memory"}  # fmt: skip
    pq.write_table(pa.Table.from_pylist([extra]), run_dir / "trials" / "t_00002.parquet")
    trials = load_run(run_dir).trials
    assert list(trials["trial_id"]) == ["t_00000", "t_00001", "t_00002"]
    assert trials["error"].isna().tolist() == [True, True, False]
    assert trials["val_accuracy"].dtype == "float64" and trials["batch_size"].dtype == "int64"


def garbage(file: Path) -> None:
    file.write_bytes(b"not parquet at all\n" * 20)


@pytest.mark.parametrize(
    ("name", "spoil"),
    [
        ("trials/t_00001.parquet", truncate),
        ("trials/t_00000.parquet", garbage),
        ("trials/t_00001.parquet", lambda file: file.write_bytes(b"")),
        ("epochs/t_00001.parquet", truncate),
    ],
)
def test_unreadable_parquet_is_named(tmp_path: Path, name: str, spoil: Any) -> None:
    run_dir = write_run(tmp_path)
    spoil(run_dir / name)
    with pytest.raises(RunDataError) as caught:
        load_run(run_dir)
    message = str(caught.value)
    assert message.startswith(f"{name} in {str(run_dir)!r} is not a readable Parquet file (")
    assert message.endswith(")") and "\n" not in message
    assert str(run_dir / name) not in message  # named once, relative to the run


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("spec.yaml", "grid: {a: [1,\n", "spec.yaml in {run!r} is not valid YAML"),
        ("spec.yaml", "- just\n- a list\n", "spec.yaml in {run!r} is not a YAML mapping"),
        ("spec.yaml", b"name: \xc3\x28\n", "spec.yaml in {run!r} is not valid YAML"),
        ("manifest.json", '{"run_id": "run-2",', "manifest.json in {run!r} is not valid JSON"),
        ("manifest.json", "[1, 2]", "manifest.json in {run!r} is not a JSON object"),
        ("manifest.json", b"name: \xc3\x28\n", "manifest.json in {run!r} is not valid JSON"),
    ],
)
def test_corrupt_spec_or_manifest_is_named(
    tmp_path: Path, name: str, text: str | bytes, message: str
) -> None:
    run_dir = write_run(tmp_path)
    file = run_dir / name
    file.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(RunDataError) as caught:
        load_run(run_dir)
    assert str(caught.value).startswith(message.format(run=str(run_dir)))
    assert "\n" not in str(caught.value)


def test_old_runs_epochs_read_under_the_new_names(tmp_path: Path) -> None:
    """Runs written before the epochs' training metrics were renamed (`loss` was also a
    config key) read like new ones; lists come back as tuples, hashable."""
    run_dir = write_run(tmp_path)
    old = {"run_id": "run-2", "trial_id": "t_00000", "epoch": 1, "loss": 0.4, "accuracy": 0.9}
    pq.write_table(pa.Table.from_pylist([old]), run_dir / "epochs" / "t_00000.parquet")
    pq.write_table(pa.Table.from_pylist([{**old, "trial_id": "t_00001"}]),
                   run_dir / "epochs" / "t_00001.parquet")  # fmt: skip
    trial = {"run_id": "run-2", "trial_id": "t_00002", "status": "TERMINATED",
             "batch_size": 8, "hidden": [64, 64], "val_accuracy": 0.5}  # fmt: skip
    pq.write_table(pa.Table.from_pylist([trial]), run_dir / "trials" / "t_00002.parquet")
    run = load_run(run_dir)
    assert list(run.epochs["train_loss"]) == [0.4, 0.4] and "loss" not in run.epochs.columns
    assert run.trials["hidden"].iloc[2] == (64, 64)
    assert run.trials.groupby("hidden").size().to_dict() == {(64, 64): 1}


def test_a_uri_and_a_pattern_name_runs(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "a")
    trials, _ = analysis.load(f"file://{run_dir}")
    assert list(trials["trial_id"]) == ["t_00000", "t_00001"]
    with pytest.raises(RunDataError, match="run directory 'nosuch://x/y': "):
        load_run("nosuch://x/y")
    second = write_run(tmp_path / "b")
    (second / "trials" / "t_00000.parquet").unlink()
    (tmp_path / "c" / "sweep" / "run-9").mkdir(parents=True)  # no run: passed over
    trials, epochs = analysis.load_runs(f"{tmp_path}/*/sweep/run-*")
    assert list(trials["sweep"]) == ["sweep"] * 3 and len(epochs) == 4 + 4
