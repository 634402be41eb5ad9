"""Keras' losses on a softmax output: each value against one worked out by hand, each
gradient against autograd through the same formula written with torch's own softmax."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from trainers.losses import logits_gradient, per_sample_loss, softmax

CROSS_ENTROPIES = ["categorical_crossentropy", "sparse_categorical_crossentropy"]
LOSSES = [*CROSS_ENTROPIES, "mse"]


def worked_example() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two samples whose softmax is plain fractions: uniform (each class 1/10), and class 0
    at 6/15 with the nine others at 1/15 each; labels 3 and 0, then 3 and 1."""
    logits = torch.zeros(2, 10, dtype=torch.float64)
    logits[1, 0] = math.log(6)
    return logits, torch.tensor([3, 0]), torch.tensor([3, 1])


@pytest.mark.parametrize("loss", CROSS_ENTROPIES)
def test_cross_entropy_is_minus_the_log_of_the_true_class_probability(loss: str) -> None:
    logits, labels, others = worked_example()
    expected = torch.tensor([math.log(10), -math.log(6 / 15)], dtype=torch.float64)
    torch.testing.assert_close(per_sample_loss(loss, logits, labels), expected)
    expected = torch.tensor([math.log(10), math.log(15)], dtype=torch.float64)
    torch.testing.assert_close(per_sample_loss(loss, logits, others), expected)


def test_mse_is_the_mean_over_classes_of_the_squared_softmax_error() -> None:
    logits, labels, others = worked_example()
    # Uniform, label 3: (0.1 - 1)^2 + 9 * 0.1^2 = 0.9 over 10 classes.
    # Label 0 at 6/15: (0.4 - 1)^2 + 9 * (1/15)^2 = 0.4; label 1: 0.4^2 + (14/15)^2 + 8/225.
    expected = torch.tensor([0.09, 0.04], dtype=torch.float64)
    torch.testing.assert_close(per_sample_loss("mse", logits, labels), expected)
    label_1 = (0.16 + (14 / 15) ** 2 + 8 / 225) / 10
    expected = torch.tensor([0.09, label_1], dtype=torch.float64)
    torch.testing.assert_close(per_sample_loss("mse", logits, others), expected)


@pytest.mark.parametrize("loss", LOSSES)
def test_a_loss_keeps_the_logits_dtype_and_gives_one_value_per_sample(loss: str) -> None:
    logits = torch.randn(5, 10, generator=torch.Generator().manual_seed(0))
    values = per_sample_loss(loss, logits, torch.arange(5))
    assert values.shape == (5,) and values.dtype == torch.float32


def test_softmax_matches_torchs_and_stays_finite_on_large_logits() -> None:
    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(1)) * 5
    torch.testing.assert_close(softmax(logits), torch.softmax(logits, -1))
    huge = torch.tensor([[1000.0, 0.0, -1000.0, *[0.0] * 7]])  # exp(1000) overflows float32
    expected = torch.tensor([[1.0, *[0.0] * 9]])
    torch.testing.assert_close(softmax(huge), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_softmax_on_cuda_matches_the_cpus() -> None:
    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(softmax(logits.cuda()).cpu(), softmax(logits))


def test_the_cross_entropy_gradient_is_softmax_minus_one_hot() -> None:
    logits, labels, _ = worked_example()
    expected = torch.tensor([[0.1] * 3 + [-0.9] + [0.1] * 6,
                             [6 / 15 - 1] + [1 / 15] * 9], dtype=torch.float64)  # fmt: skip
    one_hot = F.one_hot(labels, 10).to(torch.float64)
    for loss in CROSS_ENTROPIES:
        torch.testing.assert_close(logits_gradient(loss, logits, one_hot), expected)


@pytest.mark.parametrize("loss", LOSSES)
def test_the_gradient_is_that_of_the_summed_losses(loss: str) -> None:
    """With leading model dimensions (3 models of 8 samples) and labels shared by all."""
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 8, 10, generator=generator, dtype=torch.float64) * 3
    labels = torch.randint(0, 10, (8,), generator=generator)
    one_hot = F.one_hot(labels, 10).to(torch.float64)
    leaf = logits.clone().requires_grad_()
    if loss == "mse":
        total = (torch.softmax(leaf, -1) - one_hot).square().mean(-1).sum()
    else:
        total = F.cross_entropy(leaf.reshape(-1, 10), labels.repeat(3), reduction="sum")
    (expected,) = torch.autograd.grad(total, leaf)
    torch.testing.assert_close(logits_gradient(loss, logits, one_hot), expected)
    torch.testing.assert_close(logits, leaf.detach())  # the caller's logits are left as they were
