"""Which configurations of a sweep train together, as one fused bundle per Tune trial.

Configurations fuse when `trainers.fused.fusion_key` says they can (MLPs agreeing on
everything but activation, lr, loss and initializer, the seed included, so they see the
same batches). Each group is cut into bundles of at most `max_bundle`; a bundle of one
is an ordinary trial. On the CPU fusion pays only from batch 32 up (BENCHMARKS.md), so
smaller batches run unfused there.
"""

from __future__ import annotations

import math
from typing import Any

from sweeps.spec import DEFAULT_TRAINER, SweepSpec, expand

MAX_BUNDLE = 8  # the largest bundle `max_bundle: auto` makes
CPU_MIN_BATCH = 32  # below this a fused CPU step is no faster than K separate ones

Bundle = list[dict[str, Any]]


def fusable_spec(spec: SweepSpec) -> bool:
    """Whether the spec's trials may be bundled at all: the built-in trainer over a fixed
    grid (sampled values are drawn by Tune, and ASHA stops trials one by one)."""
    return (
        spec.fuse == "auto"
        and spec.trainer == DEFAULT_TRAINER
        and not spec.sample
        and spec.scheduler == "fifo"
    )


def auto_bundle_size(spec: SweepSpec, slots: int, on_gpu: bool) -> int:
    """The bundle size that keeps `slots` trials busy: the largest group split evenly over
    the slots, at most MAX_BUNDLE."""
    groups = _groups(spec, on_gpu)
    largest = max((len(group) for group in groups), default=1)
    return max(1, min(MAX_BUNDLE, math.ceil(largest / max(slots, 1))))


def plan_bundles(spec: SweepSpec, on_gpu: bool) -> list[Bundle] | None:
    """The spec's configurations as bundles, in grid order; None when nothing fuses (the
    sweep then runs as plain trials). `spec.max_bundle` must be resolved to a number."""
    if not fusable_spec(spec):
        return None
    limit = spec.max_bundle
    if not isinstance(limit, int):
        raise ValueError(f"max_bundle must be resolved before planning, got {limit!r}")
    bundles: list[Bundle] = []
    for group in _groups(spec, on_gpu):
        # As even as can be: 9 at most 8 a bundle are 5 + 4, not 8 + 1.
        count = math.ceil(len(group) / limit)
        size, larger = divmod(len(group), count)
        start = 0
        for index in range(count):
            stop = start + size + (index < larger)
            bundles.append(group[start:stop])
            start = stop
    if all(len(bundle) == 1 for bundle in bundles):
        return None
    return bundles


def _groups(spec: SweepSpec, on_gpu: bool) -> list[Bundle]:
    """The configurations that may share a bundle, grouped, in order of first appearance;
    a configuration that fuses with nothing is a group of its own."""
    from trainers import TrainConfig
    from trainers.fused import fusion_key

    groups: dict[Any, Bundle] = {}
    for index, config in enumerate(expand(spec)):
        cfg = TrainConfig.from_dict(config)
        key = fusion_key(cfg)
        if key is None or (not on_gpu and cfg.batch_size < CPU_MIN_BATCH):
            key = ("alone", index)
        groups.setdefault(key, []).append(config)
    return list(groups.values())
