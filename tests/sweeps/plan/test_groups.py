"""The run plan: which configurations a spec stands for, and which train together."""

from __future__ import annotations

from typing import Any

import pytest

from sweeps.plan.groups import (
    GPU_BUNDLE_BYTES,
    MAX_BUNDLE,
    configurations,
    member_bytes,
    pack_bundles,
    plan_run,
)
from sweeps.plan.spec import load_spec, parse_spec, preset_names, read_yaml
from trainers import TrainConfig
from trainers.config import check_fusable
from trainers.pack import MAX_BUNDLES

ACTIVATIONS = ["sigmoid", "relu", "tanh", "leaky_relu", "selu", "elu", "exponential", "linear"]


def spec(**fields: Any):
    data = {"name": "plan", "dataset": "mnist", "max_bundle": 8, "resources": {"gpus": 0},
            "base": {"batch_size": 64, "epochs": 1}, **fields}  # fmt: skip
    return parse_spec(data, "test")


def plan_bundles(spec: Any, on_gpu: bool) -> list[list[dict]] | None:
    """The groups of configurations as a run on (or off) a GPU plans them; None when every
    group is one configuration (nothing fuses)."""
    resources = spec.resources.model_copy(update={"gpus": 0.25 if on_gpu else 0.0})
    spec = spec.model_copy(update={"resources": resources})
    plan = plan_run(spec, configurations(spec), slots=1)
    groups = [[plan.configs[index] for index in bundle]
              for trial in range(len(plan.groups)) for bundle in plan.bundles(trial)]  # fmt: skip
    return None if all(len(group) == 1 for group in groups) else groups


def auto_bundle_size(spec: Any, slots: int) -> int:
    return plan_run(spec, configurations(spec), slots).spec.max_bundle


def shapes(bundles: list[list[dict]] | None) -> list[int] | None:
    return None if bundles is None else [len(bundle) for bundle in bundles]


def test_an_activation_grid_is_one_bundle_in_grid_order() -> None:
    (bundle,) = plan_bundles(spec(grid={"activation": ACTIVATIONS}), on_gpu=False)
    assert [config["activation"] for config in bundle] == ACTIVATIONS


def test_repeats_fuse_but_batch_sizes_do_not() -> None:
    planned = plan_bundles(
        spec(
            base={"epochs": 1},
            grid={"activation": ["relu", "tanh"], "batch_size": [32, 64]},
            repeats=2,
        ),
        on_gpu=False,
    )
    assert shapes(planned) == [4, 4]
    for bundle in planned:
        assert len({c["batch_size"] for c in bundle}) == 1
        assert {c["seed"] for c in bundle} == {0, 1}


def test_bundles_are_split_evenly_below_the_limit() -> None:
    grid = {"activation": ACTIVATIONS, "lr": [0.01, 0.1]}  # 16 configurations
    assert shapes(plan_bundles(spec(grid=grid, max_bundle=5), on_gpu=False)) == [4, 4, 4, 4]
    assert shapes(plan_bundles(spec(grid=grid, max_bundle=3), on_gpu=False)) == [3] * 4 + [2] * 2


def test_small_batches_fuse_on_the_gpu_only() -> None:
    small = spec(base={"batch_size": 16, "epochs": 1}, grid={"activation": ACTIVATIONS})
    assert plan_bundles(small, on_gpu=False) is None  # every bundle would be one: plain trials
    assert shapes(plan_bundles(small, on_gpu=True)) == [8]


@pytest.mark.parametrize(
    "fields",
    [
        {"fuse": "off"},
        {"max_bundle": 1},
        {"scheduler": "asha"},
        {"trainer": "user_trainers:steady", "dataset": None},
        {"base": {"model": "cnn1", "epochs": 1}},
    ],
)
def test_nothing_fuses_where_it_would_not_be_correct(fields: dict) -> None:
    assert plan_bundles(spec(grid={"activation": ["relu", "tanh"]}, **fields), False) is None


def test_a_batch_size_grid_does_not_fuse() -> None:
    assert plan_bundles(load_spec("report-a-batch-size").model_copy(
        update={"max_bundle": 8}), on_gpu=False) is None  # fmt: skip


def test_on_a_gpu_auto_takes_every_fusable_configuration_that_fits() -> None:
    grid = spec(grid={"activation": ACTIVATIONS, "lr": [0.1, 0.2, 0.3, 0.4]}, repeats=2,
                max_bundle="auto", resources={"gpus": 0.25})  # fmt: skip
    assert auto_bundle_size(grid, slots=4) == 64  # not split over the GPU's 4 slots
    wide = grid.model_copy(update={"base": {"hidden": [4096, 4096], "epochs": 1}})
    fits = GPU_BUNDLE_BYTES // member_bytes({"hidden": [4096, 4096]})
    assert 1 <= fits < 64
    assert auto_bundle_size(wide, slots=4) == fits
    # Model A at batch 64: under 10 MB a member (the epoch's logits twice, 4.8 MB, are most
    # of it), so the bound is far above any grid here.
    assert 5_000_000 < member_bytes({"hidden": [64]}) < 10_000_000


def test_auto_size_keeps_every_slot_busy() -> None:
    grid = spec(grid={"activation": ACTIVATIONS}, max_bundle="auto", resources={"gpus": 0})
    assert auto_bundle_size(grid, slots=2) == 4
    assert auto_bundle_size(grid, slots=3) == 3
    assert auto_bundle_size(grid, slots=16) == 1
    assert auto_bundle_size(grid, slots=1) == MAX_BUNDLE
    assert auto_bundle_size(grid, slots=0) == MAX_BUNDLE  # an empty cluster


def test_sampled_values_are_drawn_once_from_the_spec_seed_and_fuse() -> None:
    sampled = spec(sample={"lr": {"loguniform": [0.001, 0.1]},
                           "activation": {"choice": ["relu", "tanh"]}}, num_samples=6)  # fmt: skip
    configs = configurations(sampled)
    assert configs == configurations(sampled)  # the same spec, the same draws
    assert len({config["lr"] for config in configs}) == 6
    assert all(0.001 <= config["lr"] <= 0.1 for config in configs)
    assert {config["activation"] for config in configs} <= {"relu", "tanh"}
    reseeded = configurations(sampled.model_copy(update={"base": {**sampled.base, "seed": 1}}))
    assert [c["lr"] for c in reseeded] != [c["lr"] for c in configs]
    assert shapes(plan_bundles(sampled, on_gpu=False)) == [6]  # lr and activation may differ


def test_what_is_left_is_regrouped_by_the_same_rules() -> None:
    grid = spec(grid={"activation": ACTIVATIONS}, max_bundle=3)
    plan = plan_run(grid, configurations(grid), slots=1)
    assert plan.groups == [[0, 1, 2], [3, 4, 5], [6, 7]]
    left = plan.without({0, 1, 2, 4})
    assert left.groups == [[3, 5], [6, 7]] and left.pending == 4  # evenly, as a run would
    assert left.without(range(8)).groups == []


def test_yaml_off_means_off() -> None:
    assert parse_spec(read_yaml("name: x\nfuse: off\n"), "x").fuse == "off"


# The presets whose grids vary only what may differ within a bundle (EXPERIMENTS.md).
FUSING_PRESETS = {"report-a-activations": [8], "report-a-lr-loss": [8],
                  "report-b-activations": [3], "report-b-lr": [2, 2]}  # fmt: skip


@pytest.mark.parametrize("name", preset_names())
def test_presets_fuse_where_their_grids_allow(name: str) -> None:
    preset = load_spec(name).model_copy(update={"max_bundle": MAX_BUNDLE})
    bundles = plan_bundles(preset, on_gpu=True)
    assert shapes(bundles) == FUSING_PRESETS.get(name)
    for bundle in bundles or []:
        check_fusable([TrainConfig.from_dict(config) for config in bundle])


def batch_sizes_per_trial(plan) -> list[list[int]]:
    return [[config["batch_size"] for config in plan.members(i)] for i in range(len(plan.groups))]


def a1(gpus: float, **fields: Any):
    preset = load_spec("report-a-batch-size")
    resources = preset.resources.model_copy(update={"gpus": gpus})
    return preset.model_copy(update={"resources": resources, **fields})


def test_on_a_gpu_bundles_share_as_few_trials_as_there_are_slots() -> None:
    spec = a1(1.0)
    one = plan_run(spec, configurations(spec), slots=1)
    assert one.sizes == [[1] * 7] and one.packed == [0]
    assert batch_sizes_per_trial(one) == [[512, 256, 128, 64, 32, 16, 8]]
    # Shared by work (epochs x batches): batch 8 alone is half of it.
    two = plan_run(spec, configurations(spec), slots=2)
    assert batch_sizes_per_trial(two) == [[512, 256, 128, 64, 32, 16], [8]]
    four = plan_run(spec, configurations(spec), slots=4)
    assert batch_sizes_per_trial(four) == [[512, 256, 128, 64], [32], [16], [8]]
    assert four.packed == [0] and four.sizes[1:] == [[1], [1], [1]]
    assert plan_run(spec, configurations(spec), slots=16).packed == []


def test_a_pack_holds_fused_bundles_whole() -> None:
    spec = parse_spec({"name": "p", "dataset": "mnist", "resources": {"gpus": 0.5},
                       "max_bundle": 2, "base": {"epochs": 1},
                       "grid": {"activation": ["relu", "tanh", "elu"], "batch_size": [32, 64]}},
                      "test")  # fmt: skip
    plan = plan_run(spec, configurations(spec), slots=1)
    assert plan.sizes == [[2, 2, 1, 1]]  # [0, 2] [1, 3] [4] [5]: grid order
    assert plan.bundles(0) == [[0, 2], [1, 3], [4], [5]]
    assert sorted(index for bundle in plan.bundles(0) for index in bundle) == list(range(6))
    assert len(plan.fused) == 2


@pytest.mark.parametrize(
    ("gpus", "fields", "packed"),
    [
        (0.0, {}, False),  # auto: the CPU gains nothing from a pack
        (0.0, {"pack": "on"}, True),
        (0.25, {"pack": "off"}, False),
        (0.25, {"scheduler": "asha"}, False),  # ASHA stops trials, not bundles
    ],
)
def test_where_packs_apply(gpus: float, fields: dict, packed: bool) -> None:
    spec = a1(gpus, **fields)
    plan = plan_run(spec, configurations(spec), slots=1)
    assert (plan.packed == [0]) is packed
    assert plan.pending == 7


def test_what_is_left_of_packs_is_packed_again() -> None:
    spec = a1(1.0)
    plan = plan_run(spec, configurations(spec), slots=2)
    left = plan.without({6, 0})  # batch 8 and 512 have results
    assert batch_sizes_per_trial(left) == [[256, 128, 64, 32], [16]] and left.pending == 5
    assert batch_sizes_per_trial(left.repacked(1)) == [[256, 128, 64, 32, 16]]


def test_a_pack_holds_at_most_max_bundles_so_that_streams_do_not_alias() -> None:
    configs = [{"batch_size": 64, "epochs": 1, "lr": 0.01 * (i + 1)} for i in range(20)]
    packs = pack_bundles([[i] for i in range(20)], configs, slots=1)
    assert [len(p) for p in packs] == [7, 7, 6]
    assert max(len(p) for p in pack_bundles([[i] for i in range(20)], configs, 2)) <= MAX_BUNDLES
