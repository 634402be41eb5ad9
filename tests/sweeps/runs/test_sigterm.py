"""SIGTERM ends `sweeps run` as Ctrl-C does: the console script in its own process, sent
SIGTERM while it trains, alone (`kill`) or with every process of its group (`timeout`;
Slurm signals every process of a job)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from tests.helpers.processes import wait_for_rows
from tests.helpers.runs import assert_each_configuration_once, sleepy_spec
from tests.sweeps.conftest import plugin_env

pytestmark = pytest.mark.slow
SWEEPS = str(Path(sys.executable).with_name("sweeps"))  # the console script
XS = [1, 2, 3, 4, 5, 6]


def training(tmp_path: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """`sweeps run` started, once its output says a configuration has ended (and its row
    has landed) and the next trains; the stderr lines read so far."""
    process = subprocess.Popen(
        [SWEEPS, "run", str(sleepy_spec(tmp_path / "s.yaml", XS)), "--results",
         str(tmp_path / "results")],
        env=plugin_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # a process group of its own, to signal as a whole
    )  # fmt: skip
    assert process.stderr is not None
    lines: list[str] = []
    while not any(" 1/6 done " in line for line in lines):
        line = process.stderr.readline()
        assert line, (lines, process.communicate())
        lines.append(line)
    # The line comes with the trial's last report, its row a moment later.
    wait_for_rows(process, "sleepy/*/trials/*.parquet", tmp_path / "results", 1)
    return process, lines


def ended(process: subprocess.Popen[str], lines: list[str], tmp_path: Path) -> tuple[str, Path]:
    """Its whole stderr, once it has ended; the run directory."""
    _, rest = process.communicate(timeout=120)
    (run_dir,) = (tmp_path / "results" / "sleepy").iterdir()
    return "".join(lines) + rest, run_dir


def assert_ended_as_interrupted(code: int, stderr: str, run_dir: Path) -> pd.DataFrame:
    assert code == 1, stderr
    assert f"interrupted: continue with `sweeps resume {run_dir}`" in stderr
    # Ray's native handler: "*** SIGTERM received at time=... PC: @ 0x..." and exit 134.
    assert "SIGTERM received" not in stderr and "PC: @" not in stderr, stderr
    assert "Traceback" not in stderr, stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    trials = pd.read_parquet(run_dir / "trials")
    assert manifest["finished_at"] and manifest["counts"] == {"TERMINATED": len(trials)}
    assert 1 <= len(trials) < len(XS)
    return trials


def test_sigterm_ends_a_run_as_ctrl_c_does_and_resume_finishes_it(tmp_path: Path) -> None:
    process, lines = training(tmp_path)
    process.send_signal(signal.SIGTERM)  # `kill PID`
    stderr, run_dir = ended(process, lines, tmp_path)
    kept = assert_ended_as_interrupted(process.returncode, stderr, run_dir)
    resumed = subprocess.run([SWEEPS, "resume", str(run_dir)], env=plugin_env(),
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(kept)} of {len(XS)} configurations have results" in resumed.stderr
    assert_each_configuration_once(run_dir, XS, kept)


def test_sigterm_to_every_process_of_the_run_ends_it_in_seconds(tmp_path: Path) -> None:
    process, lines = training(tmp_path)
    ray = psutil.Process(process.pid).children(recursive=True)  # the embedded Ray's
    began = time.monotonic()
    os.killpg(process.pid, signal.SIGTERM)  # as `timeout` does, and Slurm to every process
    stderr, run_dir = ended(process, lines, tmp_path)
    took = time.monotonic() - began
    # Tune would wait a minute on the dead Ray, then Ray abort the driver.
    assert took < 30, (took, stderr)
    assert_ended_as_interrupted(process.returncode, stderr, run_dir)
    _, alive = psutil.wait_procs(ray, timeout=30)  # the run's watchdog ends what is left
    assert not alive, [p.cmdline() for p in alive]
