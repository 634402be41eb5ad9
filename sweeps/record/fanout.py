"""Tune's trial callbacks, decoded once into each configuration's events for the listeners.

A Tune trial `{"group": i}` trains `plan.groups[i]` (a fused bundle, or a pack of bundles)
and reports them all at once (sweeps.record.protocol). Here, and only here, a Tune trial
becomes its configurations: each one's id, its epochs, its end and its status (STOPPED
for one whose trial the scheduler ended before its final report). A retry
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
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray import cloudpickle, tune
from ray.exceptions import RayTaskError
from ray.tune.stopper import Stopper

from analysis.rundir import Status
from sweeps.plan.groups import Config
from sweeps.plan.search import SEARCH_TRIAL
from sweeps.record.events import Configuration, Ended, Epoch, Listener, Started
from sweeps.record.protocol import EPOCH, attached_output, decode, divergence, scalars

_COLOURS = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours the traceback's first line


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
        if report.output:
            self._emit("output", key, report.output)
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
                status = Status.DIVERGED if why else _finished(position in attempt.finals)
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
        self.start(trial.trial_id, self._indices(trial.config))

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._failed(trial)  # the failure Tune retries is in the trial's log too
        self.start(trial.trial_id, self._indices(trial.config))  # from scratch

    def _indices(self, config: Mapping[str, Any]) -> list[int]:
        """The configurations a Tune trial trains: its group's, or for the search's k-th
        proposal the plan's k-th configuration, whose values it fills in here."""
        if "group" in config:
            return self.groups[config["group"]]
        index = self.groups[config[SEARCH_TRIAL]][0]
        proposed = {key: value for key, value in config.items() if key != SEARCH_TRIAL}
        self.configs[index] = {**self.configs[index], **proposed}
        return [index]

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        self.report(trial.trial_id, result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # Its trainer returned (its final report came), or the scheduler stopped it.
        self.end(trial.trial_id, None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._failed(trial)  # first: its rows' error names the log that holds it
        self.end(trial.trial_id, error_message(trial))

    def _failed(self, trial: Any) -> None:
        """What a trial that failed said last, and its traceback."""
        if trial.trial_id in self._attempts:
            notes, output = failure_output(trial)
            for note in notes:
                self._emit("note", trial.trial_id, note)
            self._emit("output", trial.trial_id, output)

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
    error = _pickled_error(trial)
    if error is not None:
        cause = getattr(error, "cause", None) or error
        return " ".join(f"{type(cause).__name__}: {cause}".split())
    lines = [line.strip() for line in _last_failure(trial).splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


def failure_output(trial: Any) -> tuple[list[str], str]:
    """What a failed trial said since its last report (sweeps.record.protocol
    attached_output): its notes, and its output followed by its traceback as Ray reports
    it (the worker's frames, Ray's first), without the terminal's colours."""
    error = _pickled_error(trial)
    notes, output = attached_output(error) if error is not None else ([], "")
    if error is None:
        traceback = _tidy(_last_failure(trial))
    elif isinstance(error, RayTaskError):  # the worker's traceback, as Ray formats it
        traceback = _tidy(str(error))
    else:  # a worker that died, say: what Ray says of it
        traceback = f"{type(error).__name__}: {error}"
    ending = "" if not output or output.endswith("\n") else "\n"
    return notes, f"{output}{ending}# --- the trial failed: ---\n{traceback}\n"


def _tidy(traceback: str) -> str:
    """Ray's traceback without its colours, and without the `^^^` marks it leaves where it
    drops a line of source: marks belong under a line of code."""
    kept: list[str] = []
    for line in _COLOURS.sub("", traceback).strip().splitlines():
        code_above = kept and not _marks(kept[-1]) and kept[-1].startswith("    ")
        if code_above or not _marks(line):
            kept.append(line)
    return "\n".join(kept)


def _marks(line: str) -> bool:
    return bool(line.strip()) and not line.strip().strip("^~")


def _pickled_error(trial: Any) -> BaseException | None:
    """The exception Tune has just saved on the driver, if it unpickles here."""
    if not trial.pickled_error_file or not os.path.exists(trial.pickled_error_file):
        return None
    try:
        with open(trial.pickled_error_file, "rb") as file:
            return cloudpickle.load(file)
    except Exception:  # an error that does not unpickle here: the text says it instead
        return None


def _last_failure(trial: Any) -> str:
    """The text of the trial's last failure in Tune's error file (one a failure)."""
    if not trial.error_file or not os.path.exists(trial.error_file):
        return ""
    text = Path(trial.error_file).read_text(errors="replace")
    return re.split(r"^Failure # \d+ .*$", text, flags=re.MULTILINE)[-1]


def _finished(reported: bool) -> Status:
    """How a configuration that neither failed nor diverged ended: its trainer returned,
    its final report the last thing it sent (however few epochs it chose to train), or
    Tune ended its trial before that report, which only a scheduler's STOP does (ASHA):
    our stopper stops single trials never, and a whole run's end (Ctrl-C, a write
    failure) completes no trial."""
    return Status.DONE if reported else Status.STOPPED


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
