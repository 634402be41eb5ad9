"""A run's record as events, configuration by configuration: one started, each epoch of
it, its end. sweeps.record.fanout makes them from Tune's trial callbacks, with each
configuration's id and status computed once; listeners (the Parquet writer, the progress
display, the loggers) take them and know nothing of Tune.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from analysis.rundir import Status
from sweeps.record.protocol import Scalar


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

    def tick(self) -> None:
        """Called often while the run goes on: a display redraws, a log says it is alive."""

    def finished(self) -> None:
        """The run has ended, or was interrupted."""
