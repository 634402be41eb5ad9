"""A pack: several bundles (trainers.train.Bundle) trained in one process, their epochs
interleaved.

Separate processes on one GPU only time-slice it: their kernels never overlap. In a pack
each bundle queues its epoch on its own CUDA stream (as captured graphs where it can)
before any bundle's epoch is waited for, so the kernels of different bundles run side by
side. On the CPU there are no streams and the bundles take turns, epoch by epoch.

A bundle that raises ends there, with its error; the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from trainers.data import Dataset, Splits
from trainers.train import Bundle

Outcome = list[dict[str, Any]] | Exception  # a bundle's final metrics, or why it failed
# (the bundle's place in `groups`, each of its configurations' epoch metrics)
PackReport = Callable[[int, list[dict[str, Any]]], None]
PackEnded = Callable[[int, Outcome], None]  # (the bundle's place, how it ended)


def train_pack(
    groups: Sequence[Sequence[Mapping[str, Any]]],
    dataset: Dataset | None = None,
    report: PackReport | None = None,
    ended: PackEnded | None = None,
) -> list[Outcome]:
    """Train each group of configurations as a bundle, all in this process; each one's
    final metrics (as `train_members` returns them) or the exception that ended it, in
    the order of `groups`. `report` is called after each bundle's every epoch, `ended`
    as soon as a bundle has finished or failed (the others may train on for long)."""
    outcomes: list[Outcome | None] = [None] * len(groups)

    def end(index: int, outcome: Outcome) -> None:
        outcomes[index] = outcome
        if ended is not None:  # its own errors are the caller's, not the bundle's
            ended(index, outcome)

    shared_splits: dict[Any, Splits] = {}
    running: list[tuple[int, Bundle]] = []
    for index, configs in enumerate(groups):
        try:
            running.append((index, Bundle(configs, dataset, shared_splits)))
        except Exception as error:
            end(index, error)
    while running:
        launched = []
        for index, bundle in running:
            try:
                bundle.launch_epoch()
                launched.append((index, bundle))
            except Exception as error:
                end(index, error)
        for index, bundle in launched:
            try:
                metrics = bundle.collect_epoch()
                final = None if bundle.epochs_left else bundle.finish()
            except Exception as error:
                end(index, error)
                continue
            if report is not None:  # as `ended`: the caller's errors
                report(index, metrics)
            if final is not None:
                end(index, final)
        running = [(index, bundle) for index, bundle in launched if outcomes[index] is None]
    return [_ended(outcome) for outcome in outcomes]


def _ended(outcome: Outcome | None) -> Outcome:
    if outcome is None:  # every bundle runs until it finishes or fails
        raise RuntimeError("a bundle of the pack neither finished nor failed")
    return outcome
