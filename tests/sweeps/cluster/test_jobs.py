"""Sweeps as Ray Jobs on a real local head started by the test (jobs API, token auth)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
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

from tests.helpers.processes import STATUS_LINE, free_port, timed_lines
from tests.sweeps.conftest import plugin_env

pytestmark = pytest.mark.slow
SWEEPS = [sys.executable, "-m", "sweeps"]
RAY = str(Path(sys.executable).with_name("ray"))


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


def stop_tree(process: subprocess.Popen) -> None:
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
    head: dict[str, str], *args: str, token: bool = True, **kwargs
) -> subprocess.CompletedProcess:
    extra = ["--address", head["address"], *(["--token-file", head["token"]] if token else [])]
    env = {**plugin_env(), "HOME": head["home"]}
    return subprocess.run([*SWEEPS, *args, *extra], env=env, capture_output=True, text=True,
                          timeout=180, **kwargs)  # fmt: skip


def spec_file(tmp_path: Path, name: str, sleep_s: float, grid: list[int]) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "trainer": "user_trainers:steady", "dataset": None,
        "base": {"epochs": 2, "sleep_s": sleep_s}, "grid": {"x": grid},
        "resources": {"cpus": 1, "gpus": 0},
    }))  # fmt: skip
    return str(path)


def state(head: dict[str, str], job: str) -> str:
    result = sweeps(head, "status", job)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[1]


def wait_for(head: dict[str, str], job: str, states: set[str], timeout: float = 150) -> str:
    deadline = time.monotonic() + timeout
    while (current := state(head, job)) not in states:
        ended = current in {"SUCCEEDED", "FAILED", "STOPPED"}
        assert not ended, f"{job} ended {current}:\n{sweeps(head, 'logs', job).stdout}"
        assert time.monotonic() < deadline, f"{job} still {current}"
        time.sleep(1)
    return current


def listed_states(head: dict[str, str]) -> dict[str, str]:
    listing = sweeps(head, "jobs")
    assert listing.returncode == 0, listing.stderr
    return {line.split()[0]: line.split()[2] for line in listing.stdout.splitlines()[1:]}


def test_sweeps_queue_for_the_sweep_slot_and_finish(head: dict[str, str], tmp_path: Path) -> None:
    results = tmp_path / "results"
    first = sweeps(head, "submit", spec_file(tmp_path, "first", 3.0, [1, 2, 3, 4]),
                   "--results", str(results))  # fmt: skip
    assert first.returncode == 0, first.stderr
    second = sweeps(head, "submit", spec_file(tmp_path, "second", 0.1, [5]),
                    "--results", str(results))  # fmt: skip
    assert second.returncode == 0, second.stderr
    first_id, second_id = first.stdout.strip(), second.stdout.strip()

    deadline = time.monotonic() + 120
    while (states := listed_states(head))[first_id] != "RUNNING":
        assert states[first_id] == "PENDING" and time.monotonic() < deadline, states
        time.sleep(1)
    assert states[second_id] == "PENDING"  # one slot: the second waits in Ray's queue
    assert state(head, second_id) == "PENDING"

    assert wait_for(head, first_id, {"SUCCEEDED"}) == "SUCCEEDED"
    assert wait_for(head, second_id, {"SUCCEEDED"}) == "SUCCEEDED"
    for name, job, count in (("first", first_id, 4), ("second", second_id, 1)):
        trials = pd.read_parquet(results / name / job / "trials")
        assert len(trials) == count and set(trials["status"]) == {"TERMINATED"}
    logs = sweeps(head, "logs", first_id)
    assert logs.returncode == 0 and "4 trials: 4 finished, 0 failed" in logs.stdout
    followed = sweeps(head, "logs", second_id, "--follow")  # ends when the job has ended
    assert followed.returncode == 0 and "1 trials: 1 finished, 0 failed" in followed.stdout
    unknown = sweeps(head, "status", "no-such-job")
    assert unknown.returncode == 2 and "no such job" in unknown.stderr


def test_followed_logs_show_progress_while_the_sweep_runs(
    head: dict[str, str], tmp_path: Path
) -> None:
    spec = spec_file(tmp_path, "watched", 1.0, [1, 2, 3])
    submitted = sweeps(head, "submit", spec, "--results", str(tmp_path / "results"),
                       "--max-concurrent", "1")  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip()
    follow = [*SWEEPS, "logs", job, "--follow", "--address", head["address"],
              "--token-file", head["token"]]  # fmt: skip
    code, arrived = timed_lines(follow, {**plugin_env(), "HOME": head["home"]}, timeout=180)
    text = "\n".join(line for _, line in arrived)
    assert code == 0 and "3 trials: 3 finished, 0 failed" in text, text
    done = [when for when, line in arrived if re.search(r"  [123]/3 done  \S+  x=[123]  ", line)]
    (end,) = [when for when, line in arrived if "  3/3 ended  3 done" in line]
    assert len(done) == 3, text
    # The first line came as its trial ended, not with the last: x=2 and x=3 then trained
    # 2 epochs of 1 s each (the job's log arrives in batches about a second apart).
    assert end - done[0] >= 2.5, text
    assert any(STATUS_LINE.match(line) for _, line in arrived), text


def test_a_stopped_job_keeps_its_finished_trials(head: dict[str, str], tmp_path: Path) -> None:
    results = tmp_path / "results"
    spec = spec_file(tmp_path, "long", 1.5, [1, 2, 3, 4, 5, 6])
    submitted = sweeps(head, "submit", spec, "--results", str(results), "--max-concurrent", "1")
    job = submitted.stdout.strip()
    deadline = time.monotonic() + 150
    while len(list(results.glob(f"long/{job}/trials/*.parquet"))) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    stopped = sweeps(head, "stop", job)
    assert stopped.returncode == 0 and "stop requested" in stopped.stdout
    assert wait_for(head, job, {"STOPPED", "SUCCEEDED", "FAILED"}) == "STOPPED"
    trials = pd.read_parquet(results / "long" / job / "trials")
    assert 1 <= len(trials) < 6 and set(trials["status"]) == {"TERMINATED"}
    # The run ended as Ctrl-C ends it, its manifest finished (Ray's supervisor SIGKILLs a
    # job RAY_JOB_STOP_WAIT_TIME_S after the SIGTERM: 3 s by default, 60 s for ours).
    manifest = json.loads((results / "long" / job / "manifest.json").read_text())
    assert "finished_at" in manifest, manifest


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


def test_following_the_logs_of_an_unknown_job_names_it_exit_2(head: dict[str, str]) -> None:
    """It was a 404 from the websocket's handshake, exit 1."""
    result = sweeps(head, "logs", "no-such-job", "--follow")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: no such job at {head['address']}: Job no-such-job does not exist."
    ]


def test_a_cluster_without_sweep_slots_is_refused_before_anything_is_submitted(
    tmp_path: Path,
) -> None:
    """A job asking for a slot such a cluster lacks would wait PENDING forever, unsaid."""
    with running_head(tmp_path / "home", None) as bare:
        spec = spec_file(tmp_path, "unslotted", 0.0, [1])
        result = sweeps(bare, "submit", spec, "--results", str(tmp_path / "results"))
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines() == [
            f"error: the Ray cluster at {bare['address']} has no 'sweep_slots' resource, so a"
            " sweep submitted there would wait PENDING forever: start its head with"
            """ --resources='{"sweep_slots": 2}' (cluster.yaml does)"""
        ]
        assert listed_states(bare) == {}  # nothing was submitted


LISTING_TRAINER = """
import json
from pathlib import Path


def train(config, dataset, report):
    # This module's folder is the job's working dir as Ray unpacked it on the head.
    shipped = Path(__file__).resolve().parent
    files = [str(path.relative_to(shipped)) for path in shipped.rglob("*") if path.is_file()]
    Path(config["listing"]).write_text(json.dumps({"root": str(shipped), "files": files}))
    metrics = {"epoch": 1, "loss": 0.0, "accuracy": 1.0, "val_loss": 0.0,
               "val_accuracy": 1.0, "epoch_time_s": 0.0}
    report(metrics)
    return metrics
"""


def test_submit_ships_the_checkout_without_secrets_or_ignored_files(
    head: dict[str, str], tmp_path: Path
) -> None:
    """The job's working dir is the checkout sweeps runs from: here a copy, with a user's
    secrets and a .gitignore, whose trainer lists the files of the dir it was shipped in."""
    repo = Path(__file__).resolve().parents[3]
    checkout = tmp_path / "checkout"
    for package in ("sweeps", "trainers", "analysis"):
        shutil.copytree(repo / package, checkout / package,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copy(repo / "pyproject.toml", checkout)
    (checkout / "listing.py").write_text(LISTING_TRAINER)
    secrets = [".env", ".env.local", "conf/.env", "API_TOKEN.txt", "keys/id_rsa", "cert.pem",
               "db_password", "notes/aws_secret.txt"]  # fmt: skip
    (checkout / "tokenizer.py").write_text("# code the job needs, whatever its name\n")
    ignored = ["scratch/big.bin", "ignored.log"]
    for name in [*secrets, *ignored]:
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text("do not ship\n")
    (checkout / ".gitignore").write_text("scratch/\n*.log\n")
    listing = tmp_path / "listing.json"
    spec = tmp_path / "listing.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "listing", "trainer": "listing:train", "dataset": None,
        "base": {"epochs": 1, "listing": str(listing)}, "grid": {"x": [1]},
        "resources": {"cpus": 1, "gpus": 0},
    }))  # fmt: skip

    # `python -m sweeps` in the copy runs the copy's sweeps, which ships its own checkout.
    submitted = sweeps(head, "submit", str(spec), "--results", str(tmp_path / "results"),
                       cwd=checkout)  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    said = re.search(r"^shipping (\S+) \((\d+) files, [\d.]+ MB; excluded: (.*)\)$",
                     submitted.stderr, re.MULTILINE)  # fmt: skip
    assert said is not None, submitted.stderr
    assert said[1] == str(checkout.resolve())
    assert set(said[3].split(", ")) == {*secrets, *ignored}, said[3]
    assert wait_for(head, submitted.stdout.strip(), {"SUCCEEDED"}) == "SUCCEEDED"

    job = json.loads(listing.read_text())
    assert job["root"] != str(checkout.resolve())  # the shipped copy, not this one
    shipped = {name for name in job["files"] if "__pycache__" not in name}
    needed = {
        "listing.py",
        ".gitignore",
        "sweeps/cluster/jobs.py",
        "pyproject.toml",
        "tokenizer.py",
    }
    assert needed <= shipped
    assert not shipped & {*secrets, *ignored}, shipped & {*secrets, *ignored}
    assert len(shipped) == int(said[2])  # what the line said went is what arrived


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
