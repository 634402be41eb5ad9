"""Fused trials: K same-shape MLPs trained as one stacked model, each as it would alone.

A sweep of small models spends its time launching tiny kernels. Stacking K models that
share their layer shapes turns K small matmuls into one batched one. When the K members
see the same batches (they share their `seed`), the first layer of all K is a single
(batch, in) x (in, K * width) matmul over the shared batch; members with seeds of their
own each read their own batch, and every layer is one `baddbmm` over (K, ...) stacks.
Activations and losses are applied per run of members that share them, learning rates
per model (trainers.optim).

Each member sees exactly the batches, initial weights and updates it would see trained
alone: configurations fuse when they agree on everything but
`trainers.config.FUSABLE_KEYS` (`trainers.config.fusion_key`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from trainers.activations import Activation
from trainers.losses import logits_gradient
from trainers.models import MLP


def runs(values: Sequence[Any]) -> list[tuple[int, int, Any]]:
    """(start, stop, value) of each run of equal consecutive values."""
    found: list[tuple[int, int, Any]] = []
    for index, value in enumerate(values):
        if found and found[-1][2] == value:
            found[-1] = (found[-1][0], index + 1, value)
        else:
            found.append((index, index + 1, value))
    return found


class FusedMLP:
    """K MLPs of one shape as stacked tensors, built from (and equal to) K `MLP`s.

    With `shared_input` the members read one batch (batch, in) and the first layer's
    weight is stacked (in, K, width), its bias (K, width); otherwise each member reads its
    own, x is (K, batch, in), and the first layer is stacked like the others. A later
    layer's weight is (K, in, out), its bias (K, 1, out). `model_axis[i]` is the axis of
    `params[i]` that indexes the models.
    """

    def __init__(
        self, members: Sequence[MLP], losses: Sequence[str], shared_input: bool = True
    ) -> None:
        self.count = len(members)
        self.shared_input = shared_input
        first = 1 if shared_input else 0  # the layers stacked along a leading model axis
        self.weights, self.biases = [], []
        if shared_input:
            self.weights.append(torch.stack([m.weights[0] for m in members], 1))
            self.biases.append(torch.stack([m.biases[0] for m in members]))
        for i in range(first, len(members[0].weights)):
            self.weights.append(torch.stack([m.weights[i] for m in members]))
            self.biases.append(torch.stack([m.biases[i] for m in members]).unsqueeze(1))
        self.params = [p for layer in zip(self.weights, self.biases, strict=True) for p in layer]
        self.model_axis = [1, 0] * shared_input + [0] * (len(self.params) - 2 * shared_input)
        found = runs([m.activation for m in members])
        # Each run of members sharing an activation, as sizes for Tensor.split (one call
        # for all the views: Python-level slicing costs a microsecond or two each).
        self.activation_sizes = [stop - start for start, stop, _ in found]
        self.activation_functions: list[Activation] = [function for _, _, function in found]
        self.losses: list[tuple[int, int, str]] = runs(list(losses))
        self._grads = [torch.empty_like(p) for p in self.params]
        self._ones = torch.ones(self.count, 1, 0, device=self.params[0].device)

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(-2)

    def learning_rates(self, rates: Sequence[float]) -> list[torch.Tensor]:
        """Each model's rate, one tensor per parameter shaped to broadcast against it."""
        values = torch.tensor(rates, dtype=torch.float64, device=self.params[0].device)
        shaped = []
        for param, axis in zip(self.params, self.model_axis, strict=True):
            shape = [1] * param.dim()
            shape[axis] = self.count
            shaped.append(values.view(shape))
        return shaped

    def _first_layer(self, x: torch.Tensor) -> torch.Tensor:
        """All K first layers in one matmul: (K, batch, width). `x` is (K, batch, in), each
        member's own batch, or (batch, in), one batch for all (as evaluation reads)."""
        weight, bias = self.weights[0], self.biases[0]
        if x.dim() == 3:
            return torch.baddbmm(bias, x, weight)
        if self.shared_input:
            weight_2d = weight.view(weight.shape[0], -1)
        else:
            weight_2d = weight.transpose(0, 1).reshape(weight.shape[1], -1)
        z = torch.addmm(bias.view(-1), x, weight_2d)
        return z.view(x.shape[0], self.count, -1).transpose(0, 1)

    def _activate(self, z: torch.Tensor) -> torch.Tensor:
        parts = z.split(self.activation_sizes)
        for part, activation in zip(parts, self.activation_functions, strict=True):
            result = activation.forward(part)
            if result is not part:  # the forwards that do not work in place (softmax)
                part.copy_(result)
        return z

    def _activation_backward(
        self, grad: torch.Tensor, activated: torch.Tensor, out: torch.Tensor
    ) -> None:
        sizes = self.activation_sizes
        for grad_part, activated_part, out_part, activation in zip(
            grad.split(sizes), activated.split(sizes), out.split(sizes),
            self.activation_functions, strict=True,
        ):  # fmt: skip
            activation.backward_into(grad_part, activated_part, out_part)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of every model: (K, batch, classes)."""
        h = self._first_layer(x)
        for weight, bias in zip(self.weights[1:], self.biases[1:], strict=True):
            h = torch.baddbmm(bias, self._activate(h), weight)
        return h

    @torch.no_grad()
    def gradients(
        self, x: torch.Tensor, one_hot: torch.Tensor, logits_out: torch.Tensor
    ) -> list[torch.Tensor]:
        """Every model's gradients of its batch-mean loss, in `params` order; writes the
        logits (K, batch, classes) out. The returned tensors are reused by the next call."""
        batch = x.shape[-2]
        scale = 1.0 / batch
        if self._ones.shape[2] < batch:
            self._ones = torch.ones(self.count, 1, batch, device=x.device)
        ones = self._ones[:, :, :batch]
        grads = self._grads

        layer_inputs = [x]
        h = self._first_layer(x)
        for weight, bias in zip(self.weights[1:], self.biases[1:], strict=True):
            layer_inputs.append(self._activate(h))
            h = torch.baddbmm(bias, h, weight)
        logits_out.copy_(h)

        if len(self.losses) == 1:
            grad_out = logits_gradient(self.losses[0][2], h, one_hot)
        else:
            grad_out = torch.empty_like(logits_out)
            for start, stop, loss in self.losses:
                member_one_hot = one_hot if one_hot.dim() == 2 else one_hot[start:stop]
                grad_out[start:stop] = logits_gradient(loss, h[start:stop], member_one_hot)
        stacked = range(1 if self.shared_input else 0, len(self.weights))
        for i in reversed(stacked):
            inputs = layer_inputs[i]
            weight_grad, bias_grad = grads[2 * i], grads[2 * i + 1]
            # beta=0 overwrites the buffer; alpha folds in the batch mean.
            torch.baddbmm(
                weight_grad, inputs.transpose(1, 2), grad_out, beta=0, alpha=scale,
                out=weight_grad,
            )  # fmt: skip
            torch.baddbmm(bias_grad, ones, grad_out, beta=0, alpha=scale, out=bias_grad)
            if i == 0:
                return grads
            upstream = torch.bmm(grad_out, self.weights[i].transpose(1, 2))
            # A shared first layer's gradient is wanted (batch, K, width): one matmul below.
            if i == 1 and self.shared_input:
                grad_out = torch.empty(batch, self.count, upstream.shape[2], device=x.device)
                self._activation_backward(upstream, inputs, grad_out.transpose(0, 1))
            else:
                grad_out = torch.empty_like(upstream)
                self._activation_backward(upstream, inputs, grad_out)
        if len(self.weights) == 1:  # no hidden layer: the output layer is the first
            grad_out = grad_out.transpose(0, 1).contiguous()
        flat_grad = grad_out.view(batch, -1)
        weight_grad, bias_grad = grads[0].view(x.shape[1], -1), grads[1].view(-1)
        torch.addmm(weight_grad, x.T, flat_grad, beta=0, alpha=scale, out=weight_grad)
        torch.addmv(bias_grad, flat_grad.T, ones[0, 0], beta=0, alpha=scale, out=bias_grad)
        return grads
