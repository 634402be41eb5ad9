"""Commands watched while they run: their lines as they arrive, the rows they write; ports."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

CLOCK = r"\d\d:\d\d:\d\d"
# The status line `sweeps run` prints off a terminal every $SWEEPS_STATUS_EVERY_S.
STATUS_LINE = re.compile(
    rf"^{CLOCK}  \d+/\d+  \d+ done, \d+ running, \d+ pending, \d+ failed  eta {CLOCK}"
)


def timed_lines(
    command: list[str], env: dict[str, str], timeout: float = 150
) -> tuple[int, list[tuple[float, str]]]:
    """Run `command` with stdout and stderr as one pipe (neither a terminal): its exit code
    and each line with the moment it arrived."""
    process = subprocess.Popen(command, env=env, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)  # fmt: skip
    arrived: list[tuple[float, str]] = []

    def read() -> None:
        for line in process.stdout or []:
            arrived.append((time.monotonic(), line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        code = process.wait(timeout=timeout)
    finally:
        process.kill()
    reader.join(timeout=10)
    return code, arrived


def wait_for_rows(process: subprocess.Popen[str], pattern: str, root: Path, count: int) -> None:
    """Until `count` trials files exist: polled tightly, so a kill lands right after."""
    deadline = time.monotonic() + 180
    while len(list(root.glob(pattern))) < count:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.005)


def interrupted(command: list[str], env: dict[str, str], root: Path, pattern: str,
                count: int) -> tuple[int, str]:  # fmt: skip
    """Run `command`, Ctrl-C it once `count` trials files match `pattern` under `root`:
    its exit code and stderr."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for_rows(process, pattern, root, count)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


def free_port() -> int:
    """A port where nothing listens (bound once by us, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
