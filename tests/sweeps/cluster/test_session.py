"""sweeps.cluster.session against real Rays, each in a subprocess of its own (see conftest)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweeps.cluster.session import RayStartError, check_address
from tests.helpers.processes import free_port
from tests.sweeps.cluster.conftest import Cluster, ray_env, run_python, running

pytestmark = pytest.mark.slow


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
