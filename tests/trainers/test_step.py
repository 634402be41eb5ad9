"""The one training loop agrees, epoch by epoch within 1e-5, with a plain reference loop
(tests/trainers/reference.py): K = 1 and K > 1, SGD and Adam, activations, losses, seeds
of their own, a tail batch, a diverging member; batches sliced on the CPU and picked by
the device-side counter that CUDA graphs capture."""

from __future__ import annotations

import math

import pytest

import trainers.step as step
from tests.trainers.reference import reference_train
from trainers import Dataset, train_members

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
TOLERANCE = 1e-5
DIGITS = {"dataset": "digits", "device": "cpu", "threads": 1}


@pytest.fixture(params=["sliced", "picked"])
def batches(request, monkeypatch) -> str:
    """Both ways an epoch feeds the step: slices (the CPU's default) and the graph-safe
    device-side picking (CUDA's, and for members with orders of their own)."""
    monkeypatch.setattr(step, "PICK_ON_DEVICE", request.param == "picked" or None)
    return request.param


def assert_matches_reference(configs: list[dict], dataset: Dataset) -> list[list[dict]]:
    """Train `configs` as one bundle; each member's epochs against its reference run."""
    reports: list[list[dict]] = []
    train_members(configs, dataset, reports.append)
    for k, config in enumerate(configs):
        expected = reference_train(config, dataset)
        assert len(reports) == len(expected)
        for epoch, (want, report) in enumerate(zip(expected, reports, strict=True), 1):
            got = report[k]
            assert got["epoch"] == epoch
            for key in METRICS:
                if math.isnan(want[key]):
                    assert math.isnan(got[key]), (config, epoch, key, got[key])
                else:
                    assert got[key] == pytest.approx(want[key], abs=TOLERANCE), (
                        config, epoch, key,
                    )  # fmt: skip
    return reports


def test_one_model_sgd_with_a_tail_batch(digits, batches) -> None:
    # 1,497 training images at batch 64: 23 full batches and a tail of 25.
    config = {**DIGITS, "hidden": [32], "lr": 0.1, "batch_size": 64, "epochs": 3, "seed": 4}
    assert_matches_reference([config], digits)


def test_one_model_adam_mse_two_layers_held_out(digits, batches) -> None:
    config = {**DIGITS, "hidden": [32, 16], "activation": "relu", "optimizer": "adam",
              "lr": 0.003, "loss": "mse", "batch_size": 32, "epochs": 3,
              "validation_split": 0.2}  # fmt: skip
    assert_matches_reference([config], digits)


def test_a_bundle_of_activations_losses_rates_and_initializers(digits, batches) -> None:
    base = {**DIGITS, "hidden": [32], "batch_size": 50, "epochs": 2, "seed": 7}
    configs = [
        {**base, "activation": "tanh", "lr": 0.05},
        {**base, "activation": "softmax", "lr": 0.2, "loss": "mse"},
        {**base, "activation": "relu", "lr": 0.1, "kernel_initializer": "he_uniform"},
        {**base, "activation": "leaky_relu", "lr": 0.1},
        {**base, "activation": "tanh", "lr": 0.3, "loss": "mse"},
        {**base, "activation": "selu", "lr": 0.02},
        {**base, "activation": "elu", "lr": 0.1},
        {**base, "activation": "linear", "lr": 0.01},
    ]
    assert_matches_reference(configs, digits)


def test_repeats_fuse_each_with_its_own_order_weights_and_loss_adam(digits, batches) -> None:
    base = {**DIGITS, "hidden": [24, 12], "optimizer": "adam", "batch_size": 40, "epochs": 2,
            "validation_split": 0.1}  # fmt: skip
    configs = [
        {**base, "seed": seed + offset, "activation": activation, "lr": lr, "loss": loss}
        for seed in (0, 1, 2)
        for offset, activation, lr, loss in (
            (0, "sigmoid", 0.01, "mse"),
            (10, "relu", 0.002, "cross_entropy"),
        )
    ]
    reports = assert_matches_reference(configs, digits)
    # Different seeds really are different runs.
    assert len({round(member["loss"], 6) for member in reports[0]}) == len(configs)


def test_a_diverging_member_leaves_the_others_untouched(digits, batches) -> None:
    base = {**DIGITS, "hidden": [32], "batch_size": 64, "epochs": 2}
    configs = [
        {**base, "activation": "exponential", "lr": 1e4},  # overflows to inf, then NaN
        {**base, "activation": "sigmoid", "lr": 0.1},
        {**base, "activation": "exponential", "lr": 0.01, "seed": 3},
    ]
    reports = assert_matches_reference(configs, digits)
    assert math.isnan(reports[-1][0]["val_loss"])
    assert not math.isnan(reports[-1][1]["val_loss"])


def test_no_hidden_layer_and_no_shuffle(digits, batches) -> None:
    base = {**DIGITS, "hidden": [], "batch_size": 100, "epochs": 2, "shuffle": False}
    configs = [{**base, "lr": 0.1, "seed": 1}, {**base, "lr": 0.5, "loss": "mse", "seed": 2}]
    assert_matches_reference(configs, digits)


@pytest.mark.slow
def test_model_a_on_real_mnist_alone_and_as_repeats(mnist, batches) -> None:
    """Report A's model A, 2 epochs of the full MNIST at batch 128 (a tail of 96)."""
    base = {"hidden": [64], "lr": 0.1, "batch_size": 128, "epochs": 2, "device": "cpu",
            "threads": 1}  # fmt: skip
    assert_matches_reference([base], mnist)
    assert_matches_reference([{**base, "seed": 1}, {**base, "seed": 2, "activation": "relu"}],
                             mnist)  # fmt: skip
