"""analysis.rundir on run directories written here: how a run is named, found and read
file by file. test_load.py reads whole runs through `load_run`; test_place.py has the
object stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.rundir import (
    FINISHED,
    RunDataError,
    RunDir,
    Status,
    as_tuple,
    find_runs,
    to_frame,
)
from tests.helpers.runs import write_run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """<tmp>/sweep/run-2: trials t_00000 and t_00001, two epochs each, spec and manifest."""
    return write_run(tmp_path)


def write_rows(file: Path, rows: list[dict[str, object]]) -> None:
    pq.write_table(pa.Table.from_pylist(rows), file)


def test_a_local_run_is_named_by_the_path_as_given(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(run_dir.parent.parent)
    run = RunDir.of("sweep/run-2/")
    assert run.shown == "sweep/run-2" and run.place.path == str(run_dir)
    assert (run.id, run.parent_name) == ("run-2", "sweep")
    assert run.show("trials") == "sweep/run-2/trials"


def test_a_file_uri_is_its_local_path(run_dir: Path) -> None:
    run = RunDir.of(f"file://{run_dir}")
    assert run.place.local and run.shown == str(run_dir)
    assert run.show("spec.yaml") == f"{run_dir}/spec.yaml"


def test_an_unknown_scheme_names_the_run_directory() -> None:
    with pytest.raises(RunDataError) as caught:
        RunDir.of("nosuch://bucket/run")
    assert str(caught.value) == (
        "run directory 'nosuch://bucket/run': no filesystem for nosuch://"
        " (a local path, file://, s3:// or gs://)"
    )


def test_a_run_is_a_folder_with_a_spec_or_trials(tmp_path: Path) -> None:
    (tmp_path / "spec-only").mkdir()
    (tmp_path / "spec-only" / "spec.yaml").write_text("name: x\n")
    (tmp_path / "trials-only" / "trials").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    found = {name: RunDir.of(tmp_path / name).is_run()
             for name in ("spec-only", "trials-only", "empty", "nowhere")}  # fmt: skip
    assert found == {"spec-only": True, "trials-only": True, "empty": False, "nowhere": False}


def test_parquet_files_pass_over_those_being_written_and_other_files(run_dir: Path) -> None:
    for name in (".t_00002.parquet", "_t_00003.parquet", "notes.txt"):
        (run_dir / "epochs" / name).write_bytes(b"half a file")
    run = RunDir.of(run_dir)
    names = [Path(path).name for path in run.parquet_files("epochs")]
    assert names == ["t_00000.parquet", "t_00001.parquet"]
    assert run.parquet_files("no-such-folder") == []


def test_a_folder_without_files_reads_as_an_empty_frame(run_dir: Path) -> None:
    (run_dir / "plots").mkdir()
    run = RunDir.of(run_dir)
    assert run.read_folder("plots").empty and run.read_folder("tune").empty


def test_files_whose_columns_disagree_are_named_with_the_column(run_dir: Path) -> None:
    write_rows(run_dir / "trials" / "t_00002.parquet", [{"trial_id": "t_00002", "batch_size": "8"}])
    with pytest.raises(RunDataError) as caught:
        RunDir.of(run_dir).read_folder("trials")
    assert str(caught.value) == (
        f"trials/ in {str(run_dir)!r} has files whose columns disagree (Unable to merge:"
        " Field batch_size has incompatible types: int64 vs string)"
    )


def test_an_unreadable_file_gives_pyarrows_first_sentence_without_its_path(
    run_dir: Path,
) -> None:
    (run_dir / "trials" / "t_00000.parquet").write_bytes(b"not parquet at all\n" * 20)
    with pytest.raises(RunDataError) as caught:
        RunDir.of(run_dir).read_folder("trials")
    assert str(caught.value) == (
        f"trials/t_00000.parquet in {str(run_dir)!r} is not a readable Parquet file"
        " (Parquet magic bytes not found in footer)"
    )


def test_only_old_epochs_have_their_training_metrics_renamed(run_dir: Path) -> None:
    # `loss` is a config key in the trials; in new epochs beside train_loss it is a metric
    # of a trainer's own, not the training loss under its old name.
    write_rows(run_dir / "trials" / "t_00002.parquet",
               [{"trial_id": "t_00002", "batch_size": 8, "loss": "mse"}])  # fmt: skip
    for file in (run_dir / "epochs").iterdir():
        write_rows(file, [{"trial_id": file.stem, "epoch": 1, "train_loss": 0.5, "loss": 0.4}])
    run = RunDir.of(run_dir)
    trials = run.read_folder("trials")
    assert trials["loss"].iloc[-1] == "mse" and "train_loss" not in trials.columns
    epochs = run.read_folder("epochs")
    assert epochs[["train_loss", "loss"]].values.tolist() == [[0.5, 0.4], [0.5, 0.4]]


def test_a_missing_or_empty_spec_and_a_missing_manifest_read_as_empty(run_dir: Path) -> None:
    (run_dir / "spec.yaml").write_text("")
    (run_dir / "manifest.json").unlink()
    run = RunDir.of(run_dir)
    assert run.read_spec() == {} and run.read_manifest() == {}
    (run_dir / "spec.yaml").unlink()
    assert run.read_spec() == {}


def test_the_spec_and_manifest_read_as_written(run_dir: Path) -> None:
    run = RunDir.of(run_dir)
    assert run.read_spec() == {"name": "sweep", "grid": {"batch_size": [64, 32]}}
    assert run.read_manifest() == {"run_id": "run-2", "host": "h"}


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """Runs under two roots, a/ and b/; folders that hold no run beside them."""
    for root, run_id in (("b", "run-1"), ("a", "run-2"), ("a", "run-1")):
        trials = [{"run_id": run_id, "trial_id": "t_00000", "status": "TERMINATED",
                   "batch_size": 64, "val_accuracy": 0.9}]  # fmt: skip
        write_run(tmp_path / root, pd.DataFrame(trials))
    (tmp_path / "a" / "sweep" / "run-3").mkdir()  # no spec, no trials: no run
    (tmp_path / "a" / "sweep" / "run-4").write_text("a file")
    return tmp_path


def test_find_runs_globs_any_part_and_gives_runs_in_name_order(results: Path) -> None:
    runs = find_runs(f"{results}/*/sweep/run-?")
    assert [run.shown for run in runs] == [
        f"{results}/a/sweep/run-1", f"{results}/a/sweep/run-2", f"{results}/b/sweep/run-1",
    ]  # fmt: skip
    assert [run.id for run in find_runs(f"{results}/a/*/run-[2-9]")] == ["run-2"]


def test_find_runs_takes_a_uri_and_a_pattern_with_no_glob(results: Path) -> None:
    runs = find_runs(f"file://{results}/b/sw*/run-*")
    assert [(run.id, run.parent_name) for run in runs] == [("run-1", "sweep")]
    (single,) = find_runs(results / "a" / "sweep" / "run-2")
    assert single.shown == f"{results}/a/sweep/run-2"


def test_find_runs_matching_no_run_names_the_pattern(results: Path) -> None:
    pattern = f"{results}/a/sweep/run-[34]"  # a folder without a run, and a file
    with pytest.raises(RunDataError) as caught:
        find_runs(pattern)
    assert str(caught.value) == f"no run directory matches {pattern!r}"


def test_to_frame_gives_list_columns_as_tuples_nested_too() -> None:
    table = pa.table({"hidden": [[64, 32], [128]], "grid": [[[1, 2]], []], "lr": [0.1, 0.5]})
    frame = to_frame(table)
    assert frame["hidden"].tolist() == [(64, 32), (128,)]
    assert frame["grid"].tolist() == [((1, 2),), ()]
    assert frame.groupby("hidden").size().to_dict() == {(64, 32): 1, (128,): 1}  # hashable
    assert frame["lr"].tolist() == [0.1, 0.5]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.array([[1, 2], [3, 4]]), ((1, 2), (3, 4))),
        ([1, [2, 3]], (1, (2, 3))),
        (np.int64(7), 7),
        ("relu", "relu"),
        (None, None),
    ],
)
def test_as_tuple_makes_arrays_and_lists_tuples_and_leaves_the_rest(
    value: object, expected: object
) -> None:
    result = as_tuple(value)
    assert result == expected and type(result) is type(expected)


def test_statuses_are_the_strings_the_trials_hold(run_dir: Path) -> None:
    for index, status in enumerate(["TERMINATED", "STOPPED", "ERROR", "DIVERGED"]):
        trial_id = f"t_0000{index}"
        write_rows(
            run_dir / "trials" / f"{trial_id}.parquet", [{"trial_id": trial_id, "status": status}]
        )
    statuses = RunDir.of(run_dir).read_folder("trials")["status"]
    assert [Status(status) for status in statuses] == [
        Status.DONE, Status.STOPPED, Status.FAILED, Status.DIVERGED,
    ]  # fmt: skip
    assert statuses.eq(Status.DIVERGED).tolist() == [False, False, False, True]
    assert statuses.isin(FINISHED).tolist() == [True, True, False, False]
