"""A fused bundle trains each configuration exactly as `train` trains it alone."""

from __future__ import annotations

import re

import pytest

from trainers import ConfigError, train
from trainers.config import TrainConfig
from trainers.fused import check_fusable, fusion_key, train_fused

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
TOLERANCE = 1e-5


def one_by_one(configs: list[dict], dataset) -> tuple[list[list[dict]], list[dict]]:
    """Each configuration's epoch reports and final metrics, trained alone."""
    reports, finals = [], []
    for config in configs:
        epochs: list[dict] = []
        finals.append(train(config, dataset, epochs.append))
        reports.append(epochs)
    return reports, finals


def fused(configs: list[dict], dataset) -> tuple[list[list[dict]], list[dict]]:
    """The same from one bundle, regrouped per configuration."""
    per_epoch: list[list[dict]] = []
    finals = train_fused(configs, dataset, per_epoch.append)
    return [[epoch[k] for epoch in per_epoch] for k in range(len(configs))], finals


def assert_same_training(configs: list[dict], dataset) -> None:
    alone_reports, alone_finals = one_by_one(configs, dataset)
    fused_reports, fused_finals = fused(configs, dataset)
    for config, alone, together in zip(configs, alone_reports, fused_reports, strict=True):
        assert [r["epoch"] for r in together] == [r["epoch"] for r in alone]
        for epoch_alone, epoch_fused in zip(alone, together, strict=True):
            for key in METRICS:
                assert epoch_fused[key] == pytest.approx(epoch_alone[key], abs=TOLERANCE), (
                    config, epoch_alone["epoch"], key,
                )  # fmt: skip
    for alone, together in zip(alone_finals, fused_finals, strict=True):
        assert together["params"] == alone["params"]
        assert together["test_loss"] == pytest.approx(alone["test_loss"], abs=TOLERANCE)
        assert together["test_accuracy"] == pytest.approx(alone["test_accuracy"], abs=TOLERANCE)
        # A prediction may flip only where two logits tie to within float rounding.
        cells = sum(
            abs(a - b)
            for row_a, row_b in zip(alone["confusion"], together["confusion"], strict=True)
            for a, b in zip(row_a, row_b, strict=True)
        )
        assert cells <= 2


@pytest.mark.slow
def test_activations_and_learning_rates_match_one_by_one_on_mnist(mnist) -> None:
    """Report A's model A, SGD, real MNIST, 2 epochs: 4 activations x 2 learning rates."""
    base = {"hidden": [64], "optimizer": "sgd", "batch_size": 128, "epochs": 2, "seed": 3,
            "device": "cpu", "threads": 1}  # fmt: skip
    configs = [
        {**base, "activation": activation, "lr": lr}
        for activation in ("sigmoid", "relu", "exponential", "linear")
        for lr in (0.01, 0.1)
    ]
    assert_same_training(configs, mnist)


def test_adam_losses_initializers_and_two_hidden_layers_match(digits) -> None:
    """Adam with per-model rates, both losses, both initializers, a held-out split (so a
    separate test evaluation), a deeper MLP and the activations that run in place or not."""
    base = {"dataset": "digits", "hidden": [32, 16], "optimizer": "adam", "batch_size": 32,
            "epochs": 3, "validation_split": 0.2, "seed": 5, "device": "cpu",
            "threads": 1}  # fmt: skip
    configs = [
        {**base, "activation": "tanh", "lr": 0.001, "loss": "categorical_crossentropy"},
        {**base, "activation": "softmax", "lr": 0.01, "loss": "mse"},
        {**base, "activation": "relu", "lr": 0.003, "kernel_initializer": "he_uniform"},
        {**base, "activation": "tanh", "lr": 0.01, "loss": "mse"},
        {**base, "activation": "selu", "lr": 0.002, "loss": "categorical_crossentropy"},
    ]
    assert_same_training(configs, digits)


def test_mlp_without_hidden_layers_matches(digits) -> None:
    base = {"dataset": "digits", "hidden": [], "batch_size": 64, "epochs": 2, "device": "cpu"}
    assert_same_training([{**base, "lr": 0.1}, {**base, "lr": 0.5, "loss": "mse"}], digits)


def test_finals_come_back_in_the_given_order(digits) -> None:
    base = {"dataset": "digits", "batch_size": 64, "epochs": 1, "device": "cpu"}
    activations = ["tanh", "elu", "relu", "sigmoid"]  # not sorted: the bundle sorts them
    per_epoch: list[list[dict]] = []
    finals = train_fused([{**base, "activation": a} for a in activations], digits,
                         per_epoch.append)  # fmt: skip
    alone = [train({**base, "activation": a}, digits) for a in activations]
    assert [f["val_loss"] for f in finals] == pytest.approx([a["val_loss"] for a in alone])
    assert [r["val_loss"] for r in per_epoch[0]] == pytest.approx([f["val_loss"] for f in finals])


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({"batch_size": 32}, "share batch_size; got 64 and 32"),
        ({"seed": 1}, "share seed; got 0 and 1"),
        ({"hidden": [32]}, "share hidden; got (64,) and (32,)"),
        ({"optimizer": "adam"}, "share optimizer; got 'sgd' and 'adam'"),
        ({"model": "cnn1"}, "only MLPs fuse; got model 'cnn1'"),
    ],
)
def test_configurations_that_cannot_fuse_are_refused(second, message) -> None:
    first = {"batch_size": 64}
    configs = [TrainConfig.from_dict(first), TrainConfig.from_dict({**first, **second})]
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_fusable(configs)


def test_a_bundle_is_checked_before_any_training(digits) -> None:
    first = {"dataset": "digits", "batch_size": 64, "epochs": 1}
    with pytest.raises(ConfigError, match="share epochs; got 1 and 2"):
        train_fused([first, {**first, "epochs": 2}], digits)


def test_fusion_key_ignores_only_the_fusable_keys() -> None:
    def key(**config):
        return fusion_key(TrainConfig.from_dict(config))

    assert key(activation="relu", lr=0.1, loss="mse") == key(kernel_initializer="he_uniform")
    assert key(batch_size=32) != key(batch_size=64)
    assert key(seed=1) != key(seed=2)
    assert key(model="cnn1") is None
