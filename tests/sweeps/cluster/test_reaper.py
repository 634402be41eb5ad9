"""sweeps.cluster.reaper: on plain processes (what it ends, how, and what it spares), and
behind a real embedded Ray whose driver is killed with -9."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from sweeps.cluster.reaper import main, reap, watch
from tests.sweeps.cluster.conftest import (
    AGENTS,
    WAIT_FOR_AGENTS,
    WAIT_FOR_STDIN,
    Cluster,
    first_line,
    python,
    ray_env,
    running,
    snapshot,
    start_python,
    stop,
)

# Bounded, so that a test that fails before its cleanup leaves nothing for long.
SLEEPER = "import time; time.sleep(120)"
# Ignores SIGTERM as Ray's agents do while they shut down; says so once it does.
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(120)
"""
# A process with a child of its own, which it names and never waits for (so the child,
# once ended, stays a zombie that is not ours to reap).
PARENT = f"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", {SLEEPER!r}])
print(child.pid, flush=True)
time.sleep(120)
"""

Spawn = Callable[[str], subprocess.Popen[str]]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """`python -c SCRIPT` with its stdout piped; those still running, and their
    children, are killed after the test."""
    started: list[subprocess.Popen[str]] = []

    def start(script: str) -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                   text=True)  # fmt: skip
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            kill_all(snapshot(process.pid))
        process.wait(timeout=10)


def recorded(*processes: subprocess.Popen[str]) -> dict[int, float]:
    """What the reaper records of `processes`: pid -> create time."""
    return {process.pid: psutil.Process(process.pid).create_time() for process in processes}


def child_of(parent: subprocess.Popen[str]) -> dict[int, float]:
    """The child a PARENT names, recorded."""
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    return {pid: psutil.Process(pid).create_time()}


def kill_all(processes: dict[int, float]) -> None:
    for pid in running(processes):
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            continue


# --- main ------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [[], ["driver"], ["-5"], ["x", "y"]])
def test_main_takes_one_pid_or_says_how_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err == f"usage: reaper.py DRIVER_PID (got {argv!r})\n"


# --- reap ------------------------------------------------------------------------------


def test_reap_terminates_and_kills_only_what_ignores_sigterm(spawn: Spawn) -> None:
    polite, stubborn = spawn(SLEEPER), spawn(STUBBORN)
    assert stubborn.stdout is not None and stubborn.stdout.readline() == "ready\n"
    started = time.monotonic()
    reap(recorded(polite, stubborn), grace_s=1.0)
    assert time.monotonic() - started >= 1.0  # its grace first
    assert polite.wait(timeout=5) == -signal.SIGTERM
    assert stubborn.wait(timeout=5) == -signal.SIGKILL


def test_reap_spares_a_pid_now_held_by_another_process(spawn: Spawn) -> None:
    """The pid recorded, but not its start time: the recorded process is gone and an
    unrelated one has its pid."""
    other = spawn(SLEEPER)
    reap({pid: created - 1.0 for pid, created in recorded(other).items()}, grace_s=0.5)
    assert other.poll() is None


def test_reap_ends_what_a_recorded_process_started_after_the_last_record(
    spawn: Spawn,
) -> None:
    parent = spawn(PARENT)
    child = child_of(parent)
    try:
        reap(recorded(parent), grace_s=5.0)
        assert parent.wait(timeout=5) == -signal.SIGTERM
        assert running(child) == {}
    finally:
        kill_all(child)


def test_reap_does_not_wait_out_its_grace_on_a_zombie_of_another_parent(spawn: Spawn) -> None:
    """A process whose parent never waits for it stays a zombie once ended (as under a
    pid 1 that reaps nothing): it is gone all the same."""
    parent = spawn(PARENT)
    child = child_of(parent)
    started = time.monotonic()
    reap(child, grace_s=30.0)
    assert time.monotonic() - started < 10
    (pid,) = child
    assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # ended, not yet reaped
    assert parent.poll() is None  # not recorded: left alone


# --- watch -----------------------------------------------------------------------------


def test_watch_reaps_a_dead_drivers_descendants_and_nothing_else(spawn: Spawn) -> None:
    driver, bystander = spawn(PARENT), spawn(SLEEPER)
    child = child_of(driver)
    watcher = threading.Thread(target=watch, args=(driver.pid, 0.05, 1.0), daemon=True)
    try:
        watcher.start()
        time.sleep(0.5)  # ten polls: the child is recorded
        # Not waited for: a zombie, as a killed driver stays until its parent reaps it.
        driver.kill()
        watcher.join(timeout=15)
        assert not watcher.is_alive()
        assert running(child) == {}
        assert bystander.poll() is None
    finally:
        kill_all(child)


def test_watch_returns_at_once_for_a_driver_already_gone(spawn: Spawn) -> None:
    gone = spawn("pass")
    gone.wait(timeout=30)
    started = time.monotonic()
    watch(gone.pid, poll_s=5.0, grace_s=5.0)
    assert time.monotonic() - started < 1


# --- behind a real Ray -----------------------------------------------------------------


@pytest.mark.slow
def test_a_driver_killed_with_9_leaves_no_ray_processes(cluster: Cluster, ray_tmp: Path) -> None:
    log = ray_tmp / "driver.log"
    driver = start_python(
        python(
            f"""
            from sweeps.cluster.session import ray_session
            AGENTS = {AGENTS!r}
            session = ray_session(None, num_cpus=1)
            session.__enter__()  # and never left: the driver is killed inside it
            """,
            WAIT_FOR_AGENTS,
            'print("ready", json.dumps(names()), flush=True)',
            WAIT_FOR_STDIN,
        ),
        ray_env(ray_tmp),
        log,
    )
    ours: dict[int, float] = {}
    try:
        ready = first_line(driver, log, timeout_s=90)
        ours = snapshot(driver.pid)
        driver.kill()  # -9, at once: no ray.shutdown, no atexit
        driver.wait(timeout=10)
        assert ready.startswith("ready")
        names = set(json.loads(ready.removeprefix("ready")))
        assert {"ray::DashboardAgent", "ray::RuntimeEnvAgent", "raylet", "gcs_server"} <= names
        assert len(ours) > 5  # the driver, its reaper, Ray's daemons and agents

        deadline = time.monotonic() + 20
        while running(ours) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert running(ours) == {}
        assert running(cluster.processes).keys() == cluster.processes.keys()
    finally:
        stop(driver)
        kill_all(ours)
