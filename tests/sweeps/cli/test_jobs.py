"""`sweeps submit | jobs | status | logs | stop` (sweeps.cli.jobs) as a user meets them:
an error is one line and an exit code, at once; the cluster is found as `ray job` finds it."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.processes import free_port
from tests.sweeps.conftest import SWEEPS, plugin_env, sweeps

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("form", ["http://127.0.0.1:{}", "127.0.0.1:{}", "ray://127.0.0.1:{}"])
def test_an_address_where_nothing_listens_is_one_line_at_once_exit_2(form: str) -> None:
    """A Ray address (no http://) used to wait 47 s for a GCS, printing Ray's C++ log lines,
    and end with exit 1; a jobs URL with exit 1. Nothing answering is a bad address."""
    address = form.format(free_port())
    started = time.monotonic()
    result = subprocess.run([*SWEEPS, "jobs", "--address", address],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: nothing answers at {address!r} (connection refused)"
    ]
    assert time.monotonic() - started < 15  # the interpreter's start, Ray's import, a probe


def test_without_the_token_the_error_says_where_to_put_it(
    head: dict[str, str], tmp_path: Path
) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}  # no ~/.ray/auth_token here
    env.pop("RAY_AUTH_TOKEN", None)
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    started = time.monotonic()
    result = subprocess.run([*SWEEPS, "jobs", "--address", head["address"]], env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert "requires a token" in result.stderr and "~/.ray/auth_token" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert Path(head["token"]).read_text().strip() not in result.stderr + result.stdout
    assert time.monotonic() - started < 30


def test_following_the_logs_of_an_unknown_job_names_it_exit_2(head: dict[str, str]) -> None:
    """It was a 404 from the websocket's handshake, exit 1."""
    result = sweeps(head, "logs", "no-such-job", "--follow")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: no such job at {head['address']}: Job no-such-job does not exist."
    ]


def test_job_commands_find_the_cluster_in_ray_address_as_ray_job_does(
    head: dict[str, str],
) -> None:
    """No --address: RAY_ADDRESS names the cluster; with --address, the flag wins over it
    (Ray's client would otherwise let the variable override the flag)."""
    dead = f"http://127.0.0.1:{free_port()}"
    env = {**plugin_env(), "HOME": head["home"]}  # its ~/.ray/auth_token is the head's
    env.pop("RAY_API_SERVER_ADDRESS", None)
    for variable, flags in ((head["address"], []), (dead, ["--address", head["address"]])):
        result = subprocess.run([*SWEEPS, "jobs", *flags], env={**env, "RAY_ADDRESS": variable},
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert result.returncode == 0, (variable, flags, result.stderr)
        assert result.stdout.split()[:5] == ["job", "sweep", "state", "age", "message"]
