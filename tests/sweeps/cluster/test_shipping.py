"""What a submitted job takes along (sweeps.cluster.shipping), planned without Ray."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sweeps.cluster.shipping import PACKAGES, ShippingError, plan_code, project_root

ROOT = Path(__file__).resolve().parents[3]
SWEEPS = Path(sys.executable).with_name("sweeps")  # the console script, as a user runs it


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project: a spec, its trainer, a secret and old results."""
    folder = tmp_path / "my-model"
    (folder / "results").mkdir(parents=True)
    (folder / "results" / "old.parquet").write_bytes(b"PAR1")
    (folder / "mytrain.py").write_text("def train(config, dataset, report):\n    return {}\n")
    (folder / ".env").write_text("KEY=do-not-ship\n")
    (folder / "sweep.yaml").write_text(yaml.safe_dump({
        "name": "mine", "trainer": "mytrain:train", "dataset": None, "grid": {"lr": [0.1]},
    }))  # fmt: skip
    return folder


def test_a_spec_file_ships_its_folder_and_sweeps_its_packages(project: Path) -> None:
    code = plan_code(str(project / "sweep.yaml"))
    assert code.working_dir is not None
    assert code.working_dir.root == project.resolve()
    assert code.working_dir.files == 2  # mytrain.py, sweep.yaml
    assert set(code.working_dir.excluded) == {".env", "results/"}
    assert [module.root for module in code.py_modules] == [ROOT / p for p in PACKAGES]
    env = code.runtime_env()
    assert env["working_dir"] == str(project.resolve())
    assert env["py_modules"] == [str(ROOT / package) for package in PACKAGES]
    assert ".[eE][nN][vV]" in env["excludes"]  # the secrets, in either case


def test_a_preset_ships_no_working_dir(project: Path) -> None:
    code = plan_code("quickstart")
    assert code.working_dir is None
    assert "working_dir" not in code.runtime_env()


def test_working_dir_and_py_modules_flags(project: Path, tmp_path: Path) -> None:
    library = tmp_path / "mylib"
    library.mkdir()
    (library / "__init__.py").write_text("")
    code = plan_code(str(project / "sweep.yaml"), working_dir=tmp_path, py_modules=[library])
    assert code.working_dir is not None and code.working_dir.root == tmp_path.resolve()
    assert code.py_modules[0].root == library.resolve()
    lines = code.lines()
    assert lines[0].startswith(f"shipping {tmp_path.resolve()} (")
    assert (
        lines[1] == f"shipping {library.resolve()} (1 files, 0.0 MB; excluded: nothing) as a module"
    )
    assert len(lines) == 1 + 1 + len(PACKAGES)


@pytest.mark.parametrize("flag", ["working_dir", "py_modules"])
def test_a_folder_that_is_not_one_is_named(project: Path, flag: str) -> None:
    missing = project / "nosuch"
    value = missing if flag == "working_dir" else [missing]
    with pytest.raises(ShippingError) as raised:
        plan_code(str(project / "sweep.yaml"), **{flag: value})  # type: ignore[arg-type]
    option = "--working-dir" if flag == "working_dir" else "--py-modules"
    assert str(raised.value) == f"{option} {str(missing)!r}: not a folder"


def test_the_checkout_is_found() -> None:
    assert project_root() == ROOT


def test_submit_refuses_a_missing_working_dir_before_reaching_the_cluster(
    project: Path,
) -> None:
    """Exit 2, one line, though the address answers nothing: checked before connecting."""
    missing = project / "nosuch"
    result = subprocess.run(
        [SWEEPS, "submit", str(project / "sweep.yaml"), "--address", "127.0.0.1:1",
         "--results", "/shared/sweeps", "--working-dir", str(missing)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: --working-dir {str(missing)!r}: not a folder\n"
    assert result.stdout == ""
