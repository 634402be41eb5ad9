"""Tune's side of the results: its trial events fed to the RunWriter, and a stop switch.

Tune calls these on the driver. A write that fails (a full disk, a bucket that refuses
us) stops the whole run at once through `StopOnWriteFailure`: the trials written so far
stay whole, the failure is kept in `ResultsCallback.failure`, and `resume` trains what
is left once the cause is fixed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ray import cloudpickle, tune
from ray.tune.stopper import Stopper

from sweeps.protocol import decode
from sweeps.results import RunWriter


class ResultsCallback(tune.Callback):
    def __init__(self, writer: RunWriter, groups: list[list[int]]) -> None:
        self.writer, self.groups = writer, groups
        self.failure: OSError | None = None

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.writer.start(trial.trial_id, self.groups[trial.config["group"]])

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.on_trial_start(iteration, trials, trial)  # a retry starts from scratch

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        report = decode(result)
        if report is not None:
            self.writer.report(trial.trial_id, report)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, error_message(trial))

    def _end(self, trial: Any, error: str | None) -> None:
        if self.failure is not None:
            return  # the run is stopping: write nothing more
        try:
            self.writer.end(trial.trial_id, error)
        except OSError as failure:
            self.failure = failure


class StopOnWriteFailure(Stopper):
    """Ends the experiment once the results can no longer be written."""

    def __init__(self, results: ResultsCallback) -> None:
        self.results = results

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.results.failure is not None


def error_message(trial: Any) -> str:
    """The trial's exception as one line: `ValueError: ...`, not Ray's wrapped traceback.

    Read from the files Tune has just written on the driver (its storage copy is synced
    later, so Trial.get_pickled_error may not see it yet).
    """
    error = None
    if trial.pickled_error_file and os.path.exists(trial.pickled_error_file):
        try:
            with open(trial.pickled_error_file, "rb") as file:
                error = cloudpickle.load(file)
        except Exception:  # an error that does not unpickle here: use the text instead
            error = None
    if error is not None:
        cause = getattr(error, "cause", None) or error
        return " ".join(f"{type(cause).__name__}: {cause}".split())
    text = ""
    if trial.error_file and os.path.exists(trial.error_file):
        text = Path(trial.error_file).read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"
