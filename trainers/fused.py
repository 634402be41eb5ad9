"""Fused trials: K same-shape MLPs trained as one stacked model, each as it would alone.

A sweep of small models spends its time launching tiny kernels. Stacking K models that
share their layer shapes turns K small matmuls into one batched one: the first layer of
all K is a single (batch, in) x (in, K * width) matmul over the shared batch, the later
layers one `baddbmm` over (K, ...) stacks. Activations and losses are applied per run
of members that share them, learning rates per model (trainers.optim).

Each member sees exactly the batches, initial weights and updates it would see trained
alone by `trainers.train`: configurations fuse when they agree on everything but
`FUSABLE_KEYS` (`fusion_key`); the batch order follows the shared `seed`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from trainers.activations import Activation
from trainers.config import ConfigError, TrainConfig
from trainers.data import NUM_CLASSES, Dataset, Split
from trainers.losses import logits_gradient, per_sample_loss
from trainers.models import MLP, parameter_count
from trainers.optim import make_optimizer
from trainers.train import (
    EVAL_CHUNK,
    EpochOrder,
    checked_configs,
    epoch_metrics,
    final_metrics,
    prepare,
    shuffled_order,
)

# Keys whose values may differ between the members of one bundle.
FUSABLE_KEYS = ("activation", "lr", "loss", "kernel_initializer")
BundleReport = Callable[[list[dict[str, Any]]], None]


def fusion_key(cfg: TrainConfig) -> tuple[Any, ...] | None:
    """Configurations with equal keys can train as one bundle; None: this one cannot
    (only MLPs fuse)."""
    if cfg.model != "mlp":
        return None
    return tuple(
        (key, value) for key, value in dataclasses.asdict(cfg).items() if key not in FUSABLE_KEYS
    )


def _runs(values: Sequence[Any]) -> list[tuple[int, int, Any]]:
    """(start, stop, value) of each run of equal consecutive values."""
    runs: list[tuple[int, int, Any]] = []
    for index, value in enumerate(values):
        if runs and runs[-1][2] == value:
            runs[-1] = (runs[-1][0], index + 1, value)
        else:
            runs.append((index, index + 1, value))
    return runs


class FusedMLP:
    """K MLPs of one shape as stacked tensors, built from (and equal to) K `MLP`s.

    Parameters, in `params` order: the first layer's weight (in, K, width) and bias
    (K, width), then per later layer a weight (K, in, out) and a bias (K, 1, out).
    `model_axis[i]` is the axis of `params[i]` that indexes the models.
    """

    def __init__(self, members: Sequence[MLP], losses: Sequence[str]) -> None:
        self.count = len(members)
        self.weights = [torch.stack([m.weights[0] for m in members], 1)]
        self.biases = [torch.stack([m.biases[0] for m in members])]
        for i in range(1, len(members[0].weights)):
            self.weights.append(torch.stack([m.weights[i] for m in members]))
            self.biases.append(torch.stack([m.biases[i] for m in members]).unsqueeze(1))
        self.params = [p for layer in zip(self.weights, self.biases, strict=True) for p in layer]
        self.model_axis = [1, 0] + [0] * (len(self.params) - 2)
        runs = _runs([m.activation for m in members])
        # Each run of members sharing an activation, as sizes for Tensor.split (one call
        # for all the views: Python-level slicing costs a microsecond or two each).
        self.activation_sizes = [stop - start for start, stop, _ in runs]
        self.activation_functions: list[Activation] = [function for _, _, function in runs]
        self.losses: list[tuple[int, int, str]] = _runs(list(losses))
        self._grads = [torch.empty_like(p) for p in self.params]
        self._ones = torch.ones(self.count, 1, 0, device=self.params[0].device)

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
        """All K first layers in one matmul over the shared batch: (K, batch, width)."""
        weight, bias = self.weights[0], self.biases[0]
        z = torch.addmm(bias.view(-1), x, weight.view(weight.shape[0], -1))
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
        batch = x.shape[0]
        scale = 1.0 / batch
        if self._ones.shape[2] < batch:
            self._ones = torch.ones(self.count, 1, batch, device=x.device)
        ones = self._ones[:, :, :batch]
        grads = self._grads

        layer_inputs = []
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
                grad_out[start:stop] = logits_gradient(loss, h[start:stop], one_hot)
        for i in reversed(range(1, len(self.weights))):
            inputs = layer_inputs[i - 1]
            weight_grad, bias_grad = grads[2 * i], grads[2 * i + 1]
            # beta=0 overwrites the buffer; alpha folds in the batch mean.
            torch.baddbmm(
                weight_grad, inputs.transpose(1, 2), grad_out, beta=0, alpha=scale,
                out=weight_grad,
            )  # fmt: skip
            torch.baddbmm(bias_grad, ones, grad_out, beta=0, alpha=scale, out=bias_grad)
            upstream = torch.bmm(grad_out, self.weights[i].transpose(1, 2))
            # The first layer's gradient is wanted (batch, K, width): one matmul below.
            if i == 1:
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


def check_fusable(cfgs: Sequence[TrainConfig]) -> None:
    """ConfigError naming the first key on which the configurations may not differ."""
    for cfg in cfgs:
        if cfg.model != "mlp":
            raise ConfigError(f"only MLPs fuse; got model {cfg.model!r}")
    first = dataclasses.asdict(cfgs[0])
    for cfg in cfgs[1:]:
        for key, value in dataclasses.asdict(cfg).items():
            if key not in FUSABLE_KEYS and value != first[key]:
                raise ConfigError(
                    f"configurations fuse only when they share {key}; got {first[key]!r}"
                    f" and {value!r}"
                )


def train_fused(
    configs: Sequence[Mapping[str, Any]],
    dataset: Dataset | None = None,
    report: BundleReport | None = None,
) -> list[dict[str, Any]]:
    """Train `configs` as one fused bundle; each one's final metrics, in their order.

    `report` is called after every epoch with the list of each configuration's epoch
    metrics (what `trainers.train` reports for one). The configurations must agree on
    every key but FUSABLE_KEYS; ConfigError names the first key they do not.
    """
    if not configs:
        raise ConfigError("a bundle needs at least one configuration")
    cfgs, dataset = checked_configs(configs, dataset)
    check_fusable(cfgs)
    shared = cfgs[0]
    device, splits, weights_seed, order_generator = prepare(shared, dataset)
    # Members sorted so that shared activations and losses form runs: fewer kernels.
    order = sorted(range(len(cfgs)), key=lambda i: (cfgs[i].activation, cfgs[i].loss))
    members = [cfgs[i] for i in order]
    in_features = dataset.image_shape[0] * dataset.image_shape[1]
    mlps = [
        MLP(in_features, shared.hidden, c.activation, c.kernel_initializer,
            torch.Generator().manual_seed(weights_seed), device)
        for c in members
    ]  # fmt: skip
    params = parameter_count(mlps[0])
    losses = [c.loss for c in members]
    model = FusedMLP(mlps, losses)
    del mlps  # the stacks are copies
    optimizer = make_optimizer(
        shared.optimizer, model.params, model.learning_rates([c.lr for c in members])
    )

    def in_given_order(per_member: list[Any]) -> list[Any]:
        return [per_member[order.index(i)] for i in range(len(order))]

    epoch_order = EpochOrder(splits.train)

    started = time.perf_counter()
    metrics: list[dict[str, Any]] = []
    predictions = torch.empty(0)
    for epoch in range(1, shared.epochs + 1):
        epoch_started = time.perf_counter()
        images, labels = epoch_order(shuffled_order(shared, order_generator, len(splits.train)))
        trained = train_fused_epoch(model, optimizer.step, images, labels, shared.batch_size)
        validation = _evaluate(model, splits.validation)
        values = _losses_and_accuracies(*trained, losses) + _losses_and_accuracies(
            *validation, losses
        )
        # (train | validation, member, loss | accuracy) -> per member: the four values
        rows = torch.stack(values).view(2, -1, 2).transpose(0, 1).flatten(1).tolist()
        epoch_time_s = time.perf_counter() - epoch_started
        metrics = [epoch_metrics(epoch, row, epoch_time_s) for row in rows]
        predictions = validation[0].argmax(2)
        if report is not None:
            report(in_given_order(metrics))
    train_time_s = time.perf_counter() - started

    tests: list[Any] = [None] * len(members)
    if splits.test is not splits.validation:
        values = _losses_and_accuracies(*_evaluate(model, splits.test), losses)
        tests = [tuple(pair) for pair in torch.stack(values).view(-1, 2).tolist()]
    finals = [
        final_metrics(
            metrics[j], tests[j], predictions[j], splits, train_time_s, shared.epochs, params,
            device,
        )
        for j in range(len(members))
    ]  # fmt: skip
    return in_given_order(finals)


def train_fused_epoch(
    model: FusedMLP,
    step: Callable[[list[torch.Tensor]], None],
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over `images` in their order, as trainers.train.train_epoch makes it;
    every model's logits (K, N, classes) and the labels."""
    x = images.flatten(1)
    one_hot = F.one_hot(labels, NUM_CLASSES).to(x.dtype)
    logits = torch.empty(model.count, len(labels), NUM_CLASSES, device=x.device)
    batches = zip(x.split(batch_size), one_hot.split(batch_size), logits.split(batch_size, 1),
                  strict=True)  # fmt: skip
    for x_batch, one_hot_batch, logits_batch in batches:
        step(model.gradients(x_batch, one_hot_batch, logits_batch))
    return logits, labels


def _evaluate(model: FusedMLP, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
    x = split.images.flatten(1)
    chunks = [model.forward(x[i : i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)]
    return torch.cat(chunks, 1), split.labels


def _losses_and_accuracies(
    logits: torch.Tensor, labels: torch.Tensor, losses: Sequence[str]
) -> list[torch.Tensor]:
    """Mean loss and accuracy of each model, flat: [loss 0, accuracy 0, loss 1, ...]."""
    with torch.no_grad():
        accuracies = (logits.argmax(2) == labels).float().mean(1)
        values = []
        for k, loss in enumerate(losses):
            values += [per_sample_loss(loss, logits[k], labels).mean(), accuracies[k]]
    return values
