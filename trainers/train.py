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
from contextlib import nullcontext
from typing import Any

import torch

from trainers.config import ConfigError, TrainConfig
from trainers.data import NUM_CLASSES, Dataset, Splits, load_dataset, make_splits
from trainers.fused import check_fusable
from trainers.members import Training, forward, losses_and_accuracies
from trainers.models import build_model, parameter_count

Report = Callable[[dict[str, Any]], None]
MembersReport = Callable[[list[dict[str, Any]]], None]


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
    bundle = Bundle(configs, dataset)
    while bundle.epochs_left:
        bundle.launch_epoch()
        metrics = bundle.collect_epoch()
        if report is not None:
            report(metrics)
    return bundle.finish()


class Bundle:
    """`train_members` an epoch at a time, each epoch in two halves: `launch_epoch` queues
    its work on the device (on CUDA, on the bundle's own stream), `collect_epoch` waits for
    it and returns the metrics. A pack (trainers.pack) launches several bundles' epochs
    before collecting any, so that their kernels overlap on one GPU."""

    def __init__(
        self,
        configs: Sequence[Mapping[str, Any]],
        dataset: Dataset | None,
        shared_splits: dict[Any, Splits] | None = None,
    ) -> None:
        """`shared_splits` lets the bundles of a pack share one copy of the data per
        device and validation split."""
        if not configs:
            raise ConfigError("a bundle needs at least one configuration")
        cfgs, dataset = checked_configs(configs, dataset)
        if len(cfgs) > 1:
            check_fusable(cfgs)
        shared = self.shared = cfgs[0]
        self.device = resolve_device(shared.device)
        pin_precision()
        torch.set_num_threads(resolve_threads(shared.threads))
        place = (dataset.name, self.device, shared.validation_split)
        splits = (shared_splits or {}).get(place)
        if splits is None:
            splits = make_splits(dataset, shared.validation_split, shared.seed, self.device)
            if shared_splits is not None:
                shared_splits[place] = splits
        self.splits = splits
        self.stream = None
        if self.device.type == "cuda":
            self.stream = torch.cuda.Stream(self.device)
            self.stream.wait_stream(torch.cuda.current_stream(self.device))  # the data's copy
        with self._on_stream():
            # Members sorted so that shared activations and losses form runs: fewer kernels.
            self.order = sorted(range(len(cfgs)), key=lambda i: (cfgs[i].activation, cfgs[i].loss))
            members = [cfgs[i] for i in self.order]
            self.training = Training(members, dataset.image_shape, self.splits.train,
                                     self.device, self.stream)  # fmt: skip
        self.epoch = 0
        self.metrics: list[dict[str, Any]] = []
        self.train_time_s = 0.0
        self._launched: tuple[float, torch.Tensor, torch.Tensor] | None = None

    @property
    def epochs_left(self) -> int:
        return self.shared.epochs - self.epoch

    def _on_stream(self) -> Any:
        return torch.cuda.stream(self.stream) if self.stream is not None else nullcontext()

    def capture(self) -> None:
        """Capture the steps as CUDA graphs, where they are wanted, before any epoch:
        trainers.pack calls it for every bundle first, since a capture waits for the
        whole device. `launch_epoch` does it when nobody did."""
        with self._on_stream():
            self.training.capture()

    def launch_epoch(self) -> None:
        """Queue the next epoch's training and validation; nothing waits for the device."""
        started = time.perf_counter()
        with self._on_stream():
            self.training.train_epoch()
            values, logits = self._epoch_values()
        self._launched = (started, values, logits)

    def _epoch_values(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The epoch's loss, accuracy, val_loss and val_accuracy, (K, 4), and the
        validation logits, all left on the device."""
        trained = self.training.train_metrics()
        logits = forward(self.training.model, self.splits.validation)
        validated = losses_and_accuracies(logits, self.splits.validation.labels,
                                          self.training.losses)  # fmt: skip
        return torch.cat([trained, validated], 1), logits

    def collect_epoch(self) -> list[dict[str, Any]]:
        """The launched epoch's metrics, one mapping per configuration in the given order."""
        if self._launched is None:
            raise RuntimeError("collect_epoch before launch_epoch")
        started, values, self._logits = self._launched
        with self._on_stream():
            if self.training.settle():  # the graphs' first epoch was replaced by the eager one
                values, self._logits = self._epoch_values()
            rows = values.tolist()  # one sync
        self._launched = None
        self.epoch += 1
        epoch_time_s = time.perf_counter() - started
        self.train_time_s += epoch_time_s
        self.metrics = [epoch_metrics(self.epoch, row, epoch_time_s) for row in rows]
        return self.in_given_order(self.metrics)

    def finish(self) -> list[dict[str, Any]]:
        """Each configuration's final metrics, in the given order (after the last epoch)."""
        splits, losses, count = self.splits, self.training.losses, len(self.order)
        with self._on_stream():
            tests: list[Any] = [None] * count
            if splits.test is not splits.validation:
                logits = forward(self.training.model, splits.test)
                values = losses_and_accuracies(logits, splits.test.labels, losses)
                tests = [tuple(pair) for pair in values.tolist()]
            predictions = self._logits.argmax(2)
            params = parameter_count(self.training.model) // count
            finals = [
                final_metrics(self.metrics[k], tests[k], predictions[k], splits,
                              self.train_time_s, self.epoch, params, self.device)
                for k in range(count)
            ]  # fmt: skip
        return self.in_given_order(finals)

    def in_given_order(self, per_member: list[Any]) -> list[Any]:
        return [per_member[self.order.index(i)] for i in range(len(self.order))]


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
        "precision": precision(),
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


def pin_precision() -> None:
    """Full fp32 for matmuls and convolutions: cuDNN convolutions default to TF32 on Ampere
    and later (about 1e-3 relative), which would make a GPU's numbers differ from the
    CPU's and from the graphs' self-check. Set through torch's fp32_precision flags only:
    mixing them with the legacy allow_tf32 ones makes torch raise."""
    torch.backends.cuda.matmul.fp32_precision = "ieee"
    torch.backends.cudnn.conv.fp32_precision = "ieee"


def precision() -> str:
    """The float32 precision in force, as the Parquet row records it."""
    matmul = torch.backends.cuda.matmul.fp32_precision
    conv = torch.backends.cudnn.conv.fp32_precision
    return f"fp32 (matmul {matmul}, conv {conv})"


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
