"""Keras' activations as (forward, backward) pairs for the hand-written MLP step.

Each forward may work in place on the pre-activation it is given and returns the
activation `a`; each backward turns the gradient w.r.t. `a` into the gradient w.r.t. the
pre-activation using `a` alone, so no pre-activation has to be kept. The backwards are
ATen's own derivative kernels: one op each, the same numbers autograd would give.
`backward_into` is the same written into a given tensor (a strided view is fine), which
spares the fused trainer a copy per model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

aten = torch.ops.aten

LEAKY_RELU_SLOPE = 0.2  # Keras 3's default negative_slope (PyTorch's is 0.01)
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


class Activation(NamedTuple):
    forward: Callable[[torch.Tensor], torch.Tensor]
    backward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (grad wrt a, a)
    backward_into: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], object]  # (.., out)


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(
        torch.sigmoid_,
        aten.sigmoid_backward,
        lambda grad, a, out: aten.sigmoid_backward.grad_input(grad, a, grad_input=out),
    ),
    "relu": Activation(
        torch.relu_,
        lambda grad, a: aten.threshold_backward(grad, a, 0),
        lambda grad, a, out: aten.threshold_backward.grad_input(grad, a, 0, grad_input=out),
    ),
    "tanh": Activation(
        torch.tanh_,
        aten.tanh_backward,
        lambda grad, a, out: aten.tanh_backward.grad_input(grad, a, grad_input=out),
    ),
    "leaky_relu": Activation(
        lambda z: F.leaky_relu_(z, LEAKY_RELU_SLOPE),
        # The output has the input's sign, so the derivative can be read off the output.
        lambda grad, a: aten.leaky_relu_backward(grad, a, LEAKY_RELU_SLOPE, True),
        lambda grad, a, out: aten.leaky_relu_backward.grad_input(
            grad, a, LEAKY_RELU_SLOPE, True, grad_input=out
        ),
    ),
    "elu": Activation(
        lambda z: F.elu_(z, 1.0),
        lambda grad, a: aten.elu_backward(grad, 1.0, 1, 1, True, a),
        lambda grad, a, out: aten.elu_backward.grad_input(grad, 1.0, 1, 1, True, a, grad_input=out),
    ),
    "selu": Activation(
        torch.selu_,
        lambda grad, a: aten.elu_backward(grad, SELU_ALPHA, SELU_SCALE, 1, True, a),
        lambda grad, a, out: aten.elu_backward.grad_input(
            grad, SELU_ALPHA, SELU_SCALE, 1, True, a, grad_input=out
        ),
    ),
    "exponential": Activation(
        torch.exp_, torch.mul, lambda grad, a, out: torch.mul(grad, a, out=out)
    ),
    "linear": Activation(lambda z: z, lambda grad, a: grad, lambda grad, a, out: out.copy_(grad)),
    "softmax": Activation(
        lambda z: torch.softmax(z, -1),
        lambda grad, a: aten._softmax_backward_data(grad, a, -1, a.dtype),
        # Its out= form ignores a strided `out`'s strides: computed, then copied.
        lambda grad, a, out: out.copy_(aten._softmax_backward_data(grad, a, -1, a.dtype)),
    ),
}
