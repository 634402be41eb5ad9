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


def test_a_fused_adam_step_is_the_same_few_ops_whatever_the_layers() -> None:
    """One scalar correction a step for every model and parameter (torch._foreach_*), not a
    broadcast tensor made per parameter: the ops a step dispatches do not grow with the
    number of parameters."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops += 1
            return func(*args, **(kwargs or {}))

    counts = []
    for layers in (2, 6):
        params = [torch.ones(3, 4, 5) for _ in range(layers)]
        rates = [torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64).view(3, 1, 1)] * layers
        adam = Adam(params, rates)
        grads = [torch.full_like(p, 0.5) for p in params]
        adam.step(grads)  # lazy set-up out of the count
        with Count() as count:
            adam.step(grads)
        counts.append(count.ops)
    assert counts[0] == counts[1]
