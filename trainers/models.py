"""The reports' models with Keras' initialisation, behind one small interface.

`MLP` keeps its Dense layers as plain tensors and computes its gradients by hand: a step
is a fixed, short list of kernels (two matmuls per layer and an activation each way),
because at batch 8 a step costs what its kernel launches cost, not its arithmetic.
`CNN` is an ordinary `nn.Sequential` differentiated by autograd: its convolutions are
compute-bound, so overhead does not matter there.

Both expose `params`, `inputs(images)`, `forward(x)` and `gradients(...)`, which is all
the training loop needs.
"""

from __future__ import annotations

import itertools
import math
from typing import Protocol

import torch
from torch import nn

from trainers.activations import ACTIVATIONS
from trainers.data import NUM_CLASSES
from trainers.losses import logits_gradient


class Model(Protocol):
    params: list[torch.Tensor]

    def inputs(self, images: torch.Tensor) -> torch.Tensor: ...

    def forward(self, x: torch.Tensor) -> torch.Tensor: ...

    def gradients(
        self, x: torch.Tensor, one_hot: torch.Tensor, logits_out: torch.Tensor, loss: str
    ) -> list[torch.Tensor]: ...


def keras_uniform(
    initializer: str, shape: tuple[int, ...], fan_in: int, fan_out: int, generator: torch.Generator
) -> torch.Tensor:
    """Keras' glorot_uniform or he_uniform, drawn on the CPU so any device gets the same."""
    if initializer == "glorot_uniform":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
    elif initializer == "he_uniform":
        limit = math.sqrt(6.0 / fan_in)
    else:
        raise ValueError(f"initializer must be glorot_uniform or he_uniform, got {initializer!r}")
    return torch.empty(shape).uniform_(-limit, limit, generator=generator)


class MLP:
    """Flatten, Dense(w, activation) for w in `hidden`, Dense(10, softmax).

    Weights are stored (in, out) as Keras does, so a layer is `addmm(bias, x, weight)`.
    The output layer's softmax is part of the loss (see trainers.losses).
    """

    def __init__(
        self,
        in_features: int,
        hidden: tuple[int, ...],
        activation: str,
        initializer: str,
        generator: torch.Generator,
        device: torch.device,
    ) -> None:
        self.activation = ACTIVATIONS[activation]
        sizes = [in_features, *hidden, NUM_CLASSES]
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        for index, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            # The output layer keeps Keras' default whatever the hidden layers use.
            init = initializer if index < len(hidden) else "glorot_uniform"
            weight = keras_uniform(init, (fan_in, fan_out), fan_in, fan_out, generator)
            self.weights.append(weight.to(device))
            self.biases.append(torch.zeros(fan_out, device=device))
        self.params = [p for layer in zip(self.weights, self.biases, strict=True) for p in layer]
        self._grads = [torch.empty_like(p) for p in self.params]
        self._ones = torch.ones(0, device=device)

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *hidden, last = range(len(self.weights))
        for i in hidden:
            x = self.activation.forward(torch.addmm(self.biases[i], x, self.weights[i]))
        return torch.addmm(self.biases[last], x, self.weights[last])

    @torch.no_grad()
    def gradients(
        self, x: torch.Tensor, one_hot: torch.Tensor, logits_out: torch.Tensor, loss: str
    ) -> list[torch.Tensor]:
        """Gradients of the batch-mean loss, in `params` order; writes the logits out.

        The returned tensors are buffers reused by the next call.
        """
        batch = x.shape[0]
        if self._ones.shape[0] < batch:
            self._ones = torch.ones(batch, device=x.device)
        ones = self._ones[:batch]
        scale = 1.0 / batch
        weights, biases, grads = self.weights, self.biases, self._grads

        layer_inputs = [x]
        for i in range(len(weights) - 1):
            pre_activation = torch.addmm(biases[i], layer_inputs[-1], weights[i])
            layer_inputs.append(self.activation.forward(pre_activation))
        torch.addmm(biases[-1], layer_inputs[-1], weights[-1], out=logits_out)

        grad_out = logits_gradient(loss, logits_out, one_hot)
        for i in reversed(range(len(weights))):
            inputs = layer_inputs[i]
            # beta=0 overwrites the buffer; alpha folds in the batch mean.
            torch.addmm(grads[2 * i], inputs.T, grad_out, beta=0, alpha=scale, out=grads[2 * i])
            torch.addmv(
                grads[2 * i + 1], grad_out.T, ones, beta=0, alpha=scale, out=grads[2 * i + 1]
            )
            if i:
                grad_out = self.activation.backward(grad_out.mm(weights[i].T), inputs)
        return grads


# (kind, filters or units, kernel size, activation, kernel initializer)
LayerSpec = tuple[str, int, int, str | None, str]
_POOL: LayerSpec = ("pool", 0, 2, None, "")
_FLAT: LayerSpec = ("flatten", 0, 0, None, "")

CNN_LAYERS: dict[str, list[LayerSpec]] = {
    # The report gives no activation for the first three convolutions: Keras' default, none.
    "cnn1": [
        ("conv", 32, 3, None, "glorot_uniform"),
        _POOL,
        ("conv", 64, 3, None, "glorot_uniform"),
        ("conv", 64, 3, None, "glorot_uniform"),
        _POOL,
        _FLAT,
        ("dense", 100, 0, "relu", "he_uniform"),
        ("dense", NUM_CLASSES, 0, None, "glorot_uniform"),
    ],
    "cnn2": [
        ("conv", 64, 3, "relu", "glorot_uniform"),
        ("conv", 64, 3, "relu", "glorot_uniform"),
        _POOL,
        ("conv", 128, 3, "relu", "glorot_uniform"),
        ("conv", 128, 3, "relu", "glorot_uniform"),
        _POOL,
        ("conv", 256, 3, "relu", "glorot_uniform"),
        _POOL,
        _FLAT,
        ("dense", 512, 0, "relu", "he_uniform"),
        ("dense", NUM_CLASSES, 0, None, "glorot_uniform"),
    ],
    "cnn3": [
        ("conv", 64, 5, "relu", "glorot_uniform"),
        ("conv", 64, 5, "relu", "glorot_uniform"),
        _POOL,
        ("conv", 128, 3, "relu", "glorot_uniform"),
        ("conv", 128, 3, "relu", "glorot_uniform"),
        ("conv", 256, 3, "relu", "glorot_uniform"),
        _POOL,
        _FLAT,
        ("dense", 512, 0, "relu", "he_uniform"),
        ("dense", NUM_CLASSES, 0, None, "glorot_uniform"),
    ],
}


class CNN:
    """One of the report's CNNs (`CNN_LAYERS`), 'valid' padding as Keras' default."""

    def __init__(
        self,
        name: str,
        image_shape: tuple[int, int],
        generator: torch.Generator,
        device: torch.device,
    ) -> None:
        layers: list[nn.Module] = []
        channels, (height, width) = 1, image_shape
        for kind, size, kernel, activation, init in CNN_LAYERS[name]:
            if kind == "conv":
                layer: nn.Module = nn.Conv2d(channels, size, kernel)
                fans = (channels * kernel * kernel, size * kernel * kernel)
                channels, height, width = size, height - kernel + 1, width - kernel + 1
            elif kind == "dense":
                layer = nn.Linear(channels, size)
                fans = (channels, size)
                channels = size
            elif kind == "pool":
                layer, height, width = nn.MaxPool2d(kernel), height // kernel, width // kernel
            else:
                layer, channels = nn.Flatten(), channels * height * width
            if min(height, width) < 1:
                raise ValueError(f"model {name} needs larger images than {image_shape}")
            if kind in ("conv", "dense"):
                with torch.no_grad():
                    weight = keras_uniform(init, tuple(layer.weight.shape), *fans, generator)
                    layer.weight.copy_(weight)
                    layer.bias.zero_()
            layers.append(layer)
            if activation == "relu":
                layers.append(nn.ReLU())
        self.module = nn.Sequential(*layers).to(device)
        self.params = list(self.module.parameters())

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        return images.unsqueeze(1)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    def gradients(
        self, x: torch.Tensor, one_hot: torch.Tensor, logits_out: torch.Tensor, loss: str
    ) -> list[torch.Tensor]:
        logits = self.module(x)
        logits_out.copy_(logits.detach())
        grad_out = logits_gradient(loss, logits.detach(), one_hot).div_(x.shape[0])
        return list(torch.autograd.grad(logits, self.params, grad_out))


def build_model(
    model: str,
    image_shape: tuple[int, int],
    hidden: tuple[int, ...],
    activation: str,
    initializer: str,
    generator: torch.Generator,
    device: torch.device,
) -> Model:
    if model == "mlp":
        in_features = image_shape[0] * image_shape[1]
        return MLP(in_features, hidden, activation, initializer, generator, device)
    return CNN(model, image_shape, generator, device)


def parameter_count(model: Model) -> int:
    return sum(p.numel() for p in model.params)
