"""The run plan: every configuration of a sweep and which of them train together, decided once.

A configuration's place in `RunPlan.configs` is its identity (`config_index` in the
Parquet rows): `resume` compares it with the rows written to know what is left. Sampled
parameters are drawn here, seeded by the spec, so the same spec always gives the same list.

Each Tune trial trains one group of K >= 1 configurations. Configurations fuse into one
group when `trainers.config.fusion_key` says they can (MLPs agreeing on everything but
activation, lr, loss, initializer and seed, so `repeats` fuse too); a group is at most
`max_bundle` large. `max_bundle: auto` on the CPU splits the fusable configurations over
the trial slots, at most `MAX_BUNDLE` a group, and leaves batches below `CPU_MIN_BATCH`
unfused (BENCHMARKS.md). On a GPU one process should own the device rather than several
time-slicing it, so a group takes every fusable configuration that fits
`GPU_BUNDLE_BYTES`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections.abc import Iterable
from typing import Any

from sweeps.plan.search import axes, draw, examples, template
from sweeps.plan.spec import DEFAULT_TRAINER, SweepSpec

MAX_BUNDLE = 8  # the largest group `max_bundle: auto` makes on the CPU
CPU_MIN_BATCH = 32  # below this a fused CPU step is no faster than K separate ones (Xeon)
GPU_BUNDLE_BYTES = 2 * 2**30  # the training state of one GPU group, at most (estimated)
TRAIN_IMAGES, TEST_IMAGES = 60_000, 10_000  # the largest splits we train on (MNIST)

Config = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class RunPlan:
    spec: SweepSpec  # resolved: numbers for `resources.gpus` and `max_bundle`
    configs: list[Config]  # every configuration of the run, in grid order
    groups: list[list[int]]  # what each Tune trial trains: indices into `configs`
    sizes: list[list[int]]  # each trial's bundles, as sizes in `groups` order (a pack: 2+)
    slots: int = 1  # trials the cluster runs at once: how many packs to make
    # `resume` with checkpoints: a configuration's index -> the configuration id whose
    # checkpoints/<id>/last.pt it goes on from (sweeps.runs.checkpoints).
    resume_from: dict[int, str] = dataclasses.field(default_factory=dict)

    @property
    def shapes(self) -> list[Config]:
        """Configurations with every key the run's configurations may have, and each kind
        of value (the results' columns are made from them)."""
        return shapes(self.spec, self.configs)

    def members(self, group: int) -> list[Config]:
        return [self.configs[index] for index in self.groups[group]]

    def bundles(self, group: int) -> list[list[int]]:
        """The bundles a trial trains, each as indices into `configs`."""
        found, start = [], 0
        for size in self.sizes[group]:
            found.append(self.groups[group][start : start + size])
            start += size
        return found

    @property
    def fused(self) -> list[list[int]]:
        """The bundles of more than one configuration."""
        every = (bundle for group in range(len(self.groups)) for bundle in self.bundles(group))
        return [bundle for bundle in every if len(bundle) > 1]

    @property
    def packed(self) -> list[int]:
        """The trials that train more than one bundle."""
        return [group for group, sizes in enumerate(self.sizes) if len(sizes) > 1]

    @property
    def pending(self) -> int:
        """Configurations the groups train."""
        return sum(len(group) for group in self.groups)

    @property
    def epochs(self) -> list[int | None]:
        """Each configuration's planned epochs: its `epochs`, else the built-in trainer's
        default; None where a trainer of the user's leaves them unsaid."""
        default = None
        if self.spec.trainer == DEFAULT_TRAINER:
            from trainers import DEFAULTS

            default = int(DEFAULTS["epochs"])
        planned = [config.get("epochs", default) for config in self.configs]
        return [epochs if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0
                else None for epochs in planned]  # fmt: skip

    def without(self, done: Iterable[int]) -> RunPlan:
        """The plan of what is left once the configurations `done` have results: the rest
        regrouped by the same rules (and the same `max_bundle`)."""
        left = sorted(set(range(len(self.configs))) - set(done))
        return _assemble(self.spec, self.configs, left, self.slots)

    def repacked(self, slots: int) -> RunPlan:
        """The same bundles packed for a cluster that runs `slots` trials at once."""
        return _assemble(self.spec, self.configs, sorted(itertools.chain(*self.groups)), slots)


def configurations(spec: SweepSpec) -> list[Config]:
    """The grid (and repeats) `num_samples` times, each sampled parameter drawn afresh for
    every configuration from a generator seeded by the spec's seed; `search: random`
    draws every swept key instead of taking the grid's product; `search: tpe` leaves
    them to the search (sweeps.plan.search), which proposes them as the run goes."""
    if spec.search == "tpe":
        return [template(spec) for _ in range(spec.num_samples)]
    rng = random.Random(int(spec.base.get("seed", 0)))
    seeds = [{"seed": seed} for seed in spec.seeds] if spec.repeats > 1 else [{}]
    if spec.search == "random":
        every = axes(spec)
        drawn = [draw(every, rng) for _ in range(spec.num_samples)]
        return [{**template(spec), **values, **seed} for values in drawn for seed in seeds]
    grid: dict[str, list[Any]] = dict(spec.grid)
    if spec.repeats > 1:
        grid["seed"] = spec.seeds
    sampled = [axis for axis in axes(spec) if axis.key in spec.sample]
    configs = []
    for _ in range(spec.num_samples):
        for values in itertools.product(*grid.values()):
            point = dict(zip(grid, values, strict=True))
            configs.append({**template(spec), **point, **draw(sampled, rng, point)})
    return configs


def shapes(spec: SweepSpec, configs: list[Config]) -> list[Config]:
    """`configs`, or for a TPE search (whose configurations are known only as it proposes
    them) an example of each value it may propose: what is checked before a run."""
    return examples(spec) if spec.search == "tpe" else configs


def fusable_spec(spec: SweepSpec) -> bool:
    """Whether the spec's configurations may be grouped at all: the built-in trainer, FIFO
    scheduling (ASHA stops trials one by one), no checkpoints (a configuration's own)."""
    return (spec.fuse == "auto" and spec.trainer == DEFAULT_TRAINER and spec.scheduler == "fifo"
            and spec.search != "tpe" and spec.checkpoint == "off")  # fmt: skip


def plan_run(spec: SweepSpec, configs: list[Config], slots: int) -> RunPlan:
    """The plan for a spec whose `resources.gpus` is resolved to a number; `max_bundle:
    auto` becomes the group size that keeps `slots` trials busy."""
    if spec.resources.gpus == "auto":
        raise ValueError("resources.gpus must be resolved to a number before planning")
    if spec.max_bundle == "auto":
        size = 1
        if fusable_spec(spec):
            sets = _fusable_sets(spec, configs, range(len(configs)))
            largest = max(sets, key=len, default=[0])
            if float(spec.resources.gpus) > 0:
                fits = GPU_BUNDLE_BYTES // member_bytes(configs[largest[0]])
                size = max(1, min(len(largest), fits))
            else:
                size = max(1, min(MAX_BUNDLE, math.ceil(len(largest) / max(slots, 1))))
        spec = spec.model_copy(update={"max_bundle": size})
    return _assemble(spec, configs, range(len(configs)), slots)


def packs_apply(spec: SweepSpec) -> bool:
    """Whether the spec's bundles share trials: `pack: on`, or `auto` on a GPU; only for the
    built-in trainer and FIFO (ASHA stops trials, not bundles)."""
    if spec.trainer != DEFAULT_TRAINER or spec.scheduler != "fifo" or spec.pack == "off":
        return False
    if spec.search == "tpe":  # a trial a configuration, proposed as the run goes
        return False
    if spec.checkpoint != "off":  # a checkpoint a trial: one configuration each
        return False
    gpus = spec.resources.gpus
    return spec.pack == "on" or gpus == "auto" or float(gpus) > 0


def _assemble(
    spec: SweepSpec, configs: list[Config], indices: Iterable[int], slots: int
) -> RunPlan:
    """The configurations `indices` grouped into bundles, the bundles packed into `slots`
    trials where packs apply, else a trial each."""
    bundles = group_configs(spec, configs, indices)
    packs = pack_bundles(bundles, configs, slots) if packs_apply(spec) else [[b] for b in bundles]
    groups = [list(itertools.chain(*pack)) for pack in packs]
    return RunPlan(spec, configs, groups, [[len(b) for b in pack] for pack in packs], slots)


def pack_bundles(
    bundles: list[list[int]], configs: list[Config], slots: int
) -> list[list[list[int]]]:
    """The bundles shared out over `slots` packs (fewer when there are fewer bundles; more
    when a pack would hold over trainers.pack.MAX_BUNDLES), each pack's work about equal:
    largest first to the least loaded, work being the steps a bundle takes (epochs x
    batches an epoch). A pack's bundles stay in grid order."""
    from trainers.pack import MAX_BUNDLES

    count = max(slots, math.ceil(len(bundles) / MAX_BUNDLES))
    packs: list[list[list[int]]] = [[] for _ in range(max(1, min(count, len(bundles))))]
    loads = [0] * len(packs)
    for bundle in sorted(bundles, key=lambda b: -_steps(configs[b[0]])):
        lightest = loads.index(min(loads))
        packs[lightest].append(bundle)
        loads[lightest] += _steps(configs[bundle[0]])
    ordered = [sorted(pack) for pack in packs if pack]
    return sorted(ordered, key=lambda pack: pack[0])


def _steps(config: Config) -> int:
    from trainers import TrainConfig

    cfg = TrainConfig.from_dict(config)
    return cfg.epochs * math.ceil(TRAIN_IMAGES / cfg.batch_size)


def member_bytes(config: Config) -> int:
    """What one member of a fused group holds on its GPU, estimated from above for the
    largest images we train on (trainers.memory says what it counts)."""
    from trainers import TrainConfig
    from trainers.memory import member_bytes as estimate

    return estimate(TrainConfig.from_dict(config), (28, 28), TRAIN_IMAGES, TEST_IMAGES)


def group_configs(
    spec: SweepSpec, configs: list[Config], indices: Iterable[int]
) -> list[list[int]]:
    """The configurations `indices` as groups of at most `spec.max_bundle`, in grid order."""
    limit = spec.max_bundle
    if not isinstance(limit, int):
        raise ValueError(f"max_bundle must be resolved before grouping, got {limit!r}")
    groups: list[list[int]] = []
    for fusable in _fusable_sets(spec, configs, indices):
        # As even as can be: 9 at most 8 a group are 5 + 4, not 8 + 1.
        count = math.ceil(len(fusable) / limit)
        size, larger = divmod(len(fusable), count)
        start = 0
        for index in range(count):
            stop = start + size + (index < larger)
            groups.append(fusable[start:stop])
            start = stop
    return groups


def _fusable_sets(
    spec: SweepSpec, configs: list[Config], indices: Iterable[int]
) -> list[list[int]]:
    """The configurations that may share a group, in order of first appearance; one that
    fuses with nothing is a set of its own."""
    if not fusable_spec(spec):
        return [[index] for index in indices]
    from trainers import TrainConfig
    from trainers.config import fusion_key

    on_gpu = float(spec.resources.gpus) > 0
    sets: dict[Any, list[int]] = {}
    for index in indices:
        cfg = TrainConfig.from_dict(configs[index])
        key = fusion_key(cfg)
        if key is None or (not on_gpu and cfg.batch_size < CPU_MIN_BATCH):
            key = ("alone", index)
        sets.setdefault(key, []).append(index)
    return list(sets.values())
