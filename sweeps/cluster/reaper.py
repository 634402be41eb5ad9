"""A watchdog that cleans up after a driver killed with -9.

`python sweeps/cluster/reaper.py PID` (or `python -m sweeps.cluster.reaper PID`) records, every half
second, the processes descended from the driver PID (the embedded Ray: GCS, raylet, its
agents and workers). When the driver is gone it terminates those still running (SIGTERM,
then SIGKILL) and exits. Ray's own fate-sharing takes the GCS and raylet down with a
killed driver, but not the raylet's DashboardAgent and RuntimeEnvAgent, which pid 1 adopts
and keeps for good; the only other cure, `ray stop --force`, kills every Ray on the
machine. This touches only the processes it recorded (same pid and start time), so other
Rays are safe.

It imports neither torch nor ray: it must be up before ray.init spawns anything.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

import psutil

POLL_S = 0.5
GRACE_S = 3.0

# pid -> create_time: a pid reused by an unrelated process has another start time.
Recorded = dict[int, float]


def watch(driver_pid: int, poll_s: float = POLL_S, grace_s: float = GRACE_S) -> None:
    """Record the driver's descendants until it is gone, then end those still running."""
    try:
        driver = psutil.Process(driver_pid)
    except psutil.NoSuchProcess:
        return  # gone before we looked: nothing was recorded, so nothing is ours
    recorded: Recorded = {}
    while _running(driver):
        _record(driver, recorded)
        time.sleep(poll_s)
    reap(recorded, grace_s)


def _running(process: psutil.Process) -> bool:
    # A driver killed with -9 stays a zombie until its parent waits for it.
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _record(driver: psutil.Process, recorded: Recorded) -> None:
    try:
        descendants = driver.children(recursive=True)
    except psutil.Error:
        return  # the driver just went: what was recorded already is what gets reaped
    for process in descendants:
        if process.pid == os.getpid():
            continue
        try:
            recorded.setdefault(process.pid, process.create_time())
        except psutil.Error:
            continue  # exited between the listing and the look
    # Forget the dead, so hours of short-lived Ray workers do not pile up; keep the live
    # ones even when no longer descendants (a daemon that re-parented itself is still ours).
    for pid, created in list(recorded.items()):
        if _live(pid, created) is None:
            del recorded[pid]


def _live(pid: int, created: float) -> psutil.Process | None:
    try:
        process = psutil.Process(pid)
        if process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE:
            return process
    except psutil.Error:
        pass
    return None


def reap(recorded: Recorded, grace_s: float = GRACE_S) -> None:
    """SIGTERM every recorded process still running, SIGKILL those alive `grace_s` later."""
    targets = _with_descendants([p for pid, t in recorded.items() if (p := _live(pid, t))])
    for process in targets:
        with contextlib.suppress(psutil.Error):  # exited on its own meanwhile
            process.terminate()
    # Ray's agents ignore SIGTERM while they shut down (they can take many seconds).
    for process in _wait_gone(targets, grace_s):
        with contextlib.suppress(psutil.Error):
            process.kill()


def _wait_gone(processes: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Those of `processes` still running after `timeout_s`. Not psutil.wait_procs: it
    waits out the timeout on a zombie that is not its child, and pid 1 in a container may
    never reap the zombies that an orphan's death leaves."""
    deadline = time.monotonic() + timeout_s
    alive = processes
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [process for process in alive if _running(process)]
    return alive


def _with_descendants(processes: list[psutil.Process]) -> list[psutil.Process]:
    # A process spawned by a recorded one in the last poll interval was never recorded.
    found = {process.pid: process for process in processes}
    for process in processes:
        try:
            found.update((child.pid, child) for child in process.children(recursive=True))
        except psutil.Error:
            continue
    found.pop(os.getpid(), None)
    return list(found.values())


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print(f"usage: reaper.py DRIVER_PID (got {argv!r})", file=sys.stderr)
        return 2
    watch(int(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
