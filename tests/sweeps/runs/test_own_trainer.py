"""A user's own trainer, imported as Python imports a script's modules: from the spec's
folder and the current folder, on the driver and on the embedded Ray's workers, by
`resume` too. `sweeps` as a user runs it: the console script, piped, no PYTHONPATH."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

SWEEPS = str(Path(sys.executable).with_name("sweeps"))  # the venv's console script
# x fails while a file `broken-<x>` lies beside the module: a bug fixed before `resume`.
MODULE = """\
from pathlib import Path


def train(config, dataset, report):
    if (Path(__file__).parent / f"broken-{config['x']}").exists():
        raise RuntimeError(f"x={config['x']} is broken")
    for epoch in range(1, config["epochs"] + 1):
        report({"epoch": epoch, "loss": 1 / epoch, "val_accuracy": 1 - 1 / (epoch + config["x"])})
    return {"val_accuracy": 1 - 1 / (config["epochs"] + config["x"])}
"""


def sweeps(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`sweeps ARGS` run in `cwd`, piped, with no PYTHONPATH to find anything by."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([SWEEPS, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def lab(folder: Path, trainer: str = "labtrain:train", xs: tuple[int, ...] = (1, 2)) -> Path:
    """`folder` with labtrain.py and spec.yaml (results under `folder`/results); the spec."""
    folder.mkdir(parents=True)
    (folder / "labtrain.py").write_text(MODULE)
    spec = {"name": "lab", "trainer": trainer, "dataset": None, "base": {"epochs": 2},
            "grid": {"x": list(xs)}, "fuse": "off", "callbacks": []}  # fmt: skip
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    return folder / "spec.yaml"


def only_run(results: Path) -> Path:
    (run_dir,) = (results / "lab").iterdir()
    return run_dir


@pytest.mark.slow
def test_a_trainer_in_the_current_folder_runs_without_pythonpath(tmp_path: Path) -> None:
    spec = lab(tmp_path / "mine")
    done = sweeps("run", "spec.yaml", cwd=spec.parent)
    assert done.returncode == 0, done.stderr
    run_dir = only_run(spec.parent / "results")
    trials = pd.read_parquet(run_dir / "trials")
    assert sorted(trials["x"]) == [1, 2] and set(trials["status"]) == {"TERMINATED"}
    assert json.loads((run_dir / "manifest.json").read_text())["import_path"] == [str(spec.parent)]


@pytest.mark.slow
def test_the_spec_folder_is_searched_from_another_and_resume_finds_it_again(
    tmp_path: Path,
) -> None:
    """The spec and its module in A, run from B (Ray's workers have B, the driver's
    folder, but A only as ours): x=2 fails; fixed, resumed from C, it trains."""
    spec = lab(tmp_path / "A")
    (spec.parent / "broken-2").touch()
    elsewhere, later = tmp_path / "B", tmp_path / "C"
    elsewhere.mkdir()
    later.mkdir()
    results = tmp_path / "results"
    first = sweeps("run", str(spec), "--results", str(results), cwd=elsewhere)
    assert first.returncode == 1, first.stderr
    run_dir = only_run(results)
    trials = pd.read_parquet(run_dir / "trials").set_index("x")
    assert trials.loc[1, "status"] == "TERMINATED"
    assert trials.loc[2, "error"].startswith("RuntimeError: x=2 is broken")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["import_path"] == [str(spec.parent), str(elsewhere)]

    (spec.parent / "broken-2").unlink()
    resumed = sweeps("resume", str(run_dir), "--retry-failed", cwd=later)
    assert resumed.returncode == 0, resumed.stderr
    trials = pd.read_parquet(run_dir / "trials")
    assert sorted(trials["x"]) == [1, 2] and set(trials["status"]) == {"TERMINATED"}


def test_an_unknown_module_names_the_folders_searched_and_starts_nothing(tmp_path: Path) -> None:
    spec = lab(tmp_path / "A", trainer="nosuch:train")
    elsewhere = tmp_path / "B"
    elsewhere.mkdir()
    refused = sweeps("run", str(spec), "--results", str(tmp_path / "results"), cwd=elsewhere)
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        "error: trainer 'nosuch:train': cannot import 'nosuch' (No module named 'nosuch');"
        f" searched {spec.parent}, {elsewhere}"
    )
    assert refused.stderr.endswith(" and the installed packages\n")
    assert refused.stderr.count("\n") == 1 and refused.stdout == ""
    assert not (tmp_path / "results").exists()

    # One model, no Ray: the current folder only.
    one = sweeps("train", "--trainer", "nosuch:train", cwd=elsewhere)
    assert one.returncode == 2 and one.stderr.count("\n") == 1
    assert f"(No module named 'nosuch'); searched {elsewhere}" in one.stderr
