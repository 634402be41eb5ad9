"""trainers.memory's estimate counts what a bundle holds: the parameters it builds, each
batch order its members read, the data once per pack. (That it bounds a GPU's peak is
bench/gpu_check.py's.)"""

from __future__ import annotations

import pytest
import torch

from trainers.config import TrainConfig
from trainers.memory import FLOAT, bundle_bytes, data_bytes, member_bytes, model_sizes
from trainers.models import build_model, parameter_count


@pytest.mark.parametrize("model", ["mlp", "cnn1", "cnn2", "cnn3"])
def test_the_parameters_counted_are_the_models(model: str) -> None:
    cfg = TrainConfig.from_dict({"model": model, "hidden": [64, 32]})
    built = build_model(model, (28, 28), cfg.hidden, cfg.activation, cfg.kernel_initializer,
                        torch.Generator(), torch.device("cpu"))  # fmt: skip
    params, activations = model_sizes(cfg, (28, 28))
    assert params == parameter_count(built)
    assert activations > 0


def test_members_with_orders_of_their_own_cost_an_order_each() -> None:
    shared = [TrainConfig.from_dict({"seed": 0, "lr": lr}) for lr in (0.1, 0.2, 0.3)]
    own = [TrainConfig.from_dict({"seed": seed}) for seed in (0, 1, 2)]
    members = 3 * member_bytes(own[0], (28, 28), 60_000, 10_000)
    one_order = bundle_bytes(shared, (28, 28), 60_000, 10_000) - members
    three_orders = bundle_bytes(own, (28, 28), 60_000, 10_000) - members
    assert three_orders - one_order == 2 * 60_000 * (10 * FLOAT + 8)  # one-hot and int64 order
    assert data_bytes((28, 28), 70_000) == 70_000 * (28 * 28 * FLOAT + 8)
