"""bench/gpu_check.py as a user runs it, on the CPU: the checks that need no CUDA run and
pass, the rest say they were skipped, and the table's closing line counts no failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.py"


def run(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SWEEPS_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip


@pytest.mark.slow
def test_the_cpu_parts_run_and_pass(mnist_dir) -> None:
    result = run("--device", "cpu", "--quick", data_dir=mnist_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["| check | result | detail |", "|---|---|---|"]
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1] for line in lines[2:]
            if line.startswith("| ")}  # fmt: skip
    for batch_size in (8, 64, 600):
        assert rows[f"graphs auto = off, model A, batch {batch_size}"] == "PASS"
    assert (
        rows["pack of 6 = each alone (run 1)"] == rows["pack of 6 = each alone (run 2)"] == "PASS"
    )
    assert rows["capture + self-check: cnn1"] == "skip"
    assert rows["no host sync in epochs >= 2"] == "skip"
    assert rows["precision"] == "fp32 (matmul ieee, conv ieee)"
    assert rows["G1 batch-8 epoch: DataLoader loop (Ray example)"].endswith(" s")
    assert rows["G4 4 bundles: one pack"].endswith(" s")
    assert "FAIL" not in rows.values()
    assert lines[-1].startswith("0 failed; ")


def test_without_cuda_it_says_so_and_exits_2(mnist_dir) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    result = run(data_dir=mnist_dir)
    assert result.returncode == 2
    assert result.stderr == "gpu_check: no CUDA device is visible; use --device cpu\n"
    assert result.stdout == ""
