"""Runs under faults, as a user meets them: the console script in its own process, killed
at the worst moment, on a disk that fills up, with stale state left from earlier runs."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml

from tests.helpers.processes import wait_for_rows
from tests.helpers.runs import assert_each_configuration_once, sleepy_spec
from tests.sweeps.conftest import plugin_env

pytestmark = pytest.mark.slow
SWEEPS = [sys.executable, "-m", "sweeps"]


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SWEEPS, *args], env=env or plugin_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def resume(run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SWEEPS, "resume", str(run_dir)], env=plugin_env(),
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def test_kill_9_as_the_first_row_lands_then_resume_never_retrains_it(tmp_path: Path) -> None:
    xs = [1, 2, 3, 4]
    results = tmp_path / "results"
    process = start("run", str(sleepy_spec(tmp_path / "s.yaml", xs)), "--results", str(results))
    wait_for_rows(process, "sleepy/*/trials/*.parquet", results, 1)
    children = descendants(process.pid)  # the embedded Ray's processes
    process.kill()  # SIGKILL at once: Tune has had no time to save that the trial ended
    process.communicate(timeout=30)
    (run_dir,) = (results / "sleepy").iterdir()
    before = pd.read_parquet(run_dir / "trials")
    assert len(before) >= 1
    # Nothing of that run's Ray is left behind (and no `ray stop` that would end others').
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, [p.cmdline() for p in alive]
    resumed = resume(run_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(before)} of 4 configurations have results" in resumed.stderr
    assert_each_configuration_once(run_dir, xs, before)


def test_resume_ignores_a_truncated_tune_state(tmp_path: Path) -> None:
    xs = [1, 2, 3, 4, 5]
    results = tmp_path / "results"
    process = start("run", str(sleepy_spec(tmp_path / "s.yaml", xs)), "--results", str(results))
    wait_for_rows(process, "sleepy/*/trials/*.parquet", results, 2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1 and "sweeps resume" in stderr
    (run_dir,) = (results / "sleepy").iterdir()
    states = list((run_dir / "tune").rglob("experiment_state-*.json"))
    assert states
    for state in states:  # as a full disk leaves it
        state.write_bytes(state.read_bytes()[:40])
    before = pd.read_parquet(run_dir / "trials")
    resumed = resume(run_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert_each_configuration_once(run_dir, xs, before)


def test_a_diverged_trial_says_so_and_a_custom_metric_is_kept(tmp_path: Path) -> None:
    spec = tmp_path / "mixed.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "mixed", "trainer": "user_trainers:with_custom_metric", "dataset": None,
        "base": {"epochs": 2}, "grid": {"x": [1, 2]},
    }))  # fmt: skip
    completed = subprocess.run(
        [*SWEEPS, "run", str(spec), "--results", str(tmp_path)], env=plugin_env(),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    (run_dir,) = (tmp_path / "mixed").iterdir()
    trials = pd.read_parquet(run_dir / "trials").set_index("x")
    epochs = pd.read_parquet(run_dir / "epochs")
    assert list(epochs["my_metric"].sort_values()) == [10.0, 10.0, 20.0, 20.0]
    assert trials.loc[1, "my_metric"] == 10.0 and trials.loc[1, "my_tag"] == "x1"
    assert trials.loc[2, "status"] == "DIVERGED"
    assert trials.loc[2, "error"] == "loss became NaN at epoch 2"
    assert "diverged: loss became NaN at epoch 2" in completed.stderr
    assert "2 trials: 1 finished, 1 diverged, 0 failed" in completed.stdout


def test_builtin_trainer_at_lr_100_diverges(tmp_path: Path) -> None:
    completed = subprocess.run(
        [*SWEEPS, "run", "quickstart", "--results", str(tmp_path), "--epochs", "2",
         "--set", "batch_size=64", "--set", "activation=exponential", "--set", "lr=1,100"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    (run_dir,) = (tmp_path / "quickstart").iterdir()
    trials = pd.read_parquet(run_dir / "trials").set_index("lr")
    assert (
        trials.loc[100, "status"] == "DIVERGED"
        and "became NaN at epoch 1" in trials.loc[100, "error"]
    )
    assert trials.loc[1, "status"] == "TERMINATED"


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at `path` (root only: CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_ends_in_one_line_and_the_run_resumes(tmp_path: Path) -> None:
    xs = [1, 2, 3, 4, 5, 6]
    with small_disk(tmp_path / "disk", "4m") as disk:
        results = disk / "results"
        process = start("run", str(sleepy_spec(tmp_path / "s.yaml", xs)), "--results",
                        str(results))  # fmt: skip
        wait_for_rows(process, "sleepy/*/trials/*.parquet", results, 1)
        filler = disk / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as file:
            while True:
                file.write(b"\0" * 65536)
        stdout, stderr = process.communicate(timeout=180)
        assert process.returncode == 1, stderr
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert "Traceback" not in stdout + stderr
        failures = [line for line in lines if line.startswith("error:")]
        assert len(failures) == 1 and "No space left on device" in failures[0], stderr
        (run_dir,) = (results / "sleepy").iterdir()
        assert f"sweeps resume {run_dir}" in stderr
        before = pd.read_parquet(run_dir / "trials")  # every file written is whole
        pd.read_parquet(run_dir / "epochs")
        assert 1 <= len(before) < 6
        filler.unlink()
        resumed = resume(run_dir)
        assert resumed.returncode == 0, resumed.stderr
        assert_each_configuration_once(run_dir, xs, before)


def test_credentials_in_the_environment_reach_no_file_ray_writes(tmp_path: Path) -> None:
    """Tune would copy AWS_* into each trial's runtime_env, which Ray's agent logs."""
    canary = "sweeps-canary-SECRET-123"
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths
    env = {**plugin_env(), "RAY_TMPDIR": str(ray_tmp),
           "AWS_ACCESS_KEY_ID": "sweeps-canary-ID", "AWS_SECRET_ACCESS_KEY": canary}  # fmt: skip
    completed = subprocess.run(
        [*SWEEPS, "run", str(sleepy_spec(tmp_path / "s.yaml", [1, 2])), "--results",
         str(tmp_path / "results")], env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    try:
        assert completed.returncode == 0, completed.stderr
        assert list(ray_tmp.rglob("runtime_env_agent.log"))  # where it leaked to was looked at
        leaked = [path for folder in (ray_tmp, tmp_path) for path in folder.rglob("*")
                  if path.is_file() and b"sweeps-canary" in path.read_bytes()]  # fmt: skip
        assert not leaked
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_a_stale_ray_pointer_and_ray_address_do_not_capture_the_embedded_ray(
    tmp_path: Path,
) -> None:
    """A killed head leaves `<tmp>/ray/ray_current_cluster` naming a dead port; plain
    ray.init() would try to join it for minutes."""
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text("127.0.0.1:6399\n")
    env = {**plugin_env(), "RAY_TMPDIR": str(ray_tmp), "RAY_ADDRESS": "127.0.0.1:6399"}
    try:
        completed = subprocess.run(
            [*SWEEPS, "run", str(sleepy_spec(tmp_path / "s.yaml", [1])), "--results",
             str(tmp_path / "results")], env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert completed.returncode == 0, completed.stderr
    (run_dir,) = (tmp_path / "results" / "sleepy").iterdir()
    manifest = yaml.safe_load((run_dir / "manifest.json").read_text())
    assert manifest["ray_address"] == "embedded"
    assert not manifest["ray_gcs_address"].endswith(":6399")


def test_an_address_where_a_web_server_listens_fails_fast(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        port = server.stdout.readline().split("port ")[1].split()[0]  # "Serving HTTP on ..."
        began = time.monotonic()
        completed = subprocess.run(
            [*SWEEPS, "run", "quickstart", "--address", f"127.0.0.1:{port}", "--results",
             str(tmp_path / "results")], capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        took = time.monotonic() - began
    finally:
        server.kill()
        server.wait()
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.startswith("error: ") and f"127.0.0.1:{port}" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1 and took < 60
    assert not (tmp_path / "results").exists()
