"""One writer per run: the run directory's lock, held by real processes; two `sweeps resume`
(or two `sweeps run --run-id`) of one run at once train each configuration once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from analysis.place import Place
from sweeps.runs.runlock import LEASE_S, LOCK, RunInUse, run_lock
from tests.helpers.processes import wait_for_rows
from tests.helpers.runs import sleepy_spec
from tests.sweeps.conftest import plugin_env

SWEEPS = str(Path(sys.executable).with_name("sweeps"))  # the console script


def hold(location: str) -> subprocess.Popen[str]:
    """Another process that takes the run's lock, says so, and keeps it until killed."""
    code = textwrap.dedent(f"""
        import time
        from sweeps.runs.runlock import run_lock
        from analysis.place import Place
        with run_lock(Place.of({location!r})):
            print("held", flush=True)
            time.sleep(600)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def test_a_second_writer_is_refused_naming_the_first_and_a_kill_9_leaves_no_lock(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = hold(str(run_dir))
    try:
        for new in (False, True):  # `sweeps resume`, and `sweeps run --run-id` of that id
            with pytest.raises(RunInUse) as refused, run_lock(Place.of(run_dir), new=new):
                pass
            message = str(refused.value)
            assert repr(str(run_dir)) in message
            assert f"pid {holder.pid} on {socket.gethostname()}" in message
    finally:
        holder.kill()  # SIGKILL: no chance to let go of anything
        holder.wait()
    with run_lock(Place.of(run_dir)):  # the OS let go of it with the process
        holder_now = json.loads((run_dir / LOCK).read_text())
        assert holder_now["pid"] == os.getpid()
    with pytest.raises(RunInUse, match="already exists"), run_lock(Place.of(run_dir), new=True):
        pass


def test_an_object_store_lease_refuses_a_second_writer_and_expires_with_its_holder(
    s3_server: str,
) -> None:
    run_dir = Place.of(s3_server) / "sleepy" / "run-1"
    holder = hold(run_dir.uri)
    try:
        with pytest.raises(RunInUse, match=f"pid {holder.pid} on "), run_lock(run_dir):
            pass
    finally:
        holder.kill()
        holder.wait()
    # Killed, its lease stays until it is LEASE_S old: as it would be by then.
    lease = json.loads((run_dir / LOCK).read_text())
    (run_dir / LOCK).write_text(json.dumps({**lease, "renewed_at": time.time() - LEASE_S - 1}))
    with run_lock(run_dir):
        assert json.loads((run_dir / LOCK).read_text())["pid"] == os.getpid()
    assert not (run_dir / LOCK).exists()  # let go of at the end


def test_of_two_writers_starting_together_on_an_object_store_one_goes_on(
    s3_server: str,
) -> None:
    run_dir = Place.of(s3_server) / "sleepy" / "run-2"
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def write() -> None:
        start.wait()
        try:
            with run_lock(run_dir, new=True):
                outcomes.append("held")
                time.sleep(2)
        except RunInUse as error:
            outcomes.append(str(error))

    writers = [threading.Thread(target=write) for _ in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert outcomes.count("held") == 1, outcomes


def interrupted_run(tmp_path: Path, xs: list[int]) -> Path:
    """A run of `sleepy` stopped with Ctrl-C once a configuration has its row."""
    results = tmp_path / "results"
    process = subprocess.Popen(
        [SWEEPS, "run", str(sleepy_spec(tmp_path / "s.yaml", xs)), "--results", str(results)],
        env=plugin_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for_rows(process, "sleepy/*/trials/*.parquet", results, 1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    (run_dir,) = (results / "sleepy").iterdir()
    return run_dir


def together(*commands: list[str]) -> list[tuple[subprocess.Popen[str], str]]:
    """The commands started at once; each process, with its stderr once it has ended."""
    pipes: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    processes = [subprocess.Popen(command, env=plugin_env(), **pipes) for command in commands]
    return [(process, process.communicate(timeout=300)[1]) for process in processes]


def assert_one_refused(ended: list[tuple[subprocess.Popen[str], str]], run_dir: Path) -> None:
    codes = sorted(process.returncode for process, _ in ended)
    assert codes == [0, 2], [stderr for _, stderr in ended]
    (winner, _), (_, refusal) = sorted(ended, key=lambda ended: ended[0].returncode)
    # Refused before Ray starts (the run directory exists already), or once it is up and
    # the lock is taken: then the line saying Ray starts comes first, as in any run.
    lines = refusal.strip().splitlines()
    if lines[0].startswith("starting Ray (local, "):
        lines = lines[1:]
    assert len(lines) == 1, refusal
    refusal = lines[0]
    assert refusal.startswith("error: ") and str(run_dir) in refusal
    if "already exists" not in refusal:  # else it came after the other had made the run
        assert f"pid {winner.pid} on {socket.gethostname()}" in refusal


@pytest.mark.slow
def test_two_resumes_of_one_run_at_once_train_each_configuration_once(tmp_path: Path) -> None:
    xs = [1, 2, 3, 4, 5, 6]
    run_dir = interrupted_run(tmp_path, xs)
    kept = pd.read_parquet(run_dir / "trials")
    assert_one_refused(together([SWEEPS, "resume", str(run_dir)],
                                [SWEEPS, "resume", str(run_dir)]), run_dir)  # fmt: skip
    trials = pd.read_parquet(run_dir / "trials")
    assert sorted(trials["x"]) == xs and set(trials["status"]) == {"TERMINATED"}
    assert set(kept["trial_id"]) <= set(trials["trial_id"])
    assert pd.read_parquet(run_dir / "epochs").groupby("trial_id").size().eq(3).all()


@pytest.mark.slow
def test_two_runs_of_one_run_id_at_once_train_each_configuration_once(tmp_path: Path) -> None:
    xs = [1, 2, 3, 4]
    spec, results = sleepy_spec(tmp_path / "s.yaml", xs), tmp_path / "results"
    command = [SWEEPS, "run", str(spec), "--results", str(results), "--run-id", "same"]
    ended = together(command, command)
    assert_one_refused(ended, results / "sleepy" / "same")
    trials = pd.read_parquet(results / "sleepy" / "same" / "trials")
    assert sorted(trials["x"]) == xs and set(trials["status"]) == {"TERMINATED"}
