"""`train` and `train_members`: Keras' fit() over a bundle, the one loop (trainers.train)
with a pack of one, whose errors are the caller's as they were raised."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainers import train, train_members
from trainers.bundle import Bundle

EPOCH_KEYS = {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "epoch_time_s"}


def digits_config(**overrides) -> dict:
    return {"dataset": "digits", "batch_size": 16, "epochs": 10, "lr": 0.5, **overrides}


def test_trains_on_digits_and_reports_every_epoch(digits) -> None:
    reports: list[dict] = []
    result = train(digits_config(), digits, reports.append)
    assert [r["epoch"] for r in reports] == list(range(1, 11))
    assert all(set(r) == EPOCH_KEYS for r in reports)
    assert reports[-1]["loss"] < reports[0]["loss"] / 2
    assert result["val_accuracy"] >= 0.85
    assert result["params"] == 64 * 64 + 64 + 64 * 10 + 10
    assert result["epochs_completed"] == 10 and result["device"] == "cpu"
    confusion = result["confusion"]
    assert len(confusion) == 10 and all(len(row) == 10 for row in confusion)
    assert sum(map(sum, confusion)) == 300  # the validation (= test) split
    diagonal = sum(confusion[i][i] for i in range(10))
    assert diagonal / 300 == pytest.approx(result["val_accuracy"])


def test_same_seed_same_results_on_cpu(digits) -> None:
    first = train(digits_config(epochs=3, seed=7), digits)
    again = train(digits_config(epochs=3, seed=7), digits)
    other = train(digits_config(epochs=3, seed=8), digits)
    keys = ("loss", "accuracy", "val_loss", "val_accuracy", "confusion")
    assert [first[k] for k in keys] == [again[k] for k in keys]
    assert first["loss"] != other["loss"]


@pytest.mark.parametrize(
    ("overrides", "minimum"),
    [
        ({"optimizer": "adam", "lr": 0.001}, 0.85),
        ({"loss": "mse", "lr": 0.5, "epochs": 20}, 0.5),
        ({"hidden": [32, 32], "activation": "relu", "kernel_initializer": "he_uniform"}, 0.85),
        ({"shuffle": False}, 0.85),
    ],
)
def test_optimizers_losses_and_depths_learn(digits, overrides: dict, minimum: float) -> None:
    result = train(digits_config(**overrides), digits)
    assert result["val_accuracy"] >= minimum


def test_held_out_validation_reports_test_metrics_apart(digits) -> None:
    result = train(digits_config(validation_split=0.1, epochs=3), digits)
    assert sum(map(sum, result["confusion"])) == 149  # 1,497 - ceil(0.9 * 1,497), as Keras
    # Validated on the last 149 training images, as Keras: the confusion's rows are their labels.
    rows = [sum(row) for row in result["confusion"]]
    assert rows == np.bincount(digits.train_labels[-149:], minlength=10).tolist()
    assert result["test_loss"] != result["val_loss"]


@pytest.mark.slow
def test_model_a_reaches_091_on_real_mnist_in_three_epochs(mnist) -> None:
    reports: list[dict] = []
    config = {"dataset": "mnist", "batch_size": 64, "epochs": 3, "lr": 0.1}
    result = train(config, mnist, reports.append)
    assert result["params"] == 50_890
    assert result["val_accuracy"] >= 0.91
    assert sum(map(sum, result["confusion"])) == 10_000
    assert [r["epoch"] for r in reports] == [1, 2, 3]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["cnn1", "cnn2", "cnn3"])
def test_cnns_train_on_an_mnist_subset(mnist, model: str) -> None:
    from dataclasses import replace

    small = replace(
        mnist,
        train_images=mnist.train_images[:600],
        train_labels=mnist.train_labels[:600],
        test_images=mnist.test_images[:200],
        test_labels=mnist.test_labels[:200],
    )
    config = {
        "dataset": "mnist",
        "model": model,
        "optimizer": "adam",
        "batch_size": 100,
        "epochs": 2,
        "validation_split": 0.1,
    }
    result = train(config, small)
    assert result["val_accuracy"] > 0.3  # chance is 0.1
    assert sum(map(sum, result["confusion"])) == 60


def test_a_lone_bundle_raises_what_it_raised(digits, monkeypatch) -> None:
    """Not ended as a pack's failed outcome, nor a fatal CUDA error made a PackLost: the
    caller gets the very exception, after the epochs before it were reported."""
    raised = [
        RuntimeError("CUDA out of memory (a stand-in)"),
        torch.AcceleratorError("CUDA error: an illegal memory access was encountered"),
    ]
    original = Bundle.collect_epoch

    def fails_at_epoch_2(self) -> list[dict]:
        metrics = original(self)
        if self.epoch == 2:
            raise raised[0]
        return metrics

    monkeypatch.setattr(Bundle, "collect_epoch", fails_at_epoch_2)
    while raised:
        reports: list[list[dict]] = []
        with pytest.raises(type(raised[0])) as caught:
            train_members([digits_config(epochs=3)], digits, reports.append)
        assert caught.value is raised.pop(0)
        assert [metrics[0]["epoch"] for metrics in reports] == [1]


def test_an_error_of_the_report_is_the_callers(digits) -> None:
    def report(metrics: dict) -> None:
        raise OSError("the driver is gone")

    with pytest.raises(OSError, match="the driver is gone"):
        train(digits_config(epochs=2), digits, report)
