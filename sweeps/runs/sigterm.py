"""SIGTERM as Ctrl-C for the length of a run: `kill`, a timeout, Slurm and `sweeps stop`
end a run as Ctrl-C does, Tune ending the trials and the run ending as interrupted.

Ray's driver would otherwise answer SIGTERM with a native stack dump and exit 134
(sweeps.cluster.session keeps ray.init from installing that handler in place of ours).

A timeout signals the run's whole process group, and Slurm every process of the job: the
embedded Ray's processes die with the driver's SIGTERM, and Tune, ending the trials, then
waits on the dead Ray for a minute before Ray aborts the process. So `STOP_S` after a
SIGTERM, a run still going is ended without Tune: `TermAsInterrupt.when_stuck`'s function
(sweeps.runs.runner finishes the manifest from the rows and says how to resume) runs, and the
process exits with the code it returns. The deadline is kept by a thread woken through
`signal.set_wakeup_fd`, since the main thread may be stuck in Ray's native code, where
Python's own signal handler never runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

STOP_S = 10.0  # after a SIGTERM, the time Tune has to end the run


class TermAsInterrupt:
    """Within it (in the main thread: where handlers are set), SIGTERM is Ctrl-C, with a
    deadline of `stop_s`."""

    def __init__(self, stop_s: float = STOP_S) -> None:
        self.stop_s = stop_s
        self.stuck: Callable[[], int] = lambda: 130  # as an interrupted command exits
        self.deadline: threading.Timer | None = None
        self.arming = threading.Lock()
        self.ended = False
        self.installed = False
        self.previous: Any = None
        self.previous_fd = -1
        self.wakeup: socket.socket | None = None

    def when_stuck(self, end: Callable[[], int]) -> None:
        """What ends the run, and its exit code, if Tune has not within the deadline."""
        self.stuck = end

    def __enter__(self) -> TermAsInterrupt:
        if threading.current_thread() is not threading.main_thread():
            return self
        self.previous = signal.signal(signal.SIGTERM, self._interrupt)
        self.installed = True
        reader, self.wakeup = socket.socketpair()
        self.wakeup.setblocking(False)
        self.previous_fd = signal.set_wakeup_fd(self.wakeup.fileno(), warn_on_full_buffer=False)
        threading.Thread(target=self._await_sigterm, args=(reader,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.installed:
            return
        with self.arming:
            self.ended = True
            if self.deadline is not None:
                self.deadline.cancel()
        signal.set_wakeup_fd(self.previous_fd)
        if self.wakeup is not None:
            self.wakeup.close()  # the waiting thread reads the end of its socket, and ends
        signal.signal(signal.SIGTERM, signal.SIG_DFL if self.previous is None else self.previous)

    def _interrupt(self, signum: int, frame: Any) -> None:
        self._arm()
        handler = signal.getsignal(signal.SIGINT)  # Tune's during a fit, else Python's
        if not callable(handler):  # SIGINT ignored (a background job): stop all the same
            raise KeyboardInterrupt
        handler(signal.SIGINT, frame)

    def _await_sigterm(self, reader: socket.socket) -> None:
        with reader:
            while True:
                try:
                    received = reader.recv(64)
                except OSError:
                    return
                if not received:
                    return
                if signal.SIGTERM in received:
                    self._arm()

    def _arm(self) -> None:
        with self.arming:
            if self.deadline is None and not self.ended:
                self.deadline = threading.Timer(self.stop_s, self._give_up)
                self.deadline.daemon = True
                self.deadline.start()

    def _give_up(self) -> None:
        code = 1
        try:
            code = self.stuck()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)  # the main thread is stuck in Ray: no exception would reach it
