"""A plain reference loop for one MLP configuration: autograd, Python slicing, the Keras
update rules written out. It shares nothing with the trainer's step but the config, the
data and the seeds' derivation (which batches and initial weights a seed means), so the
trainer agreeing with it means the hand-written backward, the stacking, the device-side
batch picking and the optimizers are right."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from trainers.bundle import seeds
from trainers.config import TrainConfig
from trainers.data import Dataset, make_splits
from trainers.models import MLP

ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "leaky_relu": lambda z: F.leaky_relu(z, 0.2),
    "selu": F.selu,
    "elu": F.elu,
    "exponential": torch.exp,
    "linear": lambda z: z,
    "softmax": lambda z: torch.softmax(z, -1),
}


def sample_losses(loss: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if loss == "mse":
        one_hot = F.one_hot(labels, 10).to(logits.dtype)
        return (torch.softmax(logits, -1) - one_hot).square().mean(-1)
    return F.cross_entropy(logits, labels, reduction="none")


def reference_train(config: dict[str, Any], dataset: Dataset) -> list[dict[str, float]]:
    """Each epoch's loss, accuracy, val_loss and val_accuracy."""
    cfg = TrainConfig.from_dict(config)
    weights_seed, order_seed = seeds(cfg.seed)
    initial = MLP(math.prod(dataset.image_shape), cfg.hidden, cfg.activation,
                  cfg.kernel_initializer, torch.Generator().manual_seed(weights_seed),
                  torch.device("cpu"))  # fmt: skip
    params = [p.clone().requires_grad_() for p in initial.params]
    activation = ACTIVATIONS[cfg.activation]
    splits = make_splits(dataset, cfg.validation_split, cfg.seed, torch.device("cpu"))
    images, labels = splits.train.images.flatten(1), splits.train.labels
    orders = torch.Generator().manual_seed(order_seed)
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    t = 0

    def forward(x: torch.Tensor) -> torch.Tensor:
        for i in range(0, len(params) - 2, 2):
            x = activation(x @ params[i] + params[i + 1])
        return x @ params[-2] + params[-1]

    history = []
    for _ in range(cfg.epochs):
        order = torch.randperm(len(labels), generator=orders) if cfg.shuffle else None
        losses, hits = [], []
        for start in range(0, len(labels), cfg.batch_size):
            rows = slice(start, start + cfg.batch_size)
            index = order[rows] if order is not None else torch.arange(len(labels))[rows]
            logits = forward(images[index])
            per_sample = sample_losses(cfg.loss, logits, labels[index])
            losses.append(per_sample.detach())
            hits.append((logits.argmax(1) == labels[index]).detach())
            grads = torch.autograd.grad(per_sample.mean(), params)
            t += 1
            with torch.no_grad():
                for i, (param, grad) in enumerate(zip(params, grads, strict=True)):
                    if cfg.optimizer == "sgd":
                        param -= cfg.lr * grad
                        continue
                    alpha = cfg.lr * math.sqrt(1 - 0.999**t) / (1 - 0.9**t)
                    m[i] += (grad - m[i]) * (1 - 0.9)
                    v[i] += (grad * grad - v[i]) * (1 - 0.999)
                    param -= alpha * m[i] / (v[i].sqrt() + 1e-7)
        with torch.no_grad():
            logits = forward(splits.validation.images.flatten(1))
            truth = splits.validation.labels
            history.append({
                "loss": float(torch.cat(losses).mean()),
                "accuracy": float(torch.cat(hits).float().mean()),
                "val_loss": float(sample_losses(cfg.loss, logits, truth).mean()),
                "val_accuracy": float((logits.argmax(1) == truth).float().mean()),
            })  # fmt: skip
    return history
