"""Sweeps as Ray Jobs on a cluster: submit, list, status, logs, stop.

A submitted sweep is a Ray Job whose entrypoint is `sweeps run ... --address auto`, whose
submission id is the run id, and which asks for one `sweep_slots` resource: the head
declares how many slots it has, so sweeps beyond them wait PENDING in Ray's own queue (and
on a cluster that declares none they would wait forever, so `submit` refuses it).

What the job takes along (the spec's folder, sweeps' own packages) is sweeps.cluster.shipping's.

Ray 2.60 heads turn token authentication on (the token is in ~/.ray/auth_token on the
head), while the client sends one only when RAY_AUTH_MODE=token. We look for the token
the standard ways and always send it; it is never printed, logged or shipped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import shlex
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.job_submission import JobDetails, JobSubmissionClient

from sweeps.cluster.shipping import Code
from sweeps.plan.spec import SweepSpec, to_yaml

CONNECT_TIMEOUT_S = 10
# A probe of the address before Ray's client, which waits about 47 s on a Ray address where
# nothing listens, printing its C++ log lines.
PROBE_TIMEOUT_S = 5.0
AGENT_WAIT_S = 60
STOP_WAIT_S = 60  # how long `sweeps stop` gives a run to end as Ctrl-C does
SPEC_ENV = "SWEEPS_SPEC_YAML"
SLOT_RESOURCE = "sweep_slots"
TOKEN_HELP = (
    "put the cluster's token (~/.ray/auth_token on the head) in ~/.ray/auth_token here,"
    " or set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH, or pass --token-file"
)


class JobsError(RuntimeError):
    """The cluster could not be reached or refused us; the message says what to do."""


class JobsInputError(JobsError):
    """Bad input (exit 2, nothing submitted): the message names the bad value."""


class NoSuchJob(JobsInputError):
    """The job id names no job on that cluster."""


class BadAddress(JobsInputError):
    """Nothing answers at the address, or what answers is not a Ray cluster."""


class NoSweepSlots(JobsInputError):
    """The cluster declares no `sweep_slots`: a sweep submitted there would never start."""


def find_token(token_file: Path | None = None) -> str | None:
    """--token-file, else $RAY_AUTH_TOKEN, else $RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token."""
    if token_file is not None:
        return _read_token(Path(token_file), "--token-file")
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return os.environ["RAY_AUTH_TOKEN"].strip()
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return _read_token(Path(os.environ["RAY_AUTH_TOKEN_PATH"]), "RAY_AUTH_TOKEN_PATH")
    default = Path.home() / ".ray" / "auth_token"
    return _read_token(default, str(default)) if default.is_file() else None


def _read_token(path: Path, source: str) -> str:
    try:
        token = path.expanduser().read_text().strip()
    except OSError as error:
        raise JobsError(f"cannot read the token file {str(path)!r} ({source}): "
                        f"{error.strerror}") from None  # fmt: skip
    if not token:
        raise JobsError(f"the token file {str(path)!r} ({source}) is empty")
    return token


def connect(address: str, token_file: Path | None = None) -> JobSubmissionClient:
    """A jobs client for `address`, with the token. BadAddress within seconds where nothing
    answers, JobsError within CONNECT_TIMEOUT_S for anything else that fails."""
    token = find_token(token_file)
    check_address(address)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        return _within(CONNECT_TIMEOUT_S, lambda: JobSubmissionClient(address, headers=headers))
    except TimeoutError:
        message = f"no answer from the Ray jobs API at {address} within {CONNECT_TIMEOUT_S} s"
        raise BadAddress(f"{message}; is the head's dashboard running there?") from None
    except Exception as error:
        raise _explain(error, address, token is not None, connecting=True) from None


def _within(seconds: float, make: Callable[[], Any]) -> Any:
    """make(), or TimeoutError after `seconds`: in a daemon thread, which the interpreter
    does not wait for at exit (a pool's thread would keep a stuck request's process alive)."""
    outcome: dict[str, Any] = {}

    def attempt() -> None:
        try:
            outcome["value"] = make()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=attempt, name="sweeps-jobs-connect", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def check_address(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """BadAddress within about `timeout_s` unless something that may be Ray answers at
    `address`: a jobs API URL (http[s]://HOST[:PORT]) must accept a connection; a Ray
    address (HOST:PORT, ray://HOST:PORT, auto) gets the checks `sweeps run --address` makes."""
    from sweeps.cluster.session import RayStartError
    from sweeps.cluster.session import check_address as check_ray_address

    if address.startswith(("http://", "https://")):
        _probe_tcp(address, *_http_host_port(address), timeout_s)
        return
    bare = address.removeprefix("ray://")
    host, _, port = bare.rpartition(":")
    if address != "auto" and ("://" in bare or not host or not port.isdigit()):
        raise BadAddress(f"--address {address!r} is not http://HOST:PORT, HOST:PORT, "
                         "ray://HOST:PORT or auto")  # fmt: skip
    try:
        check_ray_address(_local_cluster() if address == "auto" else address, timeout_s)
    except RayStartError as error:
        raise BadAddress(str(error)) from None


def _http_host_port(address: str) -> tuple[str, int]:
    try:
        parts = urllib.parse.urlsplit(address)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a port that is not a number, a bracket left open
        host = port = None
    if not host or port is None:
        raise BadAddress(f"--address {address!r} is not a URL such as http://HEAD:8265")
    return host, port


def _probe_tcp(address: str, host: str, port: int, timeout_s: float) -> None:
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except socket.gaierror:
        raise BadAddress(f"nothing answers at {address!r} (unknown host)") from None
    except TimeoutError:
        raise BadAddress(f"nothing answers at {address!r} (no reply within "
                         f"{timeout_s:g} s)") from None  # fmt: skip
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise BadAddress(f"nothing answers at {address!r} ({reason})") from None


def _local_cluster() -> str:
    """The Ray address `auto` names here (Ray's own lookup), or BadAddress."""
    from ray._private import services

    try:
        found = services.canonicalize_bootstrap_address("auto")
    except ConnectionError:
        found = None
    if not found:
        raise BadAddress("--address 'auto' finds no Ray cluster on this machine")
    return found


def _explain(
    error: Exception, address: str, had_token: bool, *, connecting: bool = False
) -> JobsError:
    text = " ".join(str(error).split())
    if "does not exist" in text:
        return NoSuchJob(f"no such job at {address}: {text.split(': ')[-1]}")
    if "Authentication" in type(error).__name__ or "Unauthorized" in text:
        if had_token:
            return JobsError(f"the Ray cluster at {address} rejected our token; {TOKEN_HELP}")
        return JobsError(f"the Ray cluster at {address} requires a token; {TOKEN_HELP}")
    if connecting and "Version check returned" in text:  # an HTTP server, but not Ray's
        return BadAddress(f"{address!r} answers but is not a Ray jobs API ({text.split('.')[0]})")
    if connecting and isinstance(error, ConnectionError):
        return BadAddress(f"cannot reach the Ray jobs API at {address}: is the head's dashboard "
                          "running and its port (8265 by default) reachable?")  # fmt: skip
    if isinstance(error, ConnectionError):
        return JobsError(f"lost the Ray jobs API at {address}: {text}")
    return JobsError(f"the Ray jobs API at {address} failed: {type(error).__name__}: {text}")


def check_slots(client: JobSubmissionClient, address: str) -> None:
    """NoSweepSlots unless the cluster's alive nodes have `sweep_slots`: a job asking for
    one would wait PENDING forever, Ray saying nothing. A cluster whose nodes cannot be
    listed (its state API off) is not refused: Ray's queue decides then."""
    response = call(lambda: client._do_request("GET", "/api/v0/nodes",
                                               params={"detail": "1", "limit": "10000"}),
                    address)  # fmt: skip
    if response.status_code != 200:
        return
    nodes = response.json().get("data", {}).get("result", {}).get("result", [])
    slots = sum(node.get("resources_total", {}).get(SLOT_RESOURCE, 0.0)
                for node in nodes if node.get("state") == "ALIVE")  # fmt: skip
    if slots <= 0:
        raise NoSweepSlots(
            f"the Ray cluster at {address} has no {SLOT_RESOURCE!r} resource, so a sweep"
            " submitted there would wait PENDING forever: start its head with"
            f" --resources='{{\"{SLOT_RESOURCE}\": 2}}' (cluster.yaml does)"
        )


def submit(
    client: JobSubmissionClient,
    spec: SweepSpec,
    run_id: str,
    results: str,
    data_dir: str | None = None,
    code: Code | None = None,
) -> str:
    """Submit `spec` (resolved, overrides applied) as a Ray Job that ships `code` (None:
    nothing); its submission id."""
    command = ["python", "-m", "sweeps", "run", f"env:{SPEC_ENV}", "--address", "auto",
               "--run-id", run_id, "--results", results]  # fmt: skip
    if data_dir:
        command += ["--data-dir", data_dir]
    # `sweeps stop` sends SIGTERM, which the run takes as Ctrl-C (its rows whole, its
    # manifest finished); Ray's supervisor, which reads this from the job's env, would
    # SIGKILL it after 3 s, before Tune has stopped.
    env_vars = {SPEC_ENV: to_yaml(spec), "RAY_JOB_STOP_WAIT_TIME_S": str(STOP_WAIT_S)}
    runtime_env: dict[str, Any] = {"env_vars": env_vars, **(code.runtime_env() if code else {})}
    deadline = time.monotonic() + AGENT_WAIT_S
    logging.disable(logging.WARNING)  # Ray logs a line per packaged file; errors still show
    try:
        while True:
            try:
                return client.submit_job(
                    entrypoint=shlex.join(command),
                    submission_id=run_id,
                    runtime_env=runtime_env,
                    entrypoint_resources={SLOT_RESOURCE: 1},
                    metadata={"sweep": spec.name, "results": results},
                )
            except RuntimeError as error:
                # A head that has just started has no job agent for a few seconds.
                if "No available agent" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(1)
    finally:
        logging.disable(logging.NOTSET)


def list_jobs(client: JobSubmissionClient) -> list[JobDetails]:
    """Jobs newest first."""
    return sorted(client.list_jobs(), key=lambda job: job.start_time or 0, reverse=True)


def age(job: JobDetails, now: dt.datetime | None = None) -> str:
    """How long ago the job was submitted, as 42s, 5m, 3h or 2d."""
    if not job.start_time:
        return "-"
    now = now or dt.datetime.now(dt.timezone.utc)
    started = dt.datetime.fromtimestamp(job.start_time / 1000, dt.timezone.utc)
    seconds = max(int((now - started).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def follow_logs(client: JobSubmissionClient, job_id: str, write: Callable[[str], Any]) -> None:
    """Stream a job's logs until it ends."""
    # An unknown id is a 404 deep in the websocket's handshake; asked first, it is "does
    # not exist", as for every other command.
    client.get_job_info(job_id)

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            write(chunk)

    asyncio.run(tail())


def call(action: Callable[[], Any], address: str) -> Any:
    """Run a client call, turning Ray's errors into JobsError."""
    try:
        return action()
    except JobsError:
        raise
    except Exception as error:
        raise _explain(error, address, True) from None
