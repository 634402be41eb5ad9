"""A corrupt or truncated file in a run directory: one line naming it, exit 2, no traceback,
from the console script as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers.runs import truncate, write_run


def sweeps(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sweeps", *args], capture_output=True, text=True)


def assert_names(completed: subprocess.CompletedProcess[str], name: str) -> None:
    """Exit 2 and exactly one line on stderr, `error: ...`, that names the file."""
    err = completed.stderr
    assert completed.returncode == 2, (completed.stdout, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert name in err, err
    assert "Traceback" not in completed.stdout + err


@pytest.mark.parametrize("command", [["report", "--no-plots"], ["threshold"]])
def test_truncated_trial_file(tmp_path: Path, command: list[str]) -> None:
    run_dir = write_run(tmp_path)
    truncate(run_dir / "trials" / "t_00001.parquet")
    completed = sweeps(command[0], str(run_dir), *command[1:])
    assert_names(completed, "trials/t_00001.parquet")
    assert "is not a readable Parquet file" in completed.stderr


def test_garbage_epochs_file_in_report(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path)
    (run_dir / "epochs" / "t_00000.parquet").write_bytes(b"\x00garbage\xff" * 50)
    assert_names(sweeps("report", str(run_dir), "--no-plots"), "epochs/t_00000.parquet")


@pytest.mark.parametrize(("name", "text"), [("spec.yaml", "grid: {a: [1,\n"),
                                            ("manifest.json", '{"run_id": ')])  # fmt: skip
def test_corrupt_spec_or_manifest_in_report(tmp_path: Path, name: str, text: str) -> None:
    run_dir = write_run(tmp_path)
    (run_dir / name).write_text(text)
    assert_names(sweeps("report", str(run_dir), "--no-plots"), name)


def test_compare_names_the_corrupt_run(tmp_path: Path) -> None:
    good, bad = write_run(tmp_path / "good"), write_run(tmp_path / "bad")
    truncate(bad / "trials" / "t_00000.parquet")
    completed = sweeps("compare", str(good), str(bad))
    assert_names(completed, f"trials/t_00000.parquet in {str(bad)!r}")


def resumable_run(root: Path) -> Path:
    """The hand-made run with the resolved spec a real run saves."""
    from sweeps.plan.spec import parse_spec, to_yaml

    run_dir = write_run(root)
    spec = parse_spec({"name": "sweep", "dataset": "digits", "grid": {"batch_size": [64, 32]},
                       "resources": {"gpus": 0}, "max_bundle": 1}, "test")  # fmt: skip
    (run_dir / "spec.yaml").write_text(to_yaml(spec))
    for index, path in enumerate(sorted((run_dir / "trials").iterdir())):
        table = pq.read_table(path)
        pq.write_table(table.append_column("config_index", pa.array([index])), path)
    return run_dir


@pytest.mark.parametrize(
    ("name", "damage", "says"),
    [
        ("spec.yaml", b"name: [unclosed\n", "not valid YAML"),
        ("manifest.json", b'{"run_id": ', "not valid JSON"),
        ("trials/t_00001.parquet", None, "not a readable trials file"),
    ],
)
def test_resume_names_the_damaged_file(
    tmp_path: Path, name: str, damage: bytes | None, says: str
) -> None:
    run_dir = resumable_run(tmp_path)
    if damage is None:
        truncate(run_dir / name)
    else:
        (run_dir / name).write_bytes(damage)
    completed = sweeps("resume", str(run_dir))
    assert_names(completed, name)
    assert says in completed.stderr
    assert not (run_dir / "tune").exists()  # nothing was started
