"""Ray for the sweep tests: started by the tests, with the user trainers importable."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.helpers.processes import free_port

PLUGINS = str(Path(__file__).parent / "plugins")
SWEEPS = [sys.executable, "-m", "sweeps"]
RAY = str(Path(sys.executable).with_name("ray"))


def plugin_env() -> dict[str, str]:
    """The environment for a `sweeps` subprocess (or a Ray head) whose Ray workers import
    the plugins, with this interpreter's environment first on PATH as a cluster node's is."""
    path = os.pathsep.join(p for p in (PLUGINS, os.environ.get("PYTHONPATH")) if p)
    bin_path = os.pathsep.join((os.path.dirname(sys.executable), os.environ.get("PATH", "")))
    return {**os.environ, "PYTHONPATH": path, "PATH": bin_path}


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A real local Ray with 2 CPUs; `sweeps` joins it instead of starting its own."""
    import ray

    os.environ["PYTHONPATH"] = plugin_env()["PYTHONPATH"]  # inherited by Ray's workers
    sys.path.insert(0, PLUGINS)
    # "local": a Ray of its own, not one `ray start` left on the machine (another test's head).
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        sys.path.remove(PLUGINS)


def run_cli(*args: str) -> int:
    """`sweeps ARGS` in this process; its exit code."""
    from sweeps.cli.app import main

    with pytest.raises(SystemExit) as exited:
        main(list(args))
    return exited.value.code


# Module scope, not session: other tests start Rays of their own, which a head living
# through the whole run would be in the way of.
@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`ray start --head` on 127.0.0.1 with the dashboard, token auth and one sweep slot;
    its own HOME holds the token. Stopped at the end whatever happens."""
    with running_head(tmp_path_factory.mktemp("head-home"), '{"sweep_slots": 1}') as started:
        yield started


@contextlib.contextmanager
def running_head(home: Path, resources: str | None) -> Iterator[dict[str, str]]:
    """A head as `head` describes, with these custom resources (JSON; None: none)."""
    # Its jobs' drivers inherit the head's environment: a status line each second.
    env = {**plugin_env(), "HOME": str(home), "SWEEPS_STATUS_EVERY_S": "1"}
    env.pop("RAY_AUTH_TOKEN", None)
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    port, dashboard = free_port(), free_port()
    # A temp dir of its own: Ray's job supervisor finds the cluster of its jobs through the
    # pointer file the latest head (or ray.init) left in the temp dir, and another Ray
    # started on this machine meanwhile must not redirect them. Short: Ray's socket paths
    # under it must stay within the OS's limit.
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    start = [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
             "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
             # Not the agent's fixed default port, which another Ray here may hold.
             "--dashboard-agent-listen-port", str(free_port()), "--num-cpus", "2",
             *(["--resources", resources] if resources else []),
             "--temp-dir", temp_dir,
             "--disable-usage-stats"]  # fmt: skip
    log, started = home / "head.log", None
    try:
        # As the docs say for `ray start`: a token first, then the head enables token auth.
        subprocess.run([RAY, "get-auth-token", "--generate"], env=env, check=True,
                       capture_output=True, timeout=60)  # fmt: skip
        with log.open("w") as out:
            # --block: the head's processes are this one's descendants, ended alone at the
            # end (`ray stop` would end every Ray on the machine, other tests' too).
            started = subprocess.Popen([*start, "--block"], env=env, stdout=out,
                                       stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text():
            assert started.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        token = home / ".ray" / "auth_token"
        assert token.is_file(), "no auth token was generated"
        yield {"address": f"http://127.0.0.1:{dashboard}", "token": str(token), "home": str(home)}
    finally:
        if started is not None:
            stop_tree(started)
        shutil.rmtree(temp_dir, ignore_errors=True)


def stop_tree(process: subprocess.Popen[bytes]) -> None:
    """`process` and every process it started, ended: politely, then for sure."""
    try:
        family = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
    _, alive = psutil.wait_procs(family, timeout=30)
    for leftover in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            leftover.kill()


def sweeps(
    head: dict[str, str], *args: str, token: bool = True, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """`sweeps ARGS` in a subprocess against `head` (its token unless `token` is False)."""
    extra = ["--address", head["address"], *(["--token-file", head["token"]] if token else [])]
    env = {**plugin_env(), "HOME": head["home"]}
    return subprocess.run([*SWEEPS, *args, *extra], env=env, capture_output=True, text=True,
                          timeout=180, **kwargs)  # fmt: skip
