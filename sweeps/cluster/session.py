"""Ray for the length of a run: an embedded Ray of our own, or a cluster joined, checked first.

Plain `ray.init()` joins whatever this machine records (RAY_ADDRESS, or the
`<RAY_TMPDIR or /tmp>/ray/ray_current_cluster` pointer a `ray start` head leaves behind,
even a dead one's), and a join retries a dead or foreign address for minutes. Here the
embedded Ray is always a fresh one (`address="local"`, which neither RAY_ADDRESS nor the
pointer redirects), and an address to join is probed with a deadline first.

An address is probed the way Ray's own tools check a head (`ray health-check`, `ray
symmetric-run`): the GCS's NodeInfoGcsService.CheckAlive RPC, here over Ray's own gRPC
channel (its TLS and auth settings) with a deadline, after a TCP connect that tells
"nothing listens" from "something else listens".
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

Say = Callable[[str], None]
CONNECT_TIMEOUT_S = 30.0
REAPER = Path(__file__).with_name("reaper.py")
REAPER_STOP_S = 5.0


class RayStartError(ConnectionError):
    """Ray could not be started, or the cluster at an address cannot be joined."""


# --- addresses -------------------------------------------------------------------------


def check_address(address: str | None, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """RayStartError unless a Ray GCS answers at a `HOST:PORT` address within `timeout_s`
    (for `ray://HOST:PORT`, a Ray Client server: something must accept a connection).
    None (embedded), "local" and "auto" pass: ray_session resolves "auto" itself."""
    if address is None or address in ("auto", "local"):
        return
    host, port = _host_port(address)
    deadline = time.monotonic() + timeout_s
    _probe_tcp(address, host, port, timeout_s)
    if address.startswith("ray://"):
        return
    _probe_gcs(address, _target(address), max(deadline - time.monotonic(), 1.0))


def _host_port(address: str) -> tuple[str, int]:
    bare = address.removeprefix("ray://")
    host, _, port = bare.rpartition(":")
    if "://" in bare or not host or not port.isdigit():
        raise RayStartError(f"--address {address!r} is not HOST:PORT, ray://HOST:PORT or auto")
    return host.strip("[]"), int(port)


def _target(address: str) -> str:
    return address.removeprefix("ray://")


def _probe_tcp(address: str, host: str, port: int, timeout_s: float) -> None:
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as error:
        raise RayStartError(f"nothing answers at {address!r} ({_why(error, timeout_s)})") from None


def _why(error: OSError, timeout_s: float) -> str:
    if isinstance(error, socket.gaierror):
        return "unknown host"
    if isinstance(error, TimeoutError):
        return f"no reply within {timeout_s:g} s"
    return (error.strerror or str(error)).lower()


def _probe_gcs(address: str, target: str, timeout_s: float) -> None:
    import grpc
    from ray._private.gcs_utils import create_gcs_channel
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    channel = create_gcs_channel(target)
    try:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        stub.CheckAlive(gcs_service_pb2.CheckAliveRequest(), timeout=timeout_s)
    except grpc.RpcError as error:
        raise RayStartError(_not_a_gcs(address, error, timeout_s)) from None
    finally:
        channel.close()


def _not_a_gcs(address: str, error: Any, timeout_s: float) -> str:
    import grpc
    from ray._private.authentication.authentication_utils import is_token_auth_enabled

    code = error.code()
    # UNAVAILABLE once TCP connected: the server does not speak gRPC (an HTTP server,
    # a database); UNIMPLEMENTED: a gRPC server without Ray's GCS services.
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNIMPLEMENTED):
        return f"{address!r} answers but is not a Ray cluster (no GCS there)"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"{address!r} accepts connections but no Ray GCS replies within {timeout_s:g} s"
    # ray.init would retry these for 20 s and more before failing the same way.
    if code == grpc.StatusCode.UNAUTHENTICATED and not is_token_auth_enabled():
        return (
            f"the Ray cluster at {address!r} requires token authentication"
            " (set RAY_AUTH_MODE=token, with the token in ~/.ray/auth_token or RAY_AUTH_TOKEN)"
        )
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return f"the Ray cluster at {address!r} rejects this machine's auth token"
    details = _first_line(error.details() or "")
    return f"the Ray GCS at {address!r} fails its health check ({code.name}: {details})"


def _first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else type(text).__name__


# --- the session -----------------------------------------------------------------------


def _say_dashboard(context: Any, embedded: bool, dashboard: Say | None) -> None:
    if dashboard is None:
        return
    url = getattr(context, "dashboard_url", None)
    if not url:  # an embedded Ray's failed to start (its log: session_*/logs/dashboard.log)
        dashboard(
            "Ray's dashboard did not start" if embedded else "the Ray cluster has no dashboard"
        )
    else:
        until = " (until the run ends)" if embedded else ""
        dashboard(f"Ray dashboard: http://{url}{until}{_login_note()}")


def _login_note() -> str:
    """What the dashboard asks for under token auth (which a token in ~/.ray/auth_token
    turns on): its page opens, but answers nothing of the run until given the token."""
    from ray._private.authentication.authentication_utils import is_token_auth_enabled

    return "; log in with the token `ray get-auth-token` prints" if is_token_auth_enabled() else ""


@contextlib.contextmanager
def ray_session(
    address: str | None,
    *,
    num_cpus: int | None = None,
    dashboard: Say | None = None,
    import_path: Sequence[str] = (),
    say: Say | None = None,
) -> Iterator[bool]:
    """Ray for the length of a run: a fresh embedded one (address None or "local", sized by
    `num_cpus`, default all of this machine) or the cluster at `address` joined. Yields
    True if it started or joined Ray and shuts it down at the end; False if this process
    had already called ray.init: that Ray is used as it is and left running. `say` hears
    that Ray starts, or is joined, before the seconds that takes.

    With `dashboard`, an embedded Ray starts with its dashboard (on 127.0.0.1 only: it runs
    any job it is sent; else none: it costs a process and seconds of start-up), and
    `dashboard` gets its URL once Ray is up; a joined cluster's too. An embedded Ray's
    workers import from the folders of `import_path` first (a user's trainer)."""
    import ray

    if ray.is_initialized():
        yield False
        return
    if address is None or address == "local":
        with _embedded_ray(num_cpus, dashboard, import_path, say):
            yield True
        return
    if num_cpus is not None:
        raise ValueError(f"num_cpus={num_cpus} sizes an embedded Ray, not the one at {address!r}")
    _join(address, dashboard, say)
    try:
        yield True
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _embedded_ray(
    num_cpus: int | None, dashboard: Say | None, import_path: Sequence[str], say: Say | None
) -> Iterator[None]:
    import ray
    from ray._private.utils import get_num_cpus

    if say is not None:
        say(f"starting Ray (local, {num_cpus or get_num_cpus():g} CPUs)")

    # The reaper starts before ray.init, so a driver killed while Ray starts up still
    # leaves nothing behind.
    reaper = start_reaper()
    try:
        try:
            options = {**_INIT_OPTIONS, "include_dashboard": dashboard is not None}
            with keeping_sigterm(), _workers_path(import_path):
                context = ray.init(address="local", num_cpus=num_cpus, **options)
        except (ConnectionError, RuntimeError, TimeoutError) as error:
            raise RayStartError(f"cannot start a local Ray: {_first_line(error)}") from error
        _say_dashboard(context, True, dashboard)
        yield
    finally:
        # Also after a failed ray.init: it may have started a GCS or raylet already.
        ray.shutdown(wait_for_processes=True)
        stop_reaper(reaper)


@contextlib.contextmanager
def _workers_path(import_path: Sequence[str]) -> Iterator[None]:
    """`import_path` first on the PYTHONPATH of the processes ray.init starts, ahead of the
    user's own: the raylet hands its environment to every worker. Named, not shipped: an
    embedded Ray's workers run on this machine, where the folders are. Not a job-wide
    runtime_env: with one, the workers Ray starts ahead of time stay idle and each trial's
    worker starts afresh, seconds each."""
    inherited = os.environ.get("PYTHONPATH")
    folders = (*import_path, *(inherited or "").split(os.pathsep))
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in folders if p))
    try:
        yield
    finally:
        if inherited is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = inherited


_INIT_OPTIONS: dict[str, Any] = {
    "include_dashboard": False,
    "logging_level": logging.ERROR,
    "log_to_driver": False,  # trial output goes to files; the live display stays clean
}


def _join(address: str, dashboard: Say | None, say: Say | None) -> None:
    import ray

    found = _resolve_auto() if address == "auto" else address
    check_address(found)
    if not found.startswith("ray://"):
        _check_local_node(found)
    if say is not None:
        say(f"joining the Ray cluster at {found}")
    try:
        # "auto" itself, not what it found: only an address found automatically lets
        # ray.init pick up this machine's auth token.
        with keeping_sigterm():
            context = ray.init(address=address, **_INIT_OPTIONS)
    except (ConnectionError, RuntimeError, TimeoutError, ValueError) as error:
        ray.shutdown()  # a half-made connection would make the next ray.init a no-op
        raise RayStartError(
            f"cannot join the Ray cluster at {found!r}: {_first_line(error)}"
        ) from error
    _say_dashboard(context, False, dashboard)


@contextlib.contextmanager
def keeping_sigterm() -> Iterator[None]:
    """The process's SIGTERM handling as it was before ray.init, which replaces it: in
    Python with a sys.exit, natively with a handler that dumps the stack and aborts (exit
    134), so that a plain `kill` of the driver left a stack dump and an unfinished run.
    The caller decides what SIGTERM does (sweeps.runs.sigterm: what Ctrl-C does)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread sets handlers: ray.init leaves them alone too
        return
    handler = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        # Set again even where Python sees no change: the native handler replaced it.
        signal.signal(signal.SIGTERM, signal.SIG_DFL if handler is None else handler)


def _resolve_auto() -> str:
    """The address ray.init("auto") would join: RAY_ADDRESS, else the machine's
    ray_current_cluster pointer, else a running GCS's (ray._private.services)."""
    from ray._private import services
    from ray._private.authentication.authentication_token_setup import (
        maybe_enable_token_auth_if_token_available,
    )

    # What ray.init("auto") does too: a token on this machine is sent to the cluster found.
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    from_env = os.environ.get("RAY_ADDRESS")
    if from_env:
        return from_env
    try:
        found = services.canonicalize_bootstrap_address("auto")
    except ConnectionError:
        found = None
    if found is None:
        raise RayStartError("--address 'auto' finds no Ray cluster on this machine")
    return found


def _check_local_node(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """RayStartError unless a node of the cluster runs on this machine: ray.init joins
    HOST:PORT through a local raylet, and waits a minute for one before giving up."""
    from ray._private import services

    local = set(services.find_node_ids())
    alive = _alive_node_ids(_target(address), timeout_s)
    if alive is not None and not local & alive:
        raise RayStartError(
            f"no node of the Ray cluster at {address!r} runs on this machine"
            " (join it from one of its nodes, or through ray://HOST:10001)"
        )


def _alive_node_ids(target: str, timeout_s: float) -> set[str] | None:
    """Hex ids of the cluster's alive nodes; None where the GCS will not list them to us
    (token auth without our token): ray.init, which has it, decides then."""
    import grpc
    from ray._private.gcs_utils import create_gcs_channel
    from ray.core.generated import gcs_pb2, gcs_service_pb2, gcs_service_pb2_grpc

    channel = create_gcs_channel(target)
    try:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        alive = gcs_pb2.GcsNodeInfo.GcsNodeState.ALIVE
        request = gcs_service_pb2.GetAllNodeInfoRequest(state_filter=alive)
        reply = stub.GetAllNodeInfo(request, timeout=timeout_s)
    except grpc.RpcError:
        return None
    finally:
        channel.close()
    return {node.node_id.hex() for node in reply.node_info_list}


# --- the reaper ------------------------------------------------------------------------


def start_reaper() -> subprocess.Popen[bytes]:
    """sweeps/cluster/reaper.py for this process: it ends what this process started if it is
    killed with -9. Run by path, not `-m sweeps.cluster.reaper`, so it needs only psutil wherever
    sweeps was imported from; its own session keeps it out of a Ctrl-C to the terminal's
    process group."""
    return subprocess.Popen(
        [sys.executable, str(REAPER), str(os.getpid())],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_reaper(reaper: subprocess.Popen[bytes]) -> None:
    """Stop the reaper of a driver that lives on: it would otherwise reap at its exit."""
    reaper.terminate()
    try:
        reaper.wait(timeout=REAPER_STOP_S)
    except subprocess.TimeoutExpired:
        reaper.kill()
        reaper.wait()
