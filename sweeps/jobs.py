"""Sweeps as Ray Jobs on a cluster: submit, list, status, logs, stop.

A submitted sweep is a Ray Job whose entrypoint is `sweeps run ... --address auto`, whose
submission id is the run id, and which asks for one `sweep_slots` resource: the head
declares how many slots it has, so sweeps beyond them wait PENDING in Ray's own queue.

Ray 2.60 heads turn token authentication on (the token is in ~/.ray/auth_token on the
head), while the client sends one only when RAY_AUTH_MODE=token. We look for the token
the standard ways and always send it; it is never printed, logged or shipped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import os
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.job_submission import JobDetails, JobSubmissionClient

from sweeps.spec import SweepSpec, to_yaml

CONNECT_TIMEOUT_S = 10
AGENT_WAIT_S = 60
SPEC_ENV = "SWEEPS_SPEC_YAML"
SLOT_RESOURCE = "sweep_slots"
# Never shipped to the cluster: history, results, data, environments, the device kit.
EXCLUDES = [".git", "results", "data", ".venv", "venv", ".device", "*.egg-info",
            "__pycache__", ".pytest_cache", ".ruff_cache", "auth_token"]  # fmt: skip
TOKEN_HELP = (
    "put the cluster's token (~/.ray/auth_token on the head) in ~/.ray/auth_token here,"
    " or set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH, or pass --token-file"
)


class JobsError(RuntimeError):
    """The cluster could not be reached or refused us; the message says what to do."""


class NoSuchJob(JobsError):
    """The job id names no job on that cluster (bad input)."""


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
    """A jobs client for `address`, with the token; JobsError within 10 s if it fails."""
    token = find_token(token_file)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    future = pool.submit(JobSubmissionClient, address, headers=headers)
    try:
        return future.result(timeout=CONNECT_TIMEOUT_S)
    except concurrent.futures.TimeoutError:
        message = f"no answer from the Ray jobs API at {address} within {CONNECT_TIMEOUT_S} s"
        raise JobsError(f"{message}; is the head's dashboard running there?") from None
    except Exception as error:
        raise _explain(error, address, token is not None) from None
    finally:
        pool.shutdown(wait=False)


def _explain(error: Exception, address: str, had_token: bool) -> JobsError:
    text = " ".join(str(error).split())
    if "does not exist" in text:
        return NoSuchJob(f"no such job at {address}: {text.split(': ')[-1]}")
    if "Authentication" in type(error).__name__ or "Unauthorized" in text:
        if had_token:
            return JobsError(f"the Ray cluster at {address} rejected our token; {TOKEN_HELP}")
        return JobsError(f"the Ray cluster at {address} requires a token; {TOKEN_HELP}")
    if isinstance(error, ConnectionError):
        return JobsError(f"cannot reach the Ray jobs API at {address}: is the head's dashboard "
                         "running and its port (8265 by default) reachable?")  # fmt: skip
    return JobsError(f"the Ray jobs API at {address} failed: {type(error).__name__}: {text}")


def project_root() -> Path | None:
    """The source checkout to ship as the job's working dir, or None when sweeps is an
    installed package (the cluster's setup commands install it then)."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else None


def submit(
    client: JobSubmissionClient,
    spec: SweepSpec,
    run_id: str,
    results: str,
    data_dir: str | None = None,
) -> str:
    """Submit `spec` (resolved, overrides applied) as a Ray Job; its submission id."""
    command = ["python", "-m", "sweeps", "run", f"env:{SPEC_ENV}", "--address", "auto",
               "--run-id", run_id, "--results", results]  # fmt: skip
    if data_dir:
        command += ["--data-dir", data_dir]
    runtime_env: dict[str, Any] = {"env_vars": {SPEC_ENV: to_yaml(spec)}}
    root = project_root()
    if root is not None:
        runtime_env.update(working_dir=str(root), excludes=EXCLUDES)
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
