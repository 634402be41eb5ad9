"""Real Rays for the tests of sweeps.cluster, each in a subprocess of its own.

Every Ray here runs with RAY_TMPDIR in a short folder of the test's (Unix socket paths
must stay under 108 characters), token auth with a token of the test's (nothing is read
from or written to ~/.ray), and RAY_ADDRESS unset unless a test sets it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

TOKEN = secrets.token_hex(32)


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    with short_tmp() as folder:
        yield folder


@contextlib.contextmanager
def short_tmp() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="rs-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def ray_env(ray_tmp: Path, *, token: bool = True, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH"))}
    env["RAY_TMPDIR"] = str(ray_tmp)
    if token:
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=TOKEN)
    else:
        env["RAY_AUTH_MODE"] = "disabled"
    return {**env, **extra}


def python(*parts: str) -> str:
    """A script of `parts`, each indented as suits its place in its file."""
    return "\n".join(textwrap.dedent(part) for part in parts)


def run_python(script: str, env: dict[str, str], timeout_s: float) -> list[str]:
    """Run `script` to its end within `timeout_s`; its stdout lines (asserted rc 0)."""
    done = subprocess.run(
        [sys.executable, "-c", python(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,  # kills the child on expiry
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def start_python(script: str, env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )


def first_line(process: subprocess.Popen[str], log: Path, timeout_s: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=timeout_s)
    except queue.Empty:
        pytest.fail(f"no output in {timeout_s} s; stderr: {log.read_text()[-3000:]}")
    assert line, f"exited with {process.wait(5)}; stderr: {log.read_text()[-3000:]}"
    return line.strip()


def stop(process: subprocess.Popen[str], grace_s: float = 30) -> None:
    """Close its stdin (the scripts here exit on that, shutting Ray down), then kill."""
    if process.stdin:
        process.stdin.close()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def snapshot(pid: int, *, workers: bool = True) -> dict[int, float]:
    """The process `pid` and its descendants: pid -> create time. Without Ray's workers
    if asked: an idle one may exit on its own."""
    root = psutil.Process(pid)
    found = {root.pid: root.create_time()}
    for child in root.children(recursive=True):
        try:
            if workers or not _is_worker(child):
                found[child.pid] = child.create_time()
        except psutil.NoSuchProcess:
            continue
    return found


def _is_worker(process: psutil.Process) -> bool:
    name = process.name()
    is_agent = name in AGENTS
    return not is_agent and (name.startswith("ray::") or "default_worker" in str(process.cmdline()))


def running(processes: dict[int, float]) -> dict[int, str]:
    """Those of `processes` still running (a zombie is not): pid -> name."""
    alive: dict[int, str] = {}
    for pid, created in processes.items():
        try:
            process = psutil.Process(pid)
            if process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE:
                alive[pid] = process.name()
        except psutil.NoSuchProcess:
            continue
    return alive


AGENTS = {"ray::DashboardAgent", "ray::RuntimeEnvAgent"}
# The agents the raylet starts are what pid 1 adopts when a driver is killed: a Ray is up
# for these tests once they are.
WAIT_FOR_AGENTS = """
    import json, sys, time, psutil

    def names():
        return [p.name() for p in psutil.Process().children(recursive=True)]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not AGENTS <= set(names()):
        time.sleep(0.2)
"""
# Exits when its stdin closes, which shuts Ray down; at most after 5 minutes either way.
WAIT_FOR_STDIN = """
    import select
    select.select([sys.stdin], [], [], 300)
"""


@dataclass(frozen=True)
class Cluster:
    address: str
    processes: dict[int, float]  # its driver and every process of its Ray, when up


# Module scope, not session: other tests start Rays of their own, which a head living
# through the whole run would be in the way of.
@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A Ray started with plain ray.init in a process of its own: the cluster to join,
    and the bystander Ray that the reaper must leave alone."""
    with short_tmp() as folder:
        head = start_python(
            python(
                f"""
                import ray
                AGENTS = {AGENTS!r}
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
                """,
                WAIT_FOR_AGENTS,
                "print(ray.get_runtime_context().gcs_address, flush=True)",
                WAIT_FOR_STDIN,
            ),
            ray_env(folder),
            folder / "head.log",
        )
        try:
            address = first_line(head, folder / "head.log", timeout_s=90)
            yield Cluster(address, snapshot(head.pid, workers=False))
        finally:
            stop(head)
