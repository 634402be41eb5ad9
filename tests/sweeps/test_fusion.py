"""Which configurations of a spec are bundled, and how many to a bundle."""

from __future__ import annotations

from typing import Any

import pytest

from sweeps.fusion import MAX_BUNDLE, auto_bundle_size, plan_bundles
from sweeps.spec import load_spec, parse_spec, preset_names, read_yaml
from trainers import TrainConfig
from trainers.fused import check_fusable

ACTIVATIONS = ["sigmoid", "relu", "tanh", "leaky_relu", "selu", "elu", "exponential", "linear"]


def spec(**fields: Any):
    data = {"name": "plan", "dataset": "mnist", "max_bundle": 8,
            "base": {"batch_size": 64, "epochs": 1}, **fields}  # fmt: skip
    return parse_spec(data, "test")


def shapes(bundles: list[list[dict]] | None) -> list[int] | None:
    return None if bundles is None else [len(bundle) for bundle in bundles]


def test_an_activation_grid_is_one_bundle_in_grid_order() -> None:
    (bundle,) = plan_bundles(spec(grid={"activation": ACTIVATIONS}), on_gpu=False)
    assert [config["activation"] for config in bundle] == ACTIVATIONS


def test_configurations_bundle_only_with_their_batch_size_and_seed() -> None:
    planned = plan_bundles(
        spec(
            base={"epochs": 1},
            grid={"activation": ["relu", "tanh"], "batch_size": [32, 64]},
            repeats=2,
        ),
        on_gpu=False,
    )
    assert shapes(planned) == [2, 2, 2, 2]
    for bundle in planned:
        assert len({(c["batch_size"], c["seed"]) for c in bundle}) == 1


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
        {"sample": {"lr": {"loguniform": [0.001, 0.1]}}},
        {"trainer": "user_trainers:steady", "dataset": None},
        {"base": {"model": "cnn1", "epochs": 1}},
    ],
)
def test_nothing_fuses_where_it_would_not_be_correct(fields: dict) -> None:
    assert plan_bundles(spec(grid={"activation": ["relu", "tanh"]}, **fields), False) is None


def test_a_batch_size_grid_does_not_fuse() -> None:
    assert plan_bundles(load_spec("report-a-batch-size").model_copy(
        update={"max_bundle": 8}), on_gpu=False) is None  # fmt: skip


def test_auto_size_keeps_every_slot_busy() -> None:
    grid = spec(grid={"activation": ACTIVATIONS})
    assert auto_bundle_size(grid, slots=2, on_gpu=False) == 4
    assert auto_bundle_size(grid, slots=3, on_gpu=False) == 3
    assert auto_bundle_size(grid, slots=16, on_gpu=False) == 1
    assert auto_bundle_size(grid, slots=1, on_gpu=False) == MAX_BUNDLE
    assert auto_bundle_size(grid, slots=0, on_gpu=False) == MAX_BUNDLE  # an empty cluster


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
