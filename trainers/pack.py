"""A pack: several bundles (trainers.bundle) trained in one process, their epochs
interleaved by the one loop (trainers.train.train_bundles).

Separate processes on one GPU only time-slice it: their kernels never overlap. In a pack
each bundle queues its epoch on its own CUDA stream (as captured graphs where it can)
before any bundle's epoch is waited for, so the kernels of different bundles run side by
side. On the CPU there are no streams and the bundles take turns, epoch by epoch.

Before training, the pack is split into waves that fit: at most `MAX_BUNDLES` bundles
train at once (torch hands out streams from a pool of 32 and the GPU serves 8 queues,
CUDA_DEVICE_MAX_CONNECTIONS: more would share queues and wait on one another), and their
estimated memory (trainers.memory) within the trial's share of the GPU. A bundle that
alone does not fit is refused before it starts. A wave's bundles all capture their graphs
before any of them trains (a capture waits for the whole device) and live until the wave
ends (trainers.graphs: destroying a graph frees its stream's cuBLAS workspace).

A bundle that raises ends there, with its error; the others go on. A sticky CUDA error
(trainers.graphs.is_fatal) is the exception: the process's CUDA context is lost with it,
so the pack raises `PackLost` and its unfinished bundles end with that one reason, or
train again in a fresh process where Tune retries the trial.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from trainers.bundle import Bundle
from trainers.config import ConfigError, TrainConfig, checked_configs
from trainers.data import Dataset, Splits
from trainers.graphs import is_fatal
from trainers.memory import bundle_bytes, data_bytes
from trainers.train import Failed, train_bundles

MAX_BUNDLES = 8  # bundles training at once: the GPU's 8 hardware queues (see above)

Outcome = list[dict[str, Any]] | Exception  # a bundle's final metrics, or why it failed
# (the bundle's place in `groups`, each of its configurations' epoch metrics)
PackReport = Callable[[int, list[dict[str, Any]]], None]
PackEnded = Callable[[int, Outcome], None]  # (the bundle's place, how it ended)


class PackLost(RuntimeError):
    """A sticky CUDA error: every bundle of the pack that had not ended is lost with it."""


def train_pack(
    groups: Sequence[Sequence[Mapping[str, Any]]],
    dataset: Dataset | None = None,
    report: PackReport | None = None,
    ended: PackEnded | None = None,
    memory_limit: int | None = None,
) -> list[Outcome]:
    """Train each group of configurations as a bundle, all in this process; each one's
    final metrics (as `train_members` returns them) or the exception that ended it, in
    the order of `groups`. `report` is called after each bundle's every epoch, `ended`
    as soon as a bundle has finished or failed (the others may train on for long).
    `memory_limit`: the bytes the pack may hold on its device (None: no bound, the CPU)."""
    outcomes: list[Outcome | None] = [None] * len(groups)

    def end(index: int, outcome: Outcome) -> None:
        outcomes[index] = outcome
        if ended is not None:  # its own errors are the caller's, not the bundle's
            ended(index, outcome)

    def fail(index: int, error: Exception) -> None:
        """A bundle's ordinary error ends it alone; a fatal one ends the pack."""
        if is_fatal(error):
            raise PackLost(
                "the CUDA context is lost, and every unfinished bundle of this pack with it: "
                f"{type(error).__name__}: {' '.join(str(error).split())}"
            ) from error
        end(index, error)

    sizes: dict[int, int] = {}
    for index, configs in enumerate(groups):
        try:
            cfgs, dataset = checked_configs(configs, dataset)
            sizes[index] = _estimate(cfgs, dataset)
        except Exception as error:
            end(index, error)
    shared_bytes = 0 if dataset is None else _data_estimate(dataset)
    for wave in waves(sizes, shared_bytes, memory_limit, end):
        _train_wave(wave, groups, dataset, report, end, fail)
        # The wave's graphs are destroyed here, before the next wave captures: torch hands
        # streams out from a pool, and a graph destroyed later could free the cuBLAS
        # workspace of a stream a new bundle has been given since.
        gc.collect()
    return [_ended(outcome) for outcome in outcomes]


def waves(
    sizes: Mapping[int, int],
    shared_bytes: int,
    limit: int | None,
    refuse: Callable[[int, Exception], None],
) -> list[list[int]]:
    """The bundles (by place, each with its estimated bytes) in waves of at most
    `MAX_BUNDLES` whose estimates, with the `shared_bytes` of data, fit within `limit`;
    a bundle that fits in no wave is refused with a ConfigError naming both figures."""
    found: list[list[int]] = []
    load = 0
    for index, size in sizes.items():
        if limit is not None and shared_bytes + size > limit:
            refuse(index, ConfigError(
                f"this bundle needs about {_gib(shared_bytes + size)} of GPU memory with its "
                f"data, the trial has {_gib(limit)}: give it a larger share of a GPU "
                "(--gpus-per-trial) or lower max_bundle"))  # fmt: skip
            continue
        over = limit is not None and shared_bytes + load + size > limit
        if not found or len(found[-1]) >= MAX_BUNDLES or over:
            found.append([])
            load = 0
        found[-1].append(index)
        load += size
    return found


def _train_wave(
    wave: list[int],
    groups: Sequence[Sequence[Mapping[str, Any]]],
    dataset: Dataset | None,
    report: PackReport | None,
    end: Callable[[int, Outcome], None],
    fail: Failed,
) -> None:
    """The wave's bundles through the one loop; every one of them lives until it returns."""
    shared_splits: dict[Any, Splits] = {}
    bundles: list[tuple[int, Bundle]] = []
    for index in wave:
        try:
            bundles.append((index, Bundle.from_configs(groups[index], dataset, shared_splits)))
        except Exception as error:
            fail(index, error)
    train_bundles(bundles, report, end, fail)


def _estimate(cfgs: list[TrainConfig], dataset: Dataset) -> int:
    train_count = len(dataset.train_labels)
    eval_count = math.ceil(train_count * cfgs[0].validation_split) + len(dataset.test_labels)
    return bundle_bytes(cfgs, dataset.image_shape, train_count, eval_count)


def _data_estimate(dataset: Dataset) -> int:
    return data_bytes(dataset.image_shape, len(dataset.train_labels) + len(dataset.test_labels))


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


def _ended(outcome: Outcome | None) -> Outcome:
    if outcome is None:  # every bundle runs until it finishes or fails
        raise RuntimeError("a bundle of the pack neither finished nor failed")
    return outcome
