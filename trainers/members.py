"""The members of a bundle as the loop drives them: their models, their step, each
epoch's batch orders and the way the epoch feeds the step, and their metrics.

`Training` puts together what trainers.step, trainers.fused and trainers.graphs provide,
for K >= 1 configurations that share everything but trainers.fused.FUSABLE_KEYS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from trainers.config import TrainConfig
from trainers.data import Split
from trainers.fused import FusedMLP
from trainers.graphs import CUDNN_RTOL, FirstEpoch, GraphedEpoch, capture_epoch
from trainers.losses import per_sample_loss
from trainers.models import MLP, build_model
from trainers.optim import make_optimizer
from trainers.step import Members, PickedEpoch, Single, SlicedEpoch, Step

EVAL_CHUNK = 2048  # rows per forward pass when evaluating: bounds CNN activation memory
# None: batches picked on the device only where they must be (CUDA, or members with
# batch orders of their own); True: always, which lets the CPU tests run the graph-safe
# step.
PICK_ON_DEVICE: bool | None = None


class Training:
    """The members of one run, their step and the epochs that feed it: what the loop
    drives (and bench/ times). `members` share everything but trainers.fused.FUSABLE_KEYS."""

    def __init__(
        self,
        members: Sequence[TrainConfig],
        image_shape: tuple[int, int],
        split: Split,
        device: torch.device,
        stream: Any = None,
    ) -> None:
        """`stream`: the CUDA stream the bundle queues its work on, where its graphs are
        captured (trainers.graphs says why each bundle needs its own)."""
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
        if stream is None and device.type == "cuda":  # never capture on torch's shared stream
            stream = torch.cuda.Stream(device)
        self.stream = stream
        # The MLPs' steps are the same cuBLAS calls eagerly and replayed: equal numbers.
        self.rtol = 0.0 if shared.model == "mlp" else CUDNN_RTOL
        self.labels = torch.empty(0)
        self._capture = isinstance(self.epoch, PickedEpoch) and wants_graphs(shared, device)
        self._first: FirstEpoch | None = None  # epoch 1 with graphs, until it is settled
        self._checked = False

    def capture(self) -> None:
        """Capture the steps as CUDA graphs where the config wants them (once; before the
        first epoch). A pack captures every bundle before any epoch starts, because a
        capture waits for the whole device."""
        if self._capture and isinstance(self.epoch, PickedEpoch):
            self._capture = False
            self.runner = capture_epoch(self.epoch, self.step, self.stream, self.rtol) or self.epoch

    def train_epoch(self) -> None:
        """Queue one epoch; the first one with graphs runs both ways (graphs.FirstEpoch)."""
        self.capture()
        self.labels = self.epoch.start(self.orders.next() if self.shuffle else None)
        graphed = isinstance(self.runner, GraphedEpoch)
        if graphed and not self._checked and isinstance(self.epoch, PickedEpoch):
            self._checked = True
            self._first = FirstEpoch(self.epoch, self.step, self.runner)
        else:
            self.runner.run(self.step)

    def settle(self) -> bool:
        """After epoch 1 with graphs: whether its numbers were replaced by the eager ones
        (the graphs disagreed, and are dropped); waits for the device."""
        first, self._first = self._first, None
        if first is None or first.agrees():
            return False
        self.runner = self.epoch
        return True

    def train_metrics(self) -> torch.Tensor:
        """Each member's mean loss and accuracy over the last epoch, (K, 2) on the device."""
        return losses_and_accuracies(self.epoch.logits, self.labels, self.losses)


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
        self.generators = [torch.Generator().manual_seed(seeds(c.seed)[1]) for c in cfgs]
        self.count = count

    def __len__(self) -> int:
        return len(self.generators)

    def next(self) -> torch.Tensor:
        """The next epoch's orders, (orders, N)."""
        return torch.stack([torch.randperm(self.count, generator=g) for g in self.generators])


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


def seeds(seed: int) -> tuple[int, int]:
    """Independent streams for the initial weights and the batch order. Keeping the order
    apart from the weights means configs that share a seed see the same batches."""
    weights, order = np.random.SeedSequence(seed).spawn(2)
    return int(weights.generate_state(1)[0]), int(order.generate_state(1)[0])
