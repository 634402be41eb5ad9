"""Each configuration's curves, for the listeners that draw them: TensorBoard, W&B, MLflow.

A `CurveListener` gets a configuration's start, its numbers by epoch under their Parquet
column names (`loss` is `train_loss`; a metric named like a config key or a column of
ours is `metric_<name>`), then at its end the final numbers the epochs did not have
(test_loss, test_accuracy). A listener that fails stops, with one warning, and the run
goes on: the Parquet rows are the record, a curve only a view of it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from analysis.rundir import Status
from sweeps.record.columns import EPOCH_NAMES, config_column, metric_column
from sweeps.record.events import Configuration, Ended, Epoch, Listener, Started
from sweeps.record.protocol import scalars

# Final values that are bookkeeping, not curves.
_NOT_CURVES = {"epoch", "epochs_completed", "params", "threads"}

log = logging.getLogger(__name__)


def curves(metrics: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, float]:
    """A report's numbers under their Parquet column names, bookkeeping left out."""
    keys = {config_column(key) for key in config}
    named = {}
    for name, value in scalars(metrics).items():
        if isinstance(value, bool) or not isinstance(value, int | float) or name in _NOT_CURVES:
            continue
        named[EPOCH_NAMES.get(name) or metric_column(name, keys)] = value
    return named


class CurveListener(Listener):
    """The events as curves: `begin`, `log` by epoch, `close`; subclasses draw them."""

    name = "curves"  # what the warning calls it when it stops

    def __init__(self) -> None:
        self.stopped = False
        self._steps: dict[str, int] = {}  # the last epoch each configuration reported
        self._tags: dict[str, set[str]] = {}  # what each one's epochs reported

    def begin(self, configuration: Configuration) -> None:
        """A configuration starts (again, on a retry: its last attempt's curves go)."""

    def log(self, configuration: Configuration, step: int, values: dict[str, float]) -> None:
        """Numbers of a configuration at epoch `step`."""

    def close(self, configuration: Configuration, failed: bool) -> None:
        """A configuration ended."""

    def abandon(self) -> None:
        """Let go of whatever is open: the listener stops after a failure."""

    def started(self, event: Started) -> None:
        configuration = event.configuration
        self._steps[configuration.id], self._tags[configuration.id] = 0, set()
        self._guard(self.begin, configuration)

    def epoch(self, event: Epoch) -> None:
        configuration, metrics = event.configuration, event.metrics
        step = metrics.get("epoch")
        step = step if isinstance(step, int) else self._steps.get(configuration.id, 0) + 1
        self._steps[configuration.id] = step
        named = curves(metrics, configuration.config)
        self._tags.setdefault(configuration.id, set()).update(named)
        if named:
            self._guard(self.log, configuration, step, named)

    def ended(self, name: str, events: list[Ended]) -> None:
        for event in events:
            configuration = event.configuration
            tags = self._tags.pop(configuration.id, set())
            step = self._steps.pop(configuration.id, 0)
            final = {key: value for key, value in curves(event.final, configuration.config).items()
                     if key not in tags}  # fmt: skip
            if final:
                self._guard(self.log, configuration, step, final)
            self._guard(self.close, configuration, event.status == Status.FAILED)

    def _guard(self, method: Any, *args: Any) -> None:
        if self.stopped:
            return
        try:
            method(*args)
        except Exception as error:
            self.stopped = True
            self.abandon()
            reason = " ".join(f"{type(error).__name__}: {error}".split())
            log.warning("%s stopped logging: %s", self.name, reason)
