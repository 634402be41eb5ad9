"""The commands that start no run import neither torch nor Ray: they answer at once. A
run's driver imports Ray but not torch: its trials train, on the workers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.runs import write_run
from tests.helpers.tensorboard import read_events

# The console script's main, in-process as `sweeps ARGS` runs it; then, whatever the exit,
# the torch and Ray modules it imported, as the last line of stdout.
WRAPPER = """
import json, sys
from sweeps.cli.app import main
try:
    main(sys.argv[1:])
finally:
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "ray"})
    print("imported:", json.dumps(heavy))
"""


def sweeps(*args: str) -> tuple[int, list[str], str]:
    """`sweeps ARGS` in a fresh interpreter: its exit code, the torch and Ray modules it
    imported, and its stderr."""
    done = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    last = done.stdout.rstrip("\n").rsplit("\n", 1)[-1]
    assert last.startswith("imported: "), done.stdout[-500:] + done.stderr[-2000:]
    return done.returncode, json.loads(last.removeprefix("imported: ")), done.stderr


@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["presets"], ["show", "quickstart"]], ids=" ".join
)
def test_commands_without_a_run_import_neither_torch_nor_ray(args: list[str]) -> None:
    code, imported, stderr = sweeps(*args)
    assert code == 0, stderr
    assert imported == []


def test_report_threshold_compare_of_finished_runs_import_neither_torch_nor_ray(
    tmp_path: Path,
) -> None:
    run_a = write_run(tmp_path)
    trials_b = pd.DataFrame([
        {"run_id": "run-3", "trial_id": f"t_{index:05d}", "status": "TERMINATED",
         "batch_size": batch_size, "val_accuracy": 0.8 + index / 100, "val_loss": 0.4}
        for index, batch_size in enumerate([64, 32])
    ])  # fmt: skip
    run_b = write_run(tmp_path, trials_b)
    for args in (["report", str(run_a)], ["threshold", str(run_a)],
                 ["compare", str(run_a), str(run_b)]):  # fmt: skip
        code, imported, stderr = sweeps(*args)
        assert code == 0, (args, stderr)
        assert imported == [], args
    assert (run_a / "plots").is_dir()  # the report drew its figures, without torch
    # An error finds its exit code without importing the modules that could not have raised it.
    code, imported, stderr = sweeps("report", str(tmp_path / "missing"))
    assert code == 2 and stderr.startswith("error:"), stderr
    assert imported == []


@pytest.mark.slow
def test_a_runs_driver_imports_ray_but_not_torch(tmp_path: Path) -> None:
    # Two MLPs that fuse (the plan asks which may), with TensorBoard's logger on.
    args = ["run", "quickstart", "--epochs", "1", "--set", "batch_size=64",
            "--set", "lr=0.1,0.3", "--results", str(tmp_path)]  # fmt: skip
    code, imported, stderr = sweeps(*args)
    assert code == 0, stderr
    assert "ray" in imported and not [m for m in imported if m.split(".")[0] == "torch"]
    folders = sorted(tmp_path.glob("quickstart/*/tensorboard/*"))
    assert len(folders) == 2  # and its logger wrote every configuration's curves
    for folder in folders:
        events = read_events(folder)
        assert list(events.scalars["val_accuracy"]) == [1] and events.status == "STATUS_SUCCESS"
