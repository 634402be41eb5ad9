"""`train(config, dataset, report)`: one model, Keras' fit() semantics, reported per epoch.

The whole training split lives on the device as one float tensor. Each epoch gathers it
once into a seeded permutation, so a batch is a contiguous slice (no DataLoader, no copy
per step), and the step writes its logits into an epoch-long buffer: the training loss
and accuracy, Keras' running means over the epoch's batches, are computed from that
buffer once per epoch, so the step loop never waits on the device.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainers.config import ConfigError, TrainConfig
from trainers.data import NUM_CLASSES, Dataset, Split, Splits, load_dataset, make_splits
from trainers.losses import per_sample_loss
from trainers.models import Model, build_model, parameter_count
from trainers.optim import make_optimizer

Report = Callable[[dict[str, Any]], None]
EVAL_CHUNK = 2048  # rows per forward pass when evaluating: bounds CNN activation memory


def train(
    config: Mapping[str, Any], dataset: Dataset | None = None, report: Report | None = None
) -> dict[str, Any]:
    """Train one model as `config` says and return its final metrics.

    `dataset` is loaded from the config's data root when not given (a sweep passes the
    one the driver loaded). `report` is called after every epoch with `epoch` (1-based),
    `loss`, `accuracy`, `val_loss`, `val_accuracy` and `epoch_time_s`. Bad config raises
    ConfigError before any work.
    """
    (cfg,), dataset = checked_configs([config], dataset)
    device, splits, weights_seed, order_generator = prepare(cfg, dataset)
    model = build_model(
        cfg.model,
        dataset.image_shape,
        cfg.hidden,
        cfg.activation,
        cfg.kernel_initializer,
        torch.Generator().manual_seed(weights_seed),
        device,
    )
    optimizer = make_optimizer(cfg.optimizer, model.params, cfg.lr)

    epoch_order = EpochOrder(splits.train)

    started = time.perf_counter()
    metrics: dict[str, Any] = {}
    predictions = torch.empty(0, dtype=torch.long)
    for epoch in range(1, cfg.epochs + 1):
        epoch_started = time.perf_counter()
        images, labels = epoch_order(shuffled_order(cfg, order_generator, len(splits.train)))
        loss, accuracy = train_epoch(
            model, optimizer.step, images, labels, cfg.batch_size, cfg.loss
        )
        val_loss, val_accuracy, predictions = evaluate(model, splits.validation, cfg.loss)
        values = torch.stack([loss, accuracy, val_loss, val_accuracy]).tolist()  # one sync
        metrics = epoch_metrics(epoch, values, time.perf_counter() - epoch_started)
        if report is not None:
            report(metrics)
    train_time_s = time.perf_counter() - started

    if splits.test is splits.validation:
        test = None
    else:
        test = tuple(float(v) for v in evaluate(model, splits.test, cfg.loss)[:2])
    return final_metrics(
        metrics, test, predictions, splits, train_time_s, cfg.epochs, parameter_count(model), device
    )


def checked_configs(
    configs: Sequence[Mapping[str, Any]], dataset: Dataset | None
) -> tuple[list[TrainConfig], Dataset]:
    """The configs validated against `dataset`, loaded from the first one's data root when
    not given (a sweep passes the one its driver loaded)."""
    if dataset is None:
        first = TrainConfig.from_dict(configs[0])
        dataset = load_dataset(first.dataset, first.data_dir, first.download)
    return [check_config(config, dataset) for config in configs], dataset


def prepare(
    cfg: TrainConfig, dataset: Dataset
) -> tuple[torch.device, Splits, int, torch.Generator]:
    """The device (with this process's CPU threads set), the splits on it, the seed of the
    initial weights and the generator of the batch order."""
    device = resolve_device(cfg.device)
    torch.set_num_threads(resolve_threads(cfg.threads))
    weights_seed, order_seed = _seeds(cfg.seed)
    splits = make_splits(dataset, cfg.validation_split, cfg.seed, device)
    return device, splits, weights_seed, torch.Generator().manual_seed(order_seed)


def shuffled_order(cfg: TrainConfig, generator: torch.Generator, count: int) -> torch.Tensor | None:
    """The next epoch's permutation of the training split, None when not shuffling."""
    return torch.randperm(count, generator=generator) if cfg.shuffle else None


def epoch_metrics(epoch: int, values: list[float], epoch_time_s: float) -> dict[str, Any]:
    """What `report` gets after each epoch; `values` are loss, accuracy, val_loss and
    val_accuracy."""
    names = ("loss", "accuracy", "val_loss", "val_accuracy")
    return {"epoch": epoch, **dict(zip(names, values, strict=True)), "epoch_time_s": epoch_time_s}


def final_metrics(
    last_epoch: dict[str, Any],
    test: tuple[float, float] | None,
    predictions: torch.Tensor,
    splits: Splits,
    train_time_s: float,
    epochs: int,
    params: int,
    device: torch.device,
) -> dict[str, Any]:
    """What a trainer returns: the last epoch's metrics, the test set's loss
    and accuracy (None: the validation set is the test set) and the validation confusion."""
    test_loss, test_accuracy = test or (last_epoch["val_loss"], last_epoch["val_accuracy"])
    confusion = torch.bincount(
        splits.validation.labels * NUM_CLASSES + predictions, minlength=NUM_CLASSES**2
    )
    return {
        **last_epoch,
        "test_loss": test_loss,
        "test_accuracy": test_accuracy,
        "confusion": confusion.view(NUM_CLASSES, NUM_CLASSES).tolist(),  # true x predicted
        "train_time_s": train_time_s,
        "epochs_completed": epochs,
        "params": params,
        "device": device.type,
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
    }


def check_config(config: Mapping[str, Any], dataset: Dataset) -> TrainConfig:
    """Validate `config` against the data it will train on; ConfigError names the bad value.

    Cheap enough to run on every configuration of a sweep before any trial starts.
    """
    cfg = TrainConfig.from_dict(config)
    if dataset.name != cfg.dataset:
        raise ConfigError(f"dataset is {cfg.dataset!r} but the data given is {dataset.name!r}")
    train_count = math.ceil(len(dataset.train_labels) * (1 - cfg.validation_split))
    if cfg.batch_size > train_count:
        raise ConfigError(
            f"batch_size must be <= the training split ({train_count} {cfg.dataset} images),"
            f" got {cfg.batch_size}"
        )
    if cfg.model != "mlp":  # an MLP fits any image; a CNN's layers must not shrink to nothing
        try:
            build_model(
                cfg.model,
                dataset.image_shape,
                (),
                "relu",
                "glorot_uniform",
                torch.Generator(),
                torch.device("cpu"),
            )
        except ValueError as error:
            raise ConfigError(
                f"model {cfg.model!r} does not fit {cfg.dataset!r}: {error}"
            ) from error
    return cfg


class EpochOrder:
    """A split gathered into each epoch's order, into buffers kept from epoch to epoch:
    a fresh epoch-sized tensor would cost its page faults every epoch, for MNIST on the
    CPU three times the gather itself."""

    def __init__(self, split: Split) -> None:
        self.split = split
        self._images = torch.empty(0)
        self._labels = torch.empty(0, dtype=torch.long)

    def __call__(self, order: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) in `order`; the split as it is when `order` is None."""
        images, labels = self.split.images, self.split.labels
        if order is None:
            return images, labels
        if self._images.shape != images.shape:
            self._images, self._labels = torch.empty_like(images), torch.empty_like(labels)
        order = order.to(images.device)
        torch.index_select(images, 0, order, out=self._images)
        torch.index_select(labels, 0, order, out=self._labels)
        return self._images, self._labels


def train_epoch(
    model: Model,
    step: Callable[[list[torch.Tensor]], None],
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    loss: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over `images` in their order; the epoch's mean loss and accuracy (on
    device)."""
    x = model.inputs(images)
    one_hot = F.one_hot(labels, NUM_CLASSES).to(x.dtype)
    logits = torch.empty(len(labels), NUM_CLASSES, device=x.device)
    # The batches' views made in one call each: Python-level slicing costs a microsecond
    # or two a step.
    batches = zip(x.split(batch_size), one_hot.split(batch_size), logits.split(batch_size),
                  strict=True)  # fmt: skip
    for x_batch, one_hot_batch, logits_batch in batches:
        step(model.gradients(x_batch, one_hot_batch, logits_batch, loss))
    return _loss_and_accuracy(logits, labels, loss)


def evaluate(
    model: Model, split: Split, loss: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean loss, accuracy and the predicted classes on `split`, left on the device."""
    x = model.inputs(split.images)
    logits = torch.cat([model.forward(x[i : i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)])
    return (*_loss_and_accuracy(logits, split.labels, loss), logits.argmax(1))


def _loss_and_accuracy(
    logits: torch.Tensor, labels: torch.Tensor, loss: str
) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        mean_loss = per_sample_loss(loss, logits, labels).mean()
        accuracy = (logits.argmax(1) == labels).float().mean()
    return mean_loss, accuracy


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device is 'cuda' but no CUDA device is visible")
    return torch.device(name)


def resolve_threads(threads: int | None) -> int:
    """The CPU threads to use: as configured, else OMP_NUM_THREADS (Ray sets it to the
    trial's CPUs), else every CPU this process may run on."""
    if threads is not None:
        return threads
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]):
        return int(os.environ["OMP_NUM_THREADS"])
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model where Linux tells it (platform.processor() is
    often empty there)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _seeds(seed: int) -> tuple[int, int]:
    """Independent streams for the initial weights and the batch order. Keeping the order
    apart from the weights means configs that share a seed see the same batches."""
    weights, order = np.random.SeedSequence(seed).spawn(2)
    return int(weights.generate_state(1)[0]), int(order.generate_state(1)[0])
