"""A bundle: K >= 1 configurations trained together, and everything they train with.

K = 1 is the ordinary trial: one model of its own kernels. K > 1 are same-shape MLPs
stacked into one model (trainers.fused), each member exactly as it would train alone.
`Bundle` holds the members' model, their step (trainers.step), the epoch that feeds it
and, on CUDA, the stream the bundle queues its work on and the graphs captured there
(trainers.graphs). The loop (trainers.train) drives it an epoch at a time, each epoch in
two halves: `launch_epoch` queues the work, `collect_epoch` waits for it and returns the
metrics, so that a pack (trainers.pack) can launch several bundles' epochs before
collecting any and their kernels overlap on one GPU.

The whole training split lives on the device as one float tensor. Each epoch takes a
seeded permutation per batch order (one, or one per member when their seeds differ); the
step writes its logits into an epoch-long buffer, and the training loss and accuracy,
Keras' running means over the epoch's batches, are computed from that buffer once per
epoch, so the step loop never waits on the device.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch

from trainers.config import ConfigError, TrainConfig, check_fusable, checked_configs
from trainers.data import NUM_CLASSES, Dataset, Split, Splits, make_splits
from trainers.device import device_name, pin_precision, precision, resolve_device, resolve_threads
from trainers.fused import FusedMLP
from trainers.graphs import CUDNN_RTOL, FirstEpoch, GraphedEpoch, capture_epoch
from trainers.losses import per_sample_loss
from trainers.models import MLP, build_model, parameter_count
from trainers.optim import make_optimizer
from trainers.step import Members, PickedEpoch, Single, SlicedEpoch, Step, make_epoch

EVAL_CHUNK = 2048  # rows per forward pass when evaluating: bounds CNN activation memory


class Bundle:
    """The members of one bundle, their step, the epochs that feed it and their metrics.
    `cfgs` share everything but trainers.config.FUSABLE_KEYS; `splits` are on the device
    the bundle trains on. `Bundle.from_configs` builds one from a sweep's configurations."""

    def __init__(self, cfgs: Sequence[TrainConfig], splits: Splits) -> None:
        shared = self.shared = cfgs[0]
        self.splits = splits
        self.device = device = splits.train.images.device
        # Each bundle queues its work, and captures its graphs, on a stream of its own,
        # never torch's shared one (trainers.graphs says why).
        self.stream = None
        if device.type == "cuda":
            self.stream = torch.cuda.Stream(device)
            self.stream.wait_stream(torch.cuda.current_stream(device))  # the data's copy
        with self._on_stream():
            # Members sorted so that shared activations and losses form runs: fewer kernels.
            self.order = sorted(range(len(cfgs)), key=lambda i: (cfgs[i].activation, cfgs[i].loss))
            members = [cfgs[i] for i in self.order]
            own_orders = shared.shuffle and len({c.seed for c in members}) > 1
            image_shape = (splits.train.images.shape[1], splits.train.images.shape[2])
            self.model = model = build_members(members, image_shape, device, not own_orders)
            rates = [c.lr for c in members]
            lr: Any = shared.lr if len(members) == 1 else model.learning_rates(rates)
            self.losses = [c.loss for c in members]
            self.step = Step(model, make_optimizer(shared.optimizer, model.params, lr))
            self.orders = BatchOrders(members if own_orders else members[:1], len(splits.train))
            self.feed = make_epoch(model, splits.train, shared.batch_size, len(self.orders), device)
        # What runs an epoch: the feed itself, or its steps captured as graphs.
        self.runner: SlicedEpoch | PickedEpoch | GraphedEpoch = self.feed
        # The MLPs' steps are the same cuBLAS calls eagerly and replayed: equal numbers.
        self.rtol = 0.0 if shared.model == "mlp" else CUDNN_RTOL
        self._capture = isinstance(self.feed, PickedEpoch) and wants_graphs(shared, device)
        self._first: FirstEpoch | None = None  # epoch 1 with graphs, until it is settled
        self._checked = False
        self.labels = torch.empty(0)  # the last epoch's, in its batch orders
        self._logits = torch.empty(0)  # the last epoch's on the validation split
        self.epoch = 0
        self.metrics: list[dict[str, Any]] = []
        self.train_time_s = 0.0
        self._launched: tuple[float, torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def from_configs(
        cls,
        configs: Sequence[Mapping[str, Any]],
        dataset: Dataset | None,
        shared_splits: dict[Any, Splits] | None = None,
    ) -> Bundle:
        """A bundle of `configs`, checked against `dataset` (loaded from the first one's
        data root when not given), on its device with fp32 pinned and its CPU threads set.
        ConfigError names the first bad value. `shared_splits` lets the bundles of a pack
        share one copy of the data per device and validation split."""
        if not configs:
            raise ConfigError("a bundle needs at least one configuration")
        cfgs, dataset = checked_configs(configs, dataset)
        if len(cfgs) > 1:
            check_fusable(cfgs)
        shared = cfgs[0]
        device = resolve_device(shared.device)
        pin_precision()
        torch.set_num_threads(resolve_threads(shared.threads))
        place = (dataset.name, device, shared.validation_split)
        splits = (shared_splits or {}).get(place)
        if splits is None:
            splits = make_splits(dataset, shared.validation_split, shared.seed, device)
            if shared_splits is not None:
                shared_splits[place] = splits
        return cls(cfgs, splits)

    @property
    def epochs_left(self) -> int:
        return self.shared.epochs - self.epoch

    def _on_stream(self) -> Any:
        return torch.cuda.stream(self.stream) if self.device.type == "cuda" else nullcontext()

    def capture(self) -> None:
        """Capture the steps as CUDA graphs where the config wants them (once; before the
        first epoch). A pack captures every bundle before any epoch starts, because a
        capture waits for the whole device; `train_epoch` does it when nobody did."""
        if self._capture and isinstance(self.feed, PickedEpoch):
            self._capture = False
            with self._on_stream():
                captured = capture_epoch(self.feed, self.step, self.stream, self.rtol)
            self.runner = captured or self.feed

    def train_epoch(self) -> None:
        """Queue one epoch's steps; the first one with graphs runs both ways
        (graphs.FirstEpoch). On the current stream: `launch_epoch` puts it on the bundle's."""
        self.capture()
        self.labels = self.feed.start(self.orders.next() if self.shared.shuffle else None)
        graphed = isinstance(self.runner, GraphedEpoch)
        if graphed and not self._checked and isinstance(self.feed, PickedEpoch):
            self._checked = True
            self._first = FirstEpoch(self.feed, self.step, self.runner)
        else:
            self.runner.run(self.step)

    def settle(self) -> bool:
        """After epoch 1 with graphs: whether its numbers were replaced by the eager ones
        (the graphs disagreed, and are dropped); waits for the device."""
        first, self._first = self._first, None
        if first is None or first.agrees():
            return False
        self.runner = self.feed
        return True

    def train_metrics(self) -> torch.Tensor:
        """Each member's mean loss and accuracy over the last epoch, (K, 2) on the device."""
        return losses_and_accuracies(self.feed.logits, self.labels, self.losses)

    def launch_epoch(self) -> None:
        """Queue the next epoch's training and validation; nothing waits for the device."""
        started = time.perf_counter()
        with self._on_stream():
            self.train_epoch()
            values, logits = self._epoch_values()
        self._launched = (started, values, logits)

    def _epoch_values(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The epoch's loss, accuracy, val_loss and val_accuracy, (K, 4), and the
        validation logits, all left on the device."""
        trained = self.train_metrics()
        logits = forward(self.model, self.splits.validation)
        validated = losses_and_accuracies(logits, self.splits.validation.labels, self.losses)
        return torch.cat([trained, validated], 1), logits

    def collect_epoch(self) -> list[dict[str, Any]]:
        """The launched epoch's metrics, one mapping per configuration in the given order."""
        if self._launched is None:
            raise RuntimeError("collect_epoch before launch_epoch")
        started, values, self._logits = self._launched
        with self._on_stream():
            if self.settle():  # the graphs' first epoch was replaced by the eager one
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
        splits, count = self.splits, len(self.order)
        with self._on_stream():
            tests: list[Any] = [None] * count
            if splits.test is not splits.validation:
                logits = forward(self.model, splits.test)
                values = losses_and_accuracies(logits, splits.test.labels, self.losses)
                tests = [tuple(pair) for pair in values.tolist()]
            predictions = self._logits.argmax(2)
            params = parameter_count(self.model) // count
            finals = [
                final_metrics(self.metrics[k], tests[k], predictions[k], splits,
                              self.train_time_s, self.epoch, params, self.device)
                for k in range(count)
            ]  # fmt: skip
        return self.in_given_order(finals)

    def in_given_order(self, per_member: list[Any]) -> list[Any]:
        return [per_member[self.order.index(i)] for i in range(len(self.order))]


def build_members(
    cfgs: Sequence[TrainConfig],
    image_shape: tuple[int, int],
    device: torch.device,
    shared_input: bool,
) -> Members:
    """The members' models with each one's initial weights: one model alone, else the
    MLPs stacked."""
    generators = [torch.Generator().manual_seed(seeds(c.seed)[0]) for c in cfgs]
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


def wants_graphs(cfg: TrainConfig, device: torch.device) -> bool:
    """`graphs: auto` captures the steps on CUDA; nothing is captured on the CPU."""
    return cfg.graphs == "auto" and device.type == "cuda"


class BatchOrders:
    """Each epoch's permutations of the training split, one per generator: from each
    member's seed, drawn on the CPU so that every device sees the same batches."""

    def __init__(self, cfgs: Sequence[TrainConfig], count: int) -> None:
        self.generators = [torch.Generator().manual_seed(seeds(c.seed)[1]) for c in cfgs]
        self.count = count

    def __len__(self) -> int:
        return len(self.generators)

    def next(self) -> torch.Tensor:
        """The next epoch's orders, (orders, N)."""
        return torch.stack([torch.randperm(self.count, generator=g) for g in self.generators])


def seeds(seed: int) -> tuple[int, int]:
    """Independent streams for the initial weights and the batch order. Keeping the order
    apart from the weights means configs that share a seed see the same batches."""
    weights, order = np.random.SeedSequence(seed).spawn(2)
    return int(weights.generate_state(1)[0]), int(order.generate_state(1)[0])


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
