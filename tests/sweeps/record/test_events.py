"""A run's events: what a configuration's bundle is, and what its last figures are."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from analysis.rundir import Status
from sweeps.record.events import Configuration, Ended

STARTED_AT = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(("size", "bundle_id"), [(1, None), (2, "g7"), (8, "g7")])
def test_a_configuration_has_a_bundle_only_when_its_trial_trains_several(
    size: int, bundle_id: str | None
) -> None:
    configuration = Configuration("g7-0" if size > 1 else "g7", 3, {"x": 1}, "g7", 0, size)
    assert configuration.bundle_id == bundle_id


def ended(epochs: list[dict[str, Any]], final: dict[str, Any]) -> Ended:
    configuration = Configuration("t1", 0, {}, "t1", 0, 1)
    return Ended(configuration, Status.DONE, None, epochs, final, STARTED_AT)


def test_the_last_figures_are_the_last_epochs_updated_by_the_final_report() -> None:
    epochs = [{"epoch": 1, "val_accuracy": 0.5, "loss": 2.0},
              {"epoch": 2, "val_accuracy": 0.6, "loss": 1.0}]  # fmt: skip
    last = ended(epochs, {"val_accuracy": 0.65, "test_accuracy": 0.7}).last
    assert last == {"epoch": 2, "val_accuracy": 0.65, "loss": 1.0, "test_accuracy": 0.7}


def test_stopped_early_the_last_figures_are_the_last_epochs() -> None:
    """ASHA stops a trial after an epoch: no final report comes."""
    epochs = [{"epoch": 1, "val_accuracy": 0.5}, {"epoch": 2, "val_accuracy": 0.4}]
    assert ended(epochs, {}).last == {"epoch": 2, "val_accuracy": 0.4}


def test_with_no_epoch_the_last_figures_are_the_final_reports() -> None:
    assert ended([], {}).last == {}
    assert ended([], {"test_accuracy": 0.1}).last == {"test_accuracy": 0.1}
