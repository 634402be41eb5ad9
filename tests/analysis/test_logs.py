"""analysis.logs: a run's logs/ read back from real files, and which Tune trial's log a
configuration (its trial_id or config_index) is in, by the trials' Parquet rows.
tests/sweeps/cli/test_logs.py has `sweeps logs` on runs that made their logs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.logs import TrialLog, log_names, read_logs
from analysis.rundir import RunDataError, RunDir

# The trials' rows as sweeps writes them: a fused bundle's configurations (t_00000-0, -1)
# name their Tune trial in bundle_id; a configuration trained alone has none.
ROWS = [
    {"trial_id": "t_00000-0", "config_index": 0, "bundle_id": "t_00000"},
    {"trial_id": "t_00000-1", "config_index": 1, "bundle_id": "t_00000"},
    {"trial_id": "t_00001", "config_index": 2, "bundle_id": None},
    {"trial_id": "t_00002", "config_index": 3, "bundle_id": None},  # printed nothing
]
LOGS = {
    "t_00000.txt": b"# Tune trial t_00000 trained configurations ...\nepoch one\n",
    "t_00001.txt": b"loss \xff\xfe went up\n",  # a trainer's bytes need not be UTF-8
    "t_00004.txt": b"still training alone\n",  # no row yet
    "t_00005.txt": b"still training, fused\n",  # no rows yet
    ".t_00006.txt": b"half written",
    "notes.md": b"not a log",
}


def write_logs_run(root: Path, rows: list[dict[str, object]] | None = None) -> RunDir:
    """A run directory with logs/ as LOGS, and a Parquet file a row of `rows` (ROWS by
    default; [] writes no trials/ at all)."""
    run_dir = root / "sweep" / "run-1"
    (run_dir / "logs" / "old.txt").mkdir(parents=True)  # a folder, whatever its name
    for name, data in LOGS.items():
        (run_dir / "logs" / name).write_bytes(data)
    for row in ROWS if rows is None else rows:
        (run_dir / "trials").mkdir(exist_ok=True)
        table = pa.Table.from_pylist([{**row, "status": "TERMINATED"}],
                                     schema=pa.schema([("trial_id", pa.string()),
                                                       ("config_index", pa.int64()),
                                                       ("bundle_id", pa.string()),
                                                       ("status", pa.string())]))  # fmt: skip
        pq.write_table(table, run_dir / "trials" / f"{row['trial_id']}.parquet")
    return RunDir.of(run_dir)


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    return write_logs_run(tmp_path)


def test_log_names_are_the_trials_text_files_in_id_order(run: RunDir) -> None:
    # Not a dot-file still being written, another file, nor a folder.
    assert log_names(run) == ["t_00000", "t_00001", "t_00004", "t_00005"]


def test_a_run_whose_trials_printed_nothing_has_no_logs(tmp_path: Path) -> None:
    run_dir = tmp_path / "run-1"
    run_dir.mkdir()
    run = RunDir.of(run_dir)
    assert log_names(run) == [] and read_logs(run) == []


def test_every_trials_log_with_its_path_and_text(run: RunDir) -> None:
    logs = read_logs(run)
    assert [log.name for log in logs] == ["t_00000", "t_00001", "t_00004", "t_00005"]
    assert logs[0] == TrialLog("t_00000", f"{run.shown}/logs/t_00000.txt",
                               LOGS["t_00000.txt"].decode())  # fmt: skip
    # Bytes that are no UTF-8 are shown replaced, not an error.
    assert logs[1].text == "loss \ufffd\ufffd went up\n"


@pytest.mark.parametrize(
    ("which", "names"),
    [
        ("t_00001", ["t_00001"]),  # a Tune trial's id
        ("2", ["t_00001"]),  # its config_index
        ("0", ["t_00000"]),  # a configuration of a fused bundle: its bundle's log
        ("1", ["t_00000"]),
        ("t_00000-1", ["t_00000"]),  # ... by its trial_id
        ("3", []),  # a configuration that printed nothing
        ("t_00002", []),
        ("t_00004", ["t_00004"]),  # a log of a trial with no row yet
        ("t_00005-1", ["t_00005"]),  # a fused configuration still training: its trial's
    ],
)
def test_which_names_the_log_of_the_trial_that_trained_it(
    run: RunDir, which: str, names: list[str]
) -> None:
    assert [log.name for log in read_logs(run, which)] == names


@pytest.mark.parametrize("which", ["7", "t_00009", "t_00009-1"])
def test_which_naming_nothing_of_the_run_is_an_error_saying_what_to_give(
    run: RunDir, which: str
) -> None:
    with pytest.raises(RunDataError) as raised:
        read_logs(run, which)
    assert str(raised.value) == (
        f"run {run.shown!r} has no configuration {which!r} (give a trial_id or a config_index)"
    )


def test_a_run_with_no_rows_yet_finds_its_trials_by_their_ids(tmp_path: Path) -> None:
    run = write_logs_run(tmp_path, rows=[])
    assert [log.text for log in read_logs(run, "t_00005-0")] == ["still training, fused\n"]
    with pytest.raises(RunDataError, match="has no configuration '0'"):
        read_logs(run, "0")  # a config_index only the rows know
