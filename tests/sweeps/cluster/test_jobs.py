"""sweeps.cluster.jobs: sweeps as Ray Jobs on a real local head started by the test (jobs
API, token auth), driven through `sweeps submit | status | logs | stop`: what happens on
the cluster (queueing, following, stopping, what is shipped)."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers.processes import STATUS_LINE, timed_lines
from tests.sweeps.conftest import SWEEPS, plugin_env, running_head, sweeps

pytestmark = pytest.mark.slow


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
    assert followed.returncode == 0 and "1 trial: 1 finished, 0 failed" in followed.stdout
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
    # 2 epochs of 1 s each. The job's log arrives in batches, on a loaded machine up to 2 s
    # apart (CI saw 2.0 s between them), so the bar is a second: not all in one batch.
    assert end - done[0] >= 1.0, text
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

import sweeps


def train(config, dataset, report):
    # This module's folder is the job's working dir as Ray unpacked it on the head.
    shipped = Path(__file__).resolve().parent
    files = [str(path.relative_to(shipped)) for path in shipped.rglob("*") if path.is_file()]
    Path(config["listing"]).write_text(json.dumps(
        {"root": str(shipped), "files": files, "sweeps": sweeps.__file__}))
    metrics = {"epoch": 1, "loss": 0.0, "accuracy": 1.0, "val_loss": 0.0,
               "val_accuracy": 1.0, "epoch_time_s": 0.0}
    report(metrics)
    return metrics
"""


def test_submit_ships_your_folder_and_sweeps_without_secrets_or_ignored_files(
    head: dict[str, str], tmp_path: Path
) -> None:
    """A trainer that lives only in a folder outside the project, next to its spec, with a
    user's secrets and a .gitignore: the job ships that folder as its working dir and the
    checkout sweeps runs from (here a copy) as modules, and succeeds."""
    repo = Path(__file__).resolve().parents[3]
    checkout = tmp_path / "checkout"
    for package in ("sweeps", "trainers", "analysis"):
        shutil.copytree(repo / package, checkout / package,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copy(repo / "pyproject.toml", checkout)
    project = tmp_path / "my-model"
    project.mkdir()
    (project / "listing.py").write_text(LISTING_TRAINER)
    secrets = [".env", ".env.local", "conf/.env", "API_TOKEN.txt", "keys/id_rsa", "cert.pem",
               "db_password", "notes/aws_secret.txt"]  # fmt: skip
    (project / "tokenizer.py").write_text("# code the job needs, whatever its name\n")
    ignored = ["scratch/big.bin", "ignored.log"]
    for name in [*secrets, *ignored]:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("do not ship\n")
    (project / ".gitignore").write_text("scratch/\n*.log\n")
    listing = tmp_path / "listing.json"
    spec = project / "listing.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "listing", "trainer": "listing:train", "dataset": None,
        "base": {"epochs": 1, "listing": str(listing)}, "grid": {"x": [1]},
        "resources": {"cpus": 1, "gpus": 0},
    }))  # fmt: skip

    # `python -m sweeps` in the copy runs the copy's sweeps, which ships its own packages.
    submitted = sweeps(head, "submit", str(spec), "--results", str(tmp_path / "results"),
                       cwd=checkout)  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    said = re.findall(r"^shipping (\S+) \((\d+) files, [\d.]+ MB; excluded: (.*)\)( as a module)?$",
                      submitted.stderr, re.MULTILINE)  # fmt: skip
    assert [(root, module) for root, _, _, module in said] == [
        (str(project.resolve()), ""),
        *((str(checkout.resolve() / package), " as a module")
          for package in ("sweeps", "trainers", "analysis")),
    ], submitted.stderr  # fmt: skip
    assert set(said[0][2].split(", ")) == {*secrets, *ignored}, said[0][2]
    assert wait_for(head, submitted.stdout.strip(), {"SUCCEEDED"}) == "SUCCEEDED"

    job = json.loads(listing.read_text())
    assert job["root"] != str(project.resolve())  # the shipped copy, not this one
    shipped = set(job["files"])
    assert {"listing.py", "listing.yaml", ".gitignore", "tokenizer.py"} <= shipped
    assert not shipped & {*secrets, *ignored}, shipped & {*secrets, *ignored}
    assert len(shipped) == int(said[0][1])  # what the line said went is what arrived
    # The job ran the shipped sweeps: neither the copy here nor the one installed.
    shipped_sweeps = Path(job["sweeps"]).resolve()
    assert not shipped_sweeps.is_relative_to(checkout.resolve())
    assert not shipped_sweeps.is_relative_to(repo)
