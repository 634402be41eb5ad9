"""Tune's trial callbacks, decoded once into each configuration's events for the listeners.

A Tune trial `{"group": i}` trains `plan.groups[i]` (a fused bundle, or a pack of bundles)
and reports them all at once (sweeps.record.protocol). Here, and only here, a Tune trial
becomes its configurations: each one's id, its epochs, its end and its status. A retry
starts the trial's unfinished configurations over; what a retried pack had finished
before stays ended and is not reported again.

The first listener is the record (the Parquet writer): a write that fails (a full disk, a
bucket that refuses us) stops the whole run at once through `StopOnWriteFailure`, the
trials written so far stay whole, and `resume` trains what is left once the cause is
fixed. The other listeners are views of it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray import cloudpickle, tune
from ray.tune.stopper import Stopper

from analysis.rundir import Status
from sweeps.plan.groups import Config
from sweeps.record.events import Configuration, Ended, Epoch, Listener, Started
from sweeps.record.protocol import EPOCH, decode, divergence, scalars


def configuration_id(trial_id: str, position: int, size: int) -> str:
    """A configuration's `trial_id` in the rows: its Tune trial's id, with `-<position>`
    in a trial that trains several (a fused bundle, a pack)."""
    return f"{trial_id}-{position}" if size > 1 else trial_id


@dataclasses.dataclass
class _Attempt:
    configurations: list[Configuration]
    started_at: dt.datetime
    epochs: list[list[dict[str, Any]]]  # by position, by epoch
    finals: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    errors: dict[int, str] = dataclasses.field(default_factory=dict)  # a pack's, by position


class Fanout(tune.Callback):
    """The driver's one Tune callback: each trial event as events of its configurations,
    handed to `record` and then to each of `views`."""

    def __init__(
        self,
        configs: list[Config],
        groups: list[list[int]],
        record: Listener,
        views: list[Listener],
    ) -> None:
        """Trial `{"group": i}` trains `configs[k]` for each k in `groups[i]`."""
        self.configs, self.groups = configs, groups
        self.listeners = [record, *views]
        self.stopper = StopOnWriteFailure()
        self._attempts: dict[str, _Attempt] = {}
        self._ended: dict[str, set[int]] = {}  # by Tune trial: kept across its retries

    # --- the events, from a trial's id and what it reported ------------------------------

    def start(self, key: str, indices: list[int]) -> None:
        """Trial `key` trains `configs[k]` for k in `indices`, from the start (again, on a
        retry)."""
        configurations = [
            Configuration(configuration_id(key, position, len(indices)), index,
                          dict(self.configs[index]), key, position, len(indices))
            for position, index in enumerate(indices)
        ]  # fmt: skip
        retry = key in self._ended
        ended = self._ended.setdefault(key, set())
        self._attempts[key] = _Attempt(configurations, _now(), [[] for _ in indices])
        for configuration in configurations:
            if configuration.position not in ended:
                self._emit("started", Started(configuration, retry))

    def report(self, key: str, result: Mapping[str, Any]) -> None:
        """A trial's report: epochs, or final metrics (a pack's bundle that ended ends
        now: the rest of the pack may take hours)."""
        report, attempt = decode(result), self._attempts.get(key)
        if report is None or attempt is None:
            return
        for note in report.notes:
            self._emit("note", key, note)
        ended = self._ended[key]
        if report.kind == EPOCH:
            for position, metrics in report.placed():
                if position not in ended:  # a retried pack trains again what had ended
                    epoch = scalars(metrics)
                    attempt.epochs[position].append(epoch)
                    self._emit("epoch", Epoch(attempt.configurations[position], epoch))
            return
        for number, (position, metrics) in enumerate(report.placed()):
            attempt.finals[position] = metrics
            if report.errors and report.errors[number]:
                attempt.errors[position] = report.errors[number]
        fresh = [position for position in report.positions or [] if position not in ended]
        if fresh:
            self._end(key, fresh, None, f"{key}-{fresh[0]}")

    def end(self, key: str, error: str | None) -> None:
        """Trial `key` ended: its configurations not ended yet end, failed with `error`
        if it has one."""
        attempt = self._attempts.get(key)
        if attempt is None:
            return
        left = [position for position in range(len(attempt.configurations))
                if position not in self._ended[key]]  # fmt: skip
        if left:
            self._end(key, left, error, key)
        del self._attempts[key]

    def _end(self, key: str, positions: list[int], error: str | None, name: str) -> None:
        attempt = self._attempts[key]
        events = []
        for position in positions:
            epochs, final = attempt.epochs[position], attempt.finals.get(position, {})
            why = error or attempt.errors.get(position)
            status = Status.FAILED
            if not why:
                why = divergence(epochs, scalars(final))
                status = Status.DIVERGED if why else Status.DONE
            configuration = attempt.configurations[position]
            started_at = attempt.started_at
            events.append(Ended(configuration, status, why, epochs, dict(final), started_at))
        self._ended[key].update(positions)
        self._emit("ended", name, events)

    def _emit(self, method: str, *args: Any) -> None:
        record, *views = self.listeners
        if self.failure is None:  # the run is stopping: write nothing more
            try:
                getattr(record, method)(*args)
            except OSError as failure:
                self.stopper.failure = failure
        for view in views:
            getattr(view, method)(*args)

    @property
    def failure(self) -> OSError | None:
        """Why the record could not be written, which stopped the run."""
        return self.stopper.failure

    # --- Tune's callbacks -------------------------------------------------------------

    def setup(self, **info: Any) -> None:
        for listener in self.listeners:
            listener.setup()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.start(trial.trial_id, self.groups[trial.config["group"]])

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.start(
            trial.trial_id, self.groups[trial.config["group"]]
        )  # a retry starts from scratch

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        self.report(trial.trial_id, result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.end(trial.trial_id, None)  # stopped early (ASHA): no final report of its own

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.end(trial.trial_id, error_message(trial))

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        for listener in self.listeners:
            listener.tick()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        for listener in self.listeners:
            listener.finished()


class StopOnWriteFailure(Stopper):
    """Ends the experiment once the results can no longer be written. (Tune pickles its
    stopper with the experiment's state: this holds nothing but the failure.)"""

    def __init__(self) -> None:
        self.failure: OSError | None = None

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.failure is not None


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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
