"""One writer per run: `sweeps run` and `sweeps resume` hold the run directory's lock for as
long as they write it, and a second process is refused, naming the one that holds it.

Two processes writing one run would each train every pending configuration (a run of 54
ended with 105 rows). On a disk (a local path, `file://`, a shared filesystem such as NFS,
where Linux carries `flock` to the server) the lock is `fcntl.flock` on `<run_dir>/.lock`:
the OS releases it when its process ends, however it ends, so a `kill -9` leaves no stale
lock; the file only says who holds it.

An object store (`s3://`, `gs://`) has no locks, so there the lock is a lease: the object
`<run_dir>/.lock` names its holder and the time, and the holder rewrites it every
`RENEW_S`. A lease not renewed for `LEASE_S` belonged to a process that died, and is taken
over. Two processes that both find no lease each write their own, wait `SETTLE_S` and read
it back: the store keeps the last one written, and the process whose lease is not there
gives way. Hosts whose clocks differ by more than `LEASE_S - RENEW_S` can take a live lease
for a stale one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from analysis.place import Place, StorageError
from analysis.rundir import LOCK

LEASE_S = 60.0
RENEW_S = 15.0
SETTLE_S = 1.0
# A holder writes who it is just after it takes the lock: worth a moment's wait to name it.
NAME_WAIT_S = 2.0


class RunInUse(ValueError):
    """Another process writes the run directory (or, for a new run, made it first)."""


@contextlib.contextmanager
def run_lock(run_dir: Place, *, new: bool = False) -> Iterator[None]:
    """Hold the run's lock for the block. `new`: make the run directory, which must not
    exist. RunInUse naming the holder when another process has the lock; RunInUse when
    `new` and the directory exists already; nothing is written then."""
    held = _flock(run_dir, new) if run_dir.local else _lease(run_dir, new)
    with held:
        yield


# --- a disk ----------------------------------------------------------------------------


@contextlib.contextmanager
def _flock(run_dir: Place, new: bool) -> Iterator[None]:
    path = os.path.join(run_dir.path, LOCK)
    if new:
        os.makedirs(os.path.dirname(run_dir.path), exist_ok=True)
        try:
            os.mkdir(run_dir.path)
        except FileExistsError:
            raise _existing(run_dir) from None
        except OSError as error:
            raise StorageError(f"cannot create {run_dir.uri!r}: {error}") from None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise StorageError(f"cannot lock {run_dir.uri!r}: {error}") from None
    try:
        try:
            # A directory this process has just made: another may be only looking at the
            # lock (`_existing`), for a moment; so wait for it.
            fcntl.flock(fd, fcntl.LOCK_EX if new else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunInUse(_in_use(run_dir, _read_holder(fd))) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_me()).encode() + b"\n", 0)
        yield
    finally:
        os.close(fd)  # and with it the lock


def _existing(run_dir: Place) -> RunInUse:
    """Why a new run directory cannot be made: another process holds it, or it is there."""
    deadline = time.monotonic() + NAME_WAIT_S
    while True:
        try:
            fd = os.open(os.path.join(run_dir.path, LOCK), os.O_RDONLY)
        except FileNotFoundError:
            # Its maker takes the lock the moment it has made it; a run older than locks
            # never will.
            if time.monotonic() > deadline:
                return RunInUse(f"run directory {run_dir.uri!r} already exists")
            time.sleep(0.05)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return RunInUse(_in_use(run_dir, _read_holder(fd)))
        finally:
            os.close(fd)
        return RunInUse(f"run directory {run_dir.uri!r} already exists")


def _read_holder(fd: int) -> dict[str, Any] | None:
    deadline = time.monotonic() + NAME_WAIT_S
    while True:
        holder = _parse(os.pread(fd, 4096, 0))
        if holder is not None or time.monotonic() > deadline:
            return holder
        time.sleep(0.05)


# --- an object store -------------------------------------------------------------------


@contextlib.contextmanager
def _lease(run_dir: Place, new: bool) -> Iterator[None]:
    lock = run_dir / LOCK
    held = _live_lease(lock)
    if held is not None:
        raise RunInUse(_in_use(run_dir, held))
    if new and run_dir.exists():
        raise RunInUse(f"run directory {run_dir.uri!r} already exists")
    mine = {**_me(), "token": secrets.token_hex(8)}
    _write_lease(lock, mine)
    time.sleep(SETTLE_S)
    found = _read_lease(lock)
    if found is None or found.get("token") != mine["token"]:
        raise RunInUse(_in_use(run_dir, found))
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(lock, mine, stop), daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        with contextlib.suppress(OSError):
            if (_read_lease(lock) or {}).get("token") == mine["token"]:
                lock.fs.delete_file(lock.path)


def _live_lease(lock: Place) -> dict[str, Any] | None:
    held = _read_lease(lock)
    if held is None or time.time() - float(held.get("renewed_at", 0)) > LEASE_S:
        return None  # none, or its holder stopped renewing it: died
    return held


def _read_lease(lock: Place) -> dict[str, Any] | None:
    try:
        return _parse(lock.read_bytes())
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ENOENT or "not found" in str(error).lower():
            return None
        raise StorageError(f"cannot read {lock.uri!r}: {error}") from None


def _write_lease(lock: Place, lease: dict[str, Any]) -> None:
    lock.write_text(json.dumps({**lease, "renewed_at": time.time()}) + "\n")


def _renew(lock: Place, lease: dict[str, Any], stop: threading.Event) -> None:
    while not stop.wait(RENEW_S):
        # A store that does not answer now may answer at the next renewal.
        with contextlib.suppress(OSError):
            _write_lease(lock, lease)


# --- the holder ------------------------------------------------------------------------


def _me() -> dict[str, Any]:
    since = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": since}


def _parse(data: bytes) -> dict[str, Any] | None:
    try:
        holder = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return holder if isinstance(holder, dict) and "pid" in holder else None


def _in_use(run_dir: Place, holder: dict[str, Any] | None) -> str:
    who = "another sweeps process"
    if holder is not None:
        who += f" (pid {holder['pid']} on {holder.get('host', '?')}"
        who += f", since {holder['since']})" if holder.get("since") else ")"
    return f"run directory {run_dir.uri!r} is being written by {who}: wait for it to end"
