"""The training loop: K >= 1 configurations trained together, Keras' fit() semantics.

`train(config)` trains one model; `train_members(configs)` trains a bundle, K same-shape
MLPs stacked into one model (trainers.fused), each member exactly as it would train
alone. Both are this one loop over `Members` (trainers.step): K = 1 is the ordinary trial.

The whole training split lives on the device as one float tensor. Each epoch takes a
seeded permutation per batch order (one, or one per member when their seeds differ); the
step writes its logits into an epoch-long buffer, and the training loss and accuracy,
Keras' running means over the epoch's batches, are computed from that buffer once per
epoch, so the step loop never waits on the device. On CUDA the epoch's steps run as
captured graphs (trainers.graphs) unless the config says `graphs: off`.
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

from trainers.config import ConfigError, TrainConfig
from trainers.data import NUM_CLASSES, Dataset, Split, Splits, load_dataset, make_splits
from trainers.fused import FusedMLP, check_fusable
from trainers.graphs import GraphedEpoch, capture_epoch
from trainers.losses import per_sample_loss
from trainers.models import MLP, build_model, parameter_count
from trainers.optim import make_optimizer
from trainers.step import Members, PickedEpoch, Single, SlicedEpoch, Step

Report = Callable[[dict[str, Any]], None]
MembersReport = Callable[[list[dict[str, Any]]], None]
EVAL_CHUNK = 2048  # rows per forward pass when evaluating: bounds CNN activation memory
# None: batches picked on the device only where they must be (CUDA, or members with
# batch orders of their own); True: always, which lets the CPU tests run the graph-safe
# step.
PICK_ON_DEVICE: bool | None = None


def train(
    config: Mapping[str, Any], dataset: Dataset | None = None, report: Report | None = None
) -> dict[str, Any]:
    """Train one model as `config` says and return its final metrics.

    `dataset` is loaded from the config's data root when not given (a sweep passes the
    one the driver loaded). `report` is called after every epoch with `epoch` (1-based),
    `loss`, `accuracy`, `val_loss`, `val_accuracy` and `epoch_time_s`. Bad config raises
    ConfigError before any work.
    """
    each = None if report is None else (lambda metrics: report(metrics[0]))
    return train_members([config], dataset, each)[0]


def train_members(
    configs: Sequence[Mapping[str, Any]],
    dataset: Dataset | None = None,
    report: MembersReport | None = None,
) -> list[dict[str, Any]]:
    """Train `configs` together; each one's final metrics, in their order.

    More than one must be MLPs agreeing on every key but trainers.fused.FUSABLE_KEYS
    (ConfigError names the first key they do not). `report` is called after every epoch
    with the list of each configuration's epoch metrics (what `train` reports for one).
    """
    if not configs:
        raise ConfigError("a bundle needs at least one configuration")
    cfgs, dataset = checked_configs(configs, dataset)
    if len(cfgs) > 1:
        check_fusable(cfgs)
    shared = cfgs[0]
    device = resolve_device(shared.device)
    torch.set_num_threads(resolve_threads(shared.threads))
    splits = make_splits(dataset, shared.validation_split, shared.seed, device)
    # Members sorted so that shared activations and losses form runs: fewer kernels.
    order = sorted(range(len(cfgs)), key=lambda i: (cfgs[i].activation, cfgs[i].loss))
    members = [cfgs[i] for i in order]
    training = Training(members, dataset.image_shape, splits.train, device)
    model, losses = training.model, training.losses

    def in_given_order(per_member: list[Any]) -> list[Any]:
        return [per_member[order.index(i)] for i in range(len(order))]

    started = time.perf_counter()
    metrics: list[dict[str, Any]] = []
    predictions = torch.empty(0, dtype=torch.long)
    for number in range(1, shared.epochs + 1):
        epoch_started = time.perf_counter()
        trained = training.train_epoch()
        validation_logits = forward(model, splits.validation)
        validated = losses_and_accuracies(validation_logits, splits.validation.labels, losses)
        rows = torch.cat([trained, validated], 1).tolist()  # one sync
        epoch_time_s = time.perf_counter() - epoch_started
        metrics = [epoch_metrics(number, row, epoch_time_s) for row in rows]
        predictions = validation_logits.argmax(2)
        if report is not None:
            report(in_given_order(metrics))
    train_time_s = time.perf_counter() - started

    tests: list[Any] = [None] * len(members)
    if splits.test is not splits.validation:
        values = losses_and_accuracies(forward(model, splits.test), splits.test.labels, losses)
        tests = [tuple(pair) for pair in values.tolist()]
    params = parameter_count(model) // len(members)
    finals = [
        final_metrics(metrics[k], tests[k], predictions[k], splits, train_time_s, shared.epochs,
                      params, device)
        for k in range(len(members))
    ]  # fmt: skip
    return in_given_order(finals)


class Training:
    """The members of one run, their step and the epochs that feed it: what the loop
    drives (and bench/ times). `members` share everything but trainers.fused.FUSABLE_KEYS."""

    def __init__(
        self,
        members: Sequence[TrainConfig],
        image_shape: tuple[int, int],
        split: Split,
        device: torch.device,
    ) -> None:
        shared = members[0]
        own_orders = shared.shuffle and len({c.seed for c in members}) > 1
        model = build_members(members, image_shape, device, shared_input=not own_orders)
        lr: Any = shared.lr if len(members) == 1 else model.learning_rates([c.lr for c in members])
        self.model = model
        self.losses = [c.loss for c in members]
        self.step = Step(model, make_optimizer(shared.optimizer, model.params, lr))
        self.orders = BatchOrders(members if own_orders else members[:1], len(split))
        self.shuffle = shared.shuffle
        self.epoch = make_epoch(model, split, shared.batch_size, len(self.orders), device)
        self.runner: SlicedEpoch | PickedEpoch | GraphedEpoch = self.epoch
        self._capture = isinstance(self.epoch, PickedEpoch) and wants_graphs(shared, device)

    def train_epoch(self) -> torch.Tensor:
        """One epoch; each member's mean loss and accuracy over it, (K, 2) on the device.
        The first one captures the steps as CUDA graphs where the config wants them."""
        labels = self.epoch.start(self.orders.next() if self.shuffle else None)
        if self._capture and isinstance(self.epoch, PickedEpoch):
            self._capture = False
            self.runner = capture_epoch(self.epoch, self.step) or self.epoch
        self.runner.run(self.step)
        return losses_and_accuracies(self.epoch.logits, labels, self.losses)


def build_members(
    cfgs: Sequence[TrainConfig],
    image_shape: tuple[int, int],
    device: torch.device,
    shared_input: bool,
) -> Members:
    """The members' models with each one's initial weights: one model alone, else the
    MLPs stacked."""
    generators = [torch.Generator().manual_seed(_seeds(c.seed)[0]) for c in cfgs]
    if len(cfgs) == 1:
        cfg = cfgs[0]
        model = build_model(cfg.model, image_shape, cfg.hidden, cfg.activation,
                            cfg.kernel_initializer, generators[0], device)  # fmt: skip
        return Single(model, cfg.loss)
    mlps = [
        MLP(image_shape[0] * image_shape[1], c.hidden, c.activation, c.kernel_initializer,
            generator, device)
        for c, generator in zip(cfgs, generators, strict=True)
    ]  # fmt: skip
    return FusedMLP(mlps, [c.loss for c in cfgs], shared_input)


def make_epoch(
    model: Members, split: Split, batch_size: int, orders: int, device: torch.device
) -> SlicedEpoch | PickedEpoch:
    """How an epoch feeds the step: picked on the device where graphs may capture it or
    members read batches of their own, else as slices (cheaper on the CPU)."""
    if PICK_ON_DEVICE or (PICK_ON_DEVICE is None and (device.type == "cuda" or orders > 1)):
        return PickedEpoch(model, split, batch_size, orders)
    return SlicedEpoch(model, split, batch_size)


def wants_graphs(cfg: TrainConfig, device: torch.device) -> bool:
    """`graphs: auto` captures the steps on CUDA; nothing is captured on the CPU."""
    return cfg.graphs == "auto" and device.type == "cuda"


class BatchOrders:
    """Each epoch's permutations of the training split, one per generator: from each
    member's seed, drawn on the CPU so that every device sees the same batches."""

    def __init__(self, cfgs: Sequence[TrainConfig], count: int) -> None:
        self.generators = [torch.Generator().manual_seed(_seeds(c.seed)[1]) for c in cfgs]
        self.count = count

    def __len__(self) -> int:
        return len(self.generators)

    def next(self) -> torch.Tensor:
        """The next epoch's orders, (orders, N)."""
        return torch.stack([torch.randperm(self.count, generator=g) for g in self.generators])


def checked_configs(
    configs: Sequence[Mapping[str, Any]], dataset: Dataset | None
) -> tuple[list[TrainConfig], Dataset]:
    """The configs validated against `dataset`, loaded from the first one's data root when
    not given (a sweep passes the one its driver loaded)."""
    if dataset is None:
        first = TrainConfig.from_dict(configs[0])
        dataset = load_dataset(first.dataset, first.data_dir, first.download)
    return [check_config(config, dataset) for config in configs], dataset


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


def forward(model: Members, split: Split) -> torch.Tensor:
    """Every member's logits on `split`, (K, N, classes), in a few large launches."""
    x = model.inputs(split.images)
    return torch.cat(
        [model.forward(x[i : i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)], 1
    )


def losses_and_accuracies(
    logits: torch.Tensor, labels: torch.Tensor, losses: Sequence[str]
) -> torch.Tensor:
    """Each member's mean loss and accuracy, (K, 2), left on the device. `labels` is (N,)
    or (1 | K, N): one order for all members or each member's own."""
    labels = labels.view(-1, labels.shape[-1])
    with torch.no_grad():
        values = []
        for k, loss in enumerate(losses):
            member_labels = labels[k if len(labels) > 1 else 0]
            values.append(per_sample_loss(loss, logits[k], member_labels).mean())
        accuracies = (logits.argmax(2) == labels).float().mean(1)
    return torch.stack([torch.stack(values), accuracies], 1)


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
