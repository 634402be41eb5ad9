"""A run's record as events, configuration by configuration: one started, each epoch of
it, its end. sweeps.record.fanout makes them from Tune's trial callbacks, with each
configuration's id and status computed once; listeners (the Parquet writer, the progress
display, the loggers, `MetricCheck` here) take them and know nothing of Tune.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from analysis.rundir import Status
from sweeps.record.protocol import Scalar, scalars


@dataclasses.dataclass(frozen=True)
class Configuration:
    """One configuration of the plan, as a Tune trial trains it."""

    id: str  # its `trial_id` in the rows
    index: int  # its place in the plan: `config_index`
    config: dict[str, Any]
    group: str  # the Tune trial that trains it (its `bundle_id` when that trains several)
    position: int  # among the group's configurations
    size: int  # how many configurations the group trains

    @property
    def bundle_id(self) -> str | None:
        return self.group if self.size > 1 else None


@dataclasses.dataclass(frozen=True)
class Started:
    configuration: Configuration
    retry: bool  # an attempt before this one failed (and is forgotten)


@dataclasses.dataclass(frozen=True)
class Epoch:
    configuration: Configuration
    metrics: dict[str, Scalar]  # as the trainer named them (`loss`, not `train_loss`)


@dataclasses.dataclass(frozen=True)
class Ended:
    configuration: Configuration
    status: Status
    why: str | None  # the error, or how it diverged
    epochs: list[dict[str, Scalar]]
    final: dict[str, Any]  # the trainer's final report, non-scalars (confusion) included
    started_at: dt.datetime  # when its last attempt started

    @property
    def last(self) -> dict[str, Any]:
        """The last epoch's metrics updated by the final ones (stopped early: the epoch's)."""
        return {**(self.epochs[-1] if self.epochs else {}), **self.final}


class Listener:
    """What a run's record tells a listener; each method does nothing unless overridden."""

    def setup(self) -> None:
        """The run starts (Tune calls it again after a driver restart)."""

    def started(self, event: Started) -> None:
        """A configuration starts, or starts over."""

    def epoch(self, event: Epoch) -> None:
        """A configuration reported an epoch."""

    def ended(self, name: str, events: list[Ended]) -> None:
        """Configurations that ended together: a Tune trial's (`name` is its id), or one
        bundle of a pack (`<trial id>-<first position>`)."""

    def note(self, group: str, text: str) -> None:
        """A warning the trainers logged (a CUDA graph capture that fell back, say)."""

    def output(self, group: str, text: str) -> None:
        """More of what Tune trial `group` printed (its traceback, when it failed)."""

    def tick(self) -> None:
        """Called often while the run goes on: a display redraws, a log says it is alive."""

    def finished(self) -> None:
        """The run has ended, or was interrupted."""


class MetricCheck(Listener):
    """Whether each configuration that ended reported the spec's metric (in its final
    report, or its last epoch's when it was stopped early), and what those without it
    reported instead: a trainer's `val_acc` for the spec's `val_accuracy` would otherwise
    end every trial "done" with no metric at all. A failed configuration is not counted:
    its error says why it has none."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.reported = 0  # configurations that ended with the metric
        self.missing: dict[tuple[str, ...], list[str]] = {}  # the keys they had -> their ids

    def ended(self, name: str, events: list[Ended]) -> None:
        for event in events:
            if event.status == Status.FAILED:
                continue
            keys = scalars(event.last)
            if self.metric in keys:
                self.reported += 1
            else:
                self.missing.setdefault(tuple(sorted(keys)), []).append(event.configuration.id)

    def warnings(self) -> list[str]:
        """A line for each set of keys that configurations without the metric reported:
        one line for a thousand alike."""
        lines = []
        for keys, ended in self.missing.items():
            ids = sorted(ended)  # in the plan's order, however they ended
            who = f"trial {ids[0]}" if len(ids) == 1 else f"{len(ids)} trials ({_some(ids)})"
            lines.append(f"{who} ended without the metric {self.metric!r}; reported: {_keys(keys)}")
        return lines

    def error(self, note: str = "") -> str:
        """That no configuration reported the metric, and every key they did report."""
        keys = sorted({key for keys in self.missing for key in keys})
        return (f"no trial reported the metric {self.metric!r} that the spec scores trials"
                f" by{note}; they reported: {_keys(keys)}")  # fmt: skip


def _some(ids: list[str], shown: int = 3) -> str:
    more = f", +{len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more


def _keys(keys: tuple[str, ...] | list[str]) -> str:
    return ", ".join(keys) if keys else "nothing"
