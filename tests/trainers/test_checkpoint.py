"""Checkpoints of the built-in trainer (trainers.checkpoint): training stopped after any
epoch and resumed from the state saved there goes on bit for bit as it would have."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from trainers import ConfigError, train
from trainers.bundle import forward
from trainers.checkpoint import from_bytes, load_model, to_bytes, train_kept
from trainers.data import Dataset, make_splits

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def config(**overrides: object) -> dict:
    # Adam: its moments and step count are state that must come back too.
    return {"dataset": "digits", "batch_size": 32, "epochs": 4, "optimizer": "adam",
            "hidden": [32], "activation": "relu", "seed": 3, **overrides}  # fmt: skip


def as_mnist(digits: Dataset) -> Dataset:
    """A few digits grown to MNIST's 28x28, where the CNNs fit."""

    def grown(images: np.ndarray) -> np.ndarray:
        return np.pad(np.kron(images, np.ones((1, 3, 3), np.uint8)), ((0, 0), (2, 2), (2, 2)))

    return dataclasses.replace(
        digits, name="mnist", train_images=grown(digits.train_images[:256]),
        train_labels=digits.train_labels[:256], test_images=grown(digits.test_images[:100]),
        test_labels=digits.test_labels[:100],
    )  # fmt: skip


def kept_run(digits, **overrides: object) -> tuple[list[dict], list[dict], dict]:
    """A whole run: its epochs' metrics, the state after each epoch (through bytes, as a
    file keeps it), its final metrics."""
    reports: list[dict] = []
    states: list[dict] = []
    final = train_kept(config(**overrides), digits, reports.append,
                       lambda state: states.append(from_bytes(to_bytes(state))))  # fmt: skip
    return reports, states, final


def numbers(metrics: dict) -> tuple:
    return tuple(metrics[key] for key in METRICS)


@pytest.mark.parametrize("stopped_after", [1, 2, 4])
def test_resumed_from_any_epoch_trains_on_as_if_never_stopped(digits, stopped_after) -> None:
    reports, states, final = kept_run(digits)
    uninterrupted: list[dict] = []
    plain = train(config(), digits, uninterrupted.append)
    # Keeping states changes nothing a run computes.
    assert [numbers(r) for r in reports] == [numbers(r) for r in uninterrupted]
    assert plain["confusion"] == final["confusion"]

    state = states[stopped_after - 1]
    assert state["epoch"] == stopped_after and len(state["history"]) == stopped_after
    resumed: list[dict] = []
    more: list[dict] = []
    final_again = train_kept(config(), digits, resumed.append, more.append, state)
    # The epochs before the state are reported as they were, timings too; the rest trained.
    assert resumed[:stopped_after] == reports[:stopped_after]
    assert [numbers(r) for r in resumed] == [numbers(r) for r in reports]  # bit for bit
    assert [s["epoch"] for s in more] == list(range(stopped_after + 1, 5))
    for key in (*METRICS, "test_loss", "test_accuracy", "confusion", "epochs_completed"):
        assert final_again[key] == final[key], key
    for saved, again in zip(states[stopped_after:], more, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(saved["params"], again["params"], strict=True))
        assert all(torch.equal(a, b) for a, b in
                   zip(saved["optimizer"], again["optimizer"], strict=True))  # fmt: skip


def test_a_state_of_another_config_is_refused(digits) -> None:
    _, states, _ = kept_run(digits, epochs=1)
    with pytest.raises(ConfigError, match=r"its lr is 0\.001, this one's 0\.01"):
        train_kept(config(epochs=1, lr=0.01), digits, print, print, states[0])
    # Where it trains may change: the device, the threads.
    train_kept(config(epochs=1, threads=2), digits, lambda m: None, lambda s: None, states[0])


def test_not_a_checkpoint_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a checkpoint of the built-in trainer"):
        from_bytes(b"PK not torch")
    with pytest.raises(ValueError, match="not a checkpoint of the built-in trainer"):
        from_bytes(to_bytes({"weights": torch.zeros(2)}))


def test_a_cnn_resumes_bit_for_bit_too(digits) -> None:
    data = as_mnist(digits)
    cnn = {"dataset": "mnist", "model": "cnn1", "epochs": 2}
    reports, states, final = kept_run(data, **cnn)
    resumed: list[dict] = []
    again = train_kept(config(**cnn), data, resumed.append, lambda state: None, states[0])
    assert [numbers(r) for r in resumed] == [numbers(r) for r in reports]
    assert again["confusion"] == final["confusion"]


@pytest.mark.parametrize("model", ["mlp", "cnn1"])
def test_the_loaded_model_predicts_what_the_run_validated(digits, model) -> None:
    data = digits if model == "mlp" else as_mnist(digits)
    reports, states, _ = kept_run(data, epochs=2, model=model, dataset=data.name)
    classifier = load_model(states[-1])
    splits = make_splits(data, 0.0, 0, torch.device("cpu"))
    logits = classifier(splits.validation.images)
    assert logits.shape == (len(data.test_labels), 10)
    accuracy = (logits.argmax(1) == splits.validation.labels).float().mean().item()
    assert accuracy == reports[-1]["val_accuracy"]
    assert [p.shape for p in classifier.parameters()] == [p.shape for p in states[-1]["params"]]
    # What the trainer's own evaluation computes from the same weights.
    assert torch.equal(logits, forward(_single(classifier), splits.validation)[0])


def _single(classifier):
    from trainers.step import Single

    return Single(classifier.model, classifier.config.loss)
