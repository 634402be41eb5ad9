"""Keras' SGD and Adam over lists of tensors, with gradients passed in.

Written with torch's multi-tensor (`_foreach`) ops: one kernel launch per op for all the
parameters, which matters when a step is launch-bound. Adam follows Keras' form, whose
epsilon is added to sqrt(v) before the bias correction folded into the step size.

A step never reads a tensor back to the host: Adam's step count is a tensor on the
parameters' device, so the step can be captured in a CUDA graph (trainers.graphs).

`lr` is a number, or (for stacked models, see trainers.fused) one tensor per parameter
holding each model's learning rate shaped to broadcast against that parameter.
"""

from __future__ import annotations

import torch

LearningRate = float | list[torch.Tensor]


class SGD:
    """Plain SGD, Keras' default: no momentum, no weight decay."""

    def __init__(self, params: list[torch.Tensor], lr: LearningRate) -> None:
        self.params = params
        self.lr = lr
        if not isinstance(lr, float | int):
            self._negative_lr = [rate.neg().to(p.dtype) for rate, p in zip(lr, params, strict=True)]

    def state(self) -> list[torch.Tensor]:
        """The tensors a step changes besides the parameters: none."""
        return []

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor]) -> None:
        if isinstance(self.lr, float | int):
            torch._foreach_add_(self.params, grads, alpha=-self.lr)
        else:
            # The same product (-lr * g), rounded once, as the scalar form computes.
            torch._foreach_addcmul_(self.params, grads, self._negative_lr)


class Adam:
    """Keras' Adam: beta_1 0.9, beta_2 0.999, epsilon 1e-7, no amsgrad."""

    def __init__(
        self,
        params: list[torch.Tensor],
        lr: LearningRate,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
    ) -> None:
        self.params = params
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        device = params[0].device
        # Double precision, as Keras computes the step size from Python floats.
        self.iterations = torch.zeros((), dtype=torch.float64, device=device)
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self._lr64: torch.Tensor | None = None
        self._negative_lr: list[torch.Tensor] = []
        if isinstance(lr, float | int):
            self._lr64 = torch.tensor(float(lr), dtype=torch.float64, device=device)
        else:  # stacked models: each parameter's rates, negated once, in its own type
            pairs = zip(lr, params, strict=True)
            self._negative_lr = [rate.neg().to(param.dtype) for rate, param in pairs]

    def state(self) -> list[torch.Tensor]:
        """The tensors a step changes besides the parameters."""
        return [self.iterations, *self.m, *self.v]

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor]) -> None:
        self.iterations.add_(1)
        t = self.iterations
        correction = torch.sqrt(1 - torch.pow(self.beta_2, t)) / (1 - torch.pow(self.beta_1, t))
        torch._foreach_lerp_(self.m, grads, 1 - self.beta_1)
        torch._foreach_mul_(self.v, self.beta_2)
        torch._foreach_addcmul_(self.v, grads, grads, value=1 - self.beta_2)
        denominator = torch._foreach_sqrt(self.v)
        torch._foreach_add_(denominator, self.epsilon)
        dtype = self.params[0].dtype
        if self._lr64 is not None:
            # p + (step * m) / denominator, the step size rounded once to the parameters' type.
            scaled = torch._foreach_mul(self.m, self._lr64.mul(correction).neg_().to(dtype))
        else:
            # Each model's step size from its rate and the one correction all share: one
            # multi-tensor op over the small rate tensors whatever K and however many
            # parameters, not three ops a parameter; then one pass over the moments.
            steps = torch._foreach_mul(self._negative_lr, correction.to(dtype))
            scaled = torch._foreach_mul(self.m, steps)
        torch._foreach_addcdiv_(self.params, scaled, denominator)


def make_optimizer(name: str, params: list[torch.Tensor], lr: LearningRate) -> SGD | Adam:
    if name == "sgd":
        return SGD(params, lr)
    if name == "adam":
        return Adam(params, lr)
    raise ValueError(f"optimizer must be sgd or adam, got {name!r}")
