"""sweeps.cluster.session and .reaper against real Rays, each in a subprocess of its own.

Every Ray here runs with RAY_TMPDIR in a short folder of the test's (Unix socket paths
must stay under 108 characters), token auth with a token of the test's (nothing is read
from or written to ~/.ray), and RAY_ADDRESS unset unless a test sets it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from sweeps.cluster.session import RayStartError, check_address
from tests.helpers.processes import free_port

pytestmark = pytest.mark.slow

TOKEN = secrets.token_hex(32)


# --- helpers ---------------------------------------------------------------------------


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
    """A script of `parts`, each indented as suits its place in this file."""
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
    alive = {}
    for pid, created in processes.items():
        try:
            process = psutil.Process(pid)
            if process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE:
                alive[pid] = process.name()
        except psutil.NoSuchProcess:
            continue
    return alive


def kill_all(processes: dict[int, float]) -> None:
    for pid in running(processes):
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            continue


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


# --- the embedded Ray ------------------------------------------------------------------


@pytest.mark.parametrize("ray_address", [None, "stale"], ids=["no-RAY_ADDRESS", "RAY_ADDRESS"])
def test_embedded_ray_is_fresh_despite_a_stale_pointer(
    ray_tmp: Path, ray_address: str | None
) -> None:
    """A `ray start` head killed long ago left ray_current_cluster (and maybe RAY_ADDRESS)
    pointing at a dead GCS: plain ray.init() would hang there for minutes."""
    stale = f"127.0.0.1:{free_port()}"
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text(stale + "\n")
    env = ray_env(ray_tmp, **({"RAY_ADDRESS": stale} if ray_address else {}))
    started = time.monotonic()
    lines = run_python(
        """
        import json, time, psutil, ray
        from sweeps.cluster.session import ray_session
        with ray_session(None, num_cpus=1) as started:
            node = ray._private.worker._global_node
            print(json.dumps({
                "started": started,
                "gcs": ray.get_runtime_context().gcs_address,
                "session_dir": node.get_session_dir_path(),
                "cpus": ray.cluster_resources().get("CPU"),
            }))
            ours = psutil.Process().children(recursive=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(
            p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in ours
        ):
            time.sleep(0.2)
        left = [p.name() for p in ours if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        print(json.dumps([len(ours), left]))
        """,
        env,
        timeout_s=60,
    )
    assert time.monotonic() - started < 60
    inside, (had, left) = json.loads(lines[-2]), json.loads(lines[-1])
    assert inside["started"] is True
    assert inside["gcs"] != stale
    assert inside["session_dir"].startswith(str(ray_tmp))  # a Ray of its own, started here
    assert inside["cpus"] == 1
    assert had > 5 and left == []  # neither Ray nor the reaper outlives the session


def test_auto_with_a_stale_pointer_fails_fast_naming_it(ray_tmp: Path) -> None:
    port = free_port()
    stale = f"127.0.0.1:{port}"
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text(stale + "\n")
    started = time.monotonic()
    lines = run_python(
        """
        from sweeps.cluster.session import RayStartError, ray_session
        try:
            with ray_session("auto"):
                print("joined")
        except RayStartError as error:
            print(error)
        """,
        ray_env(ray_tmp),
        timeout_s=60,
    )
    assert time.monotonic() - started < 30
    # Named as Ray resolves it: 127.0.0.1 becomes this node's IP address.
    assert re.fullmatch(rf"nothing answers at '[^']+:{port}' \(connection refused\)", lines[-1])


# --- check_address ---------------------------------------------------------------------


def test_check_address_fails_fast_on_a_service_that_is_not_ray(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, timeout_s=20)
        address = f"127.0.0.1:{port}"
        started = time.monotonic()
        with pytest.raises(RayStartError) as raised:
            check_address(address)
        assert time.monotonic() - started < 30
        assert str(raised.value) == f"{address!r} answers but is not a Ray cluster (no GCS there)"
    finally:
        server.kill()
        server.wait(timeout=10)


def _wait_listening(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"nothing listens on port {port} after {timeout_s} s")


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_check_address_fails_fast_on_a_closed_port(scheme: str) -> None:
    address = f"{scheme}127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(RayStartError, match="connection refused") as raised:
        check_address(address)
    assert time.monotonic() - started < 5
    assert repr(address) in str(raised.value)


@pytest.mark.parametrize("address", ["localhost", "http://localhost:8265", "host:port"])
def test_check_address_rejects_what_is_not_an_address(address: str) -> None:
    with pytest.raises(RayStartError, match="is not HOST:PORT") as raised:
        check_address(address)
    assert repr(address) in str(raised.value)


def test_check_address_passes_the_addresses_ray_resolves_itself() -> None:
    for address in (None, "auto", "local"):
        check_address(address)


# --- check_fits ------------------------------------------------------------------------


def test_check_fits_on_a_fixed_local_ray(ray_tmp: Path) -> None:
    lines = run_python(
        """
        import json
        from sweeps.cluster.resources import ResourceError, check_fits
        from sweeps.cluster.session import ray_session
        def fits(cpus, gpus, **options):
            try:
                return check_fits(cpus, gpus, **options)
            except ResourceError as error:
                return "ResourceError: " + str(error)
        with ray_session(None, num_cpus=2):
            print(json.dumps([
                fits(1, 0), fits(2, 0), fits(64, 0), fits(1, 1), fits(1, 0.25),
                fits(64, 0, autoscaling=True),
            ]))
        """,
        ray_env(ray_tmp),
        timeout_s=90,
    )
    one, two, too_many_cpus, a_gpu, part_of_a_gpu, waits = json.loads(lines[-1])
    assert one is None and two is None
    cluster = "(cluster: 2 CPUs, 0 GPUs)"
    assert too_many_cpus == (
        f"ResourceError: a trial asks for 64 CPUs but the largest node has 2 CPUs {cluster}"
    )
    assert (
        a_gpu == f"ResourceError: a trial asks for 1 GPU but the largest node has 0 GPUs {cluster}"
    )
    assert part_of_a_gpu.startswith("ResourceError: a trial asks for 0.25 GPUs")
    assert "64 CPUs" in waits and "autoscaler" in waits


# --- joining a cluster -----------------------------------------------------------------


def test_join_without_the_clusters_token_fails_fast(cluster: Cluster, ray_tmp: Path) -> None:
    started = time.monotonic()
    lines = run_python(
        f"""
        from sweeps.cluster.session import RayStartError, check_address
        try:
            check_address({cluster.address!r})
        except RayStartError as error:
            print(error)
        """,
        ray_env(ray_tmp, RAY_AUTH_MODE="disabled", RAY_AUTH_TOKEN=""),
        timeout_s=60,
    )
    assert time.monotonic() - started < 30
    assert lines[-1].startswith(
        f"the Ray cluster at {cluster.address!r} requires token authentication"
    )


def test_join_a_cluster_and_detect_its_autoscaler(cluster: Cluster, ray_tmp: Path) -> None:
    home = ray_tmp / "home"
    home.mkdir()
    (home / "ray_bootstrap_config.yaml").write_text("cluster_name: test\n")
    lines = run_python(
        f"""
        import json, ray
        from sweeps.cluster.resources import ResourceError, check_fits
        from sweeps.cluster.session import ray_session
        with ray_session({cluster.address!r}) as joined:
            waits = check_fits(64, 0)
            try:
                check_fits(64, 0, autoscaling=False)
                fixed = None
            except ResourceError as error:
                fixed = str(error)
            gcs = ray.get_runtime_context().gcs_address
        print(json.dumps([joined, gcs, waits, fixed]))
        """,
        ray_env(ray_tmp, HOME=str(home)),
        timeout_s=60,
    )
    joined, gcs, waits, fixed = json.loads(lines[-1])
    assert joined is True and gcs == cluster.address
    assert waits.endswith("trials wait for the autoscaler to add a node that fits")
    assert fixed.startswith("a trial asks for 64 CPUs but the largest node has 2 CPUs")
    assert running(cluster.processes).keys() == cluster.processes.keys()  # left running


def test_join_from_a_machine_without_a_node_of_the_cluster_fails_fast(
    cluster: Cluster, ray_tmp: Path
) -> None:
    """ray.init(HOST:PORT) joins through a raylet on this machine and waits a minute for
    one: here none is seen (as from a laptop), so the join fails at once instead."""
    started = time.monotonic()
    lines = run_python(
        f"""
        import ray._private.services
        from sweeps.cluster.session import RayStartError, ray_session
        ray._private.services.find_node_ids = lambda: []
        try:
            with ray_session({cluster.address!r}):
                print("joined")
        except RayStartError as error:
            print(error)
        """,
        ray_env(ray_tmp),
        timeout_s=60,
    )
    assert time.monotonic() - started < 30
    assert lines[-1].startswith(
        f"no node of the Ray cluster at {cluster.address!r} runs on this machine"
    )


# --- the reaper ------------------------------------------------------------------------


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
