from __future__ import annotations

import math

import torch

from trainers.optim import SGD, Adam


def test_sgd_is_plain_gradient_descent() -> None:
    param = torch.tensor([1.0, -2.0])
    SGD([param], lr=0.1).step([torch.tensor([0.5, 1.0])])
    torch.testing.assert_close(param, torch.tensor([0.95, -2.1]))


def test_adam_follows_keras_formula() -> None:
    lr, beta_1, beta_2, epsilon = 0.01, 0.9, 0.999, 1e-7
    param = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
    optimizer = Adam([param], lr)
    expected, m, v = (
        param.clone(),
        torch.zeros(3, dtype=torch.float64),
        torch.zeros(3, dtype=torch.float64),
    )
    for t, grad in enumerate([torch.tensor([0.1, -0.2, 1e-9]), torch.tensor([0.3, 0.1, 0.0])], 1):
        grad = grad.double()
        optimizer.step([grad])
        # Keras 3 Adam.update_step
        alpha = lr * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m = m + (grad - m) * (1 - beta_1)
        v = v + (grad * grad - v) * (1 - beta_2)
        expected = expected - alpha * m / (v.sqrt() + epsilon)
        torch.testing.assert_close(param, expected)
