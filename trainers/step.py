"""The training step of K >= 1 models, and the two ways an epoch feeds it batches.

A step is `optimizer.step(model.gradients(x, one_hot, logits_out))`: forward, the
hand-written backward and the update, on tensors whose shapes never change, without a
host sync or a Python branch on a tensor's value. The model's gradients are its own
(trainers.models, trainers.fused), the update the optimizer's (trainers.optim). What
differs is where the batch comes from (`make_epoch` chooses):

- `PickedEpoch` picks it on the device: a step counter tensor indexes the epoch's
  permutation, `index_select` gathers the rows from the resident split into buffers
  allocated once, and the logits land in an epoch-long buffer at the counter's place.
  Every step reads and writes the same addresses, so a run of steps can be captured as
  one CUDA graph and replayed (trainers.graphs). It also serves members that each have
  their own batch order (their own `seed`), on any device.
- `SlicedEpoch` gathers the epoch into its order once and hands the step views of it.
  On the CPU, where nothing is captured, this is the cheaper of the two (BENCHMARKS.md:
  the five picking ops cost ~15 us a step at batch 8).

Both give the same batches in the same order, so the same numbers. On CUDA a bundle runs
the picked epoch's steps as captured graphs instead (trainers.graphs), after checking
that they give the same numbers too.
"""

from __future__ import annotations

import functools
from typing import Protocol

import torch
import torch.nn.functional as F

from trainers.data import NUM_CLASSES, Split
from trainers.models import Model
from trainers.optim import SGD, Adam

# None: batches picked on the device only where they must be (CUDA, or members with
# batch orders of their own); True: always, which lets the CPU tests run the graph-safe
# step.
PICK_ON_DEVICE: bool | None = None


class Members(Protocol):
    """K >= 1 models trained together; logits are (K, batch, classes), except that
    `gradients` writes one model's as (batch, classes) (see `member_view`)."""

    count: int
    params: list[torch.Tensor]

    def inputs(self, images: torch.Tensor) -> torch.Tensor: ...

    def forward(self, x: torch.Tensor) -> torch.Tensor: ...

    def gradients(
        self, x: torch.Tensor, one_hot: torch.Tensor, logits_out: torch.Tensor
    ) -> list[torch.Tensor]: ...


class Single:
    """One model (trainers.models) as members of one: its own kernels, which at K = 1
    are cheaper than a stack of one (BENCHMARKS.md)."""

    count = 1

    def __init__(self, model: Model, loss: str) -> None:
        self.model = model
        self.params = model.params
        # The model's own method with the loss bound: no Python frame of ours a step.
        self.gradients = functools.partial(model.gradients, loss=loss)

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.inputs(images)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward(x).unsqueeze(0)


def member_view(logits: torch.Tensor, count: int) -> torch.Tensor:
    """Logits (K, ..., classes) as `Members.gradients` writes them: without the member axis
    for one model. Made once, not per step: indexing a tensor costs microseconds."""
    return logits[0] if count == 1 else logits


class Step:
    """One training step of `model` on the batch it is given."""

    def __init__(self, model: Members, optimizer: SGD | Adam) -> None:
        self.model = model
        self.optimizer = optimizer

    def __call__(self, x: torch.Tensor, one_hot: torch.Tensor, logits_out: torch.Tensor) -> None:
        self.optimizer.step(self.model.gradients(x, one_hot, logits_out))

    def state(self) -> list[torch.Tensor]:
        """Every tensor a step changes for good: the parameters and the optimizer's state."""
        return [*self.model.params, *self.optimizer.state()]


def make_epoch(
    model: Members, split: Split, batch_size: int, orders: int, device: torch.device
) -> SlicedEpoch | PickedEpoch:
    """How an epoch feeds the step: picked on the device where graphs may capture it or
    members read batches of their own, else as slices (cheaper on the CPU)."""
    if PICK_ON_DEVICE or (PICK_ON_DEVICE is None and (device.type == "cuda" or orders > 1)):
        return PickedEpoch(model, split, batch_size, orders)
    return SlicedEpoch(model, split, batch_size)


class SlicedEpoch:
    """Batches as views of the training split gathered into the epoch's one order."""

    def __init__(self, model: Members, split: Split, batch_size: int) -> None:
        self.model = model
        self.split = split
        self.batch_size = batch_size
        self.logits = torch.empty(model.count, len(split), NUM_CLASSES, device=split.images.device)
        self._logits_batches = member_view(self.logits, model.count).split(batch_size, -2)
        # Buffers kept from epoch to epoch: a fresh epoch-sized tensor costs its page
        # faults every epoch, for MNIST on the CPU three times the gather itself.
        self._images = torch.empty_like(split.images)
        self._labels = torch.empty_like(split.labels)
        self._batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def start(self, orders: torch.Tensor | None) -> torch.Tensor:
        """Take the epoch's order, (1, N) or None for the split's own; its labels (1, N)."""
        images, labels = self.split.images, self.split.labels
        if orders is not None:
            order = orders[0].to(images.device)
            images = torch.index_select(images, 0, order, out=self._images)
            labels = torch.index_select(labels, 0, order, out=self._labels)
        x = self.model.inputs(images)
        one_hot = F.one_hot(labels, NUM_CLASSES).to(x.dtype)
        size = self.batch_size
        # The batches' views made in one call each: Python-level slicing costs a
        # microsecond or two a step.
        self._batches = list(zip(x.split(size), one_hot.split(size), self._logits_batches,
                                 strict=True))  # fmt: skip
        return labels.unsqueeze(0)

    def run(self, step: Step) -> None:
        update, gradients = step.optimizer.step, step.model.gradients  # bound once, not a step
        for x, one_hot, logits in self._batches:
            update(gradients(x, one_hot, logits))


class PickedEpoch:
    """Batches picked on the device by a step counter: see the module's docstring.

    `orders` is 1 (every member reads the same batch) or K (each its own).
    """

    def __init__(self, model: Members, split: Split, batch_size: int, orders: int) -> None:
        device = split.images.device
        count = len(split)
        self.model = model
        self.split = split
        self.orders = orders
        self.batch_size = batch_size
        self.full_steps, self.tail = divmod(count, batch_size)
        full = self.full_steps * batch_size
        self.images = model.inputs(split.images)
        self.eye = torch.eye(NUM_CLASSES, device=device)
        self.order = torch.arange(count, device=device).repeat(orders, 1)
        self.one_hot = torch.empty(orders, count, NUM_CLASSES, device=device)
        self.logits = torch.empty(model.count, count, NUM_CLASSES, device=device)
        self.counter = torch.zeros(1, dtype=torch.long, device=device)
        # Views of the full batches, (orders | K, steps, batch, ...), indexed by the counter.
        self._order_steps = self.order[:, :full].view(orders, -1, batch_size)
        self._one_hot_steps = self.one_hot[:, :full].view(orders, -1, batch_size, NUM_CLASSES)
        self._logits_steps = self.logits[:, :full].view(model.count, -1, batch_size, NUM_CLASSES)
        # The step's own buffers, written in place every step.
        self._rows = torch.empty(orders, 1, batch_size, dtype=torch.long, device=device)
        self._x = torch.empty(orders * batch_size, *self.images.shape[1:], device=device)
        self._batch_one_hot = torch.empty(orders, 1, batch_size, NUM_CLASSES, device=device)
        self._batch_logits = torch.empty(model.count, 1, batch_size, NUM_CLASSES, device=device)
        # What the step reads and writes, as the model takes them: views made once.
        batch_shape = (batch_size,) if orders == 1 else (orders, batch_size)
        self._step_x = self._x.view(*batch_shape, *self.images.shape[1:])
        self._step_one_hot = self._batch_one_hot.view(*batch_shape, NUM_CLASSES)
        self._step_logits = member_view(self._batch_logits.view(model.count, -1, NUM_CLASSES),
                                        model.count)  # fmt: skip
        self._tail_shape = (self.tail,) if orders == 1 else (orders, self.tail)
        self._tail_one_hot = self.one_hot[:, full:].view(*self._tail_shape, NUM_CLASSES)
        self._tail_logits = member_view(self.logits[:, full:], model.count)

    def start(self, orders: torch.Tensor | None) -> torch.Tensor:
        """Take the epoch's orders, (1 | K, N) or None for the split's own, and reset the
        counter; the labels in those orders (1 | K, N)."""
        if orders is not None:
            self.order.copy_(orders)
        labels = self.split.labels[self.order]
        torch.index_select(self.eye, 0, labels.view(-1), out=self.one_hot.view(-1, NUM_CLASSES))
        self.counter.zero_()
        return labels

    def full_step(self, step: Step) -> None:
        """The counter's batch, then the counter moves on. Graph-safe."""
        torch.index_select(self._order_steps, 1, self.counter, out=self._rows)
        torch.index_select(self.images, 0, self._rows.view(-1), out=self._x)
        torch.index_select(self._one_hot_steps, 1, self.counter, out=self._batch_one_hot)
        step(self._step_x, self._step_one_hot, self._step_logits)
        self._logits_steps.index_copy_(1, self.counter, self._batch_logits)
        self.counter.add_(1)

    def tail_step(self, step: Step) -> None:
        """The last, smaller batch (`tail` rows; none when the batch size divides the
        split). Graph-safe: its place is fixed."""
        start = self.full_steps * self.batch_size
        x = self.images.index_select(0, self.order[:, start:].reshape(-1))
        step(x.view(*self._tail_shape, *x.shape[1:]), self._tail_one_hot, self._tail_logits)

    def run(self, step: Step) -> None:
        for _ in range(self.full_steps):
            self.full_step(step)
        if self.tail:
            self.tail_step(step)
