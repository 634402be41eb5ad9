"""An epoch of graph-safe steps (trainers.step.PickedEpoch) captured as CUDA graphs.

At batch 8 a GPU step is launch-bound: each of its ~30 kernels costs a launch, not its
arithmetic. Captured, `CHUNK_STEPS` steps replay as one graph launch. An epoch of S full
batches replays the chunk graph S // CHUNK_STEPS times, a graph of the S % CHUNK_STEPS
steps left over, and one of the smaller tail batch; the three share one memory pool.

The rules this module keeps (PyTorch's CUDA-graph notes, torch 2.14):

- Capture can fail (an op that syncs, a driver without graph support, no memory). Then
  the trainer goes on eagerly from exactly the state before the attempt: the parameters,
  the optimizer's state and the step counter are snapshotted first and restored (under
  no_grad: a CNN's parameters are leaves that require grad) whatever failed.
- Each bundle captures on its own stream, never torch's shared capture stream: cuBLAS
  keeps a workspace per stream and a graph bakes in its address, so bundles captured on
  one stream would replay concurrently over one workspace. Destroying a graph frees the
  workspace of its capture stream (CUDAGraph::reset), so the graphs live as long as
  their bundle, and a pack keeps its bundles until it ends (trainers.pack).
- The first epoch is run both ways from the same state, eagerly and replayed, and every
  tensor the epoch changes, the logits included, must agree: exactly where the kernels
  are the same (the MLPs' cuBLAS calls), within `CUDNN_RTOL` where cuDNN may pick other
  algorithms. A difference keeps the eager epoch and trains eagerly on, with a warning.
- A sticky CUDA error (a device-side assert, an illegal address) is not a capture
  failure: the process's context is lost, so it is raised (`is_fatal`).

CUDA only: on the CPU nothing is captured; the tests drive this module with recorded
stand-ins for `warm_up` and `capture`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from trainers.step import PickedEpoch, Step

CHUNK_STEPS = 100  # steps per replay; the measured floor used 100 (not tuned here)
WARMUP_STEPS = 3  # eager steps before capture, as torch.cuda.graphs asks
CUDNN_RTOL = 1e-4  # cuDNN's algorithms may differ between eager and capture (fp32, no TF32)

# What a lost CUDA context says; after any of these every later CUDA call fails.
_FATAL_TEXTS = (
    "device-side assert",
    "illegal memory access",
    "illegal instruction",
    "misaligned address",
    "unspecified launch failure",
    "context is destroyed",
    "cuda context is lost",
)

log = logging.getLogger(__name__)


def is_fatal(error: BaseException) -> bool:
    """Whether `error` leaves the process's CUDA context unusable: every bundle of the pack
    is lost with it, and only a fresh process (Tune's retry) can go on."""
    if isinstance(error, torch.AcceleratorError):
        return True
    text = str(error).lower()
    return any(fatal in text for fatal in _FATAL_TEXTS)


class GraphedEpoch:
    """The epoch's steps as captured graphs: `chunks` replays of `chunk`, then `rest` and
    `tail` where the epoch has them."""

    def __init__(
        self, chunk: Any, chunks: int, rest: Any | None, tail: Any | None, rtol: float
    ) -> None:
        self.chunk, self.chunks, self.rest, self.tail = chunk, chunks, rest, tail
        self.rtol = rtol

    def run(self, step: Step | None = None) -> None:
        """One epoch from the counter's start."""
        for _ in range(self.chunks):
            self.chunk.replay()
        if self.rest is not None:
            self.rest.replay()
        if self.tail is not None:
            self.tail.replay()


def capture_epoch(
    epoch: PickedEpoch,
    step: Step,
    stream: Any = None,
    rtol: float = 0.0,
) -> GraphedEpoch | None:
    """`epoch`'s steps captured on `stream` (the bundle's own), checked later by
    `FirstEpoch`; None, after one logged line why, when they cannot be captured. Either
    way the state (parameters, optimizer, counter) is left exactly as it was; a fatal
    CUDA error is raised."""
    state = [*step.state(), epoch.counter]
    before = snapshot(state)
    chunk_steps = min(CHUNK_STEPS, epoch.full_steps)
    chunks, rest = divmod(epoch.full_steps, chunk_steps)

    def warm_up_steps() -> None:
        _steps(epoch, step, min(WARMUP_STEPS, epoch.full_steps))
        if epoch.tail:
            epoch.tail_step(step)

    try:
        warm_up(warm_up_steps, stream)
        restore(state, before)
        chunk = capture(lambda: _steps(epoch, step, chunk_steps), stream)
        pool = chunk.pool()
        rest_graph = capture(lambda: _steps(epoch, step, rest), stream, pool) if rest else None
        tail = capture(lambda: epoch.tail_step(step), stream, pool) if epoch.tail else None
    except Exception as error:
        if is_fatal(error):
            raise
        restore(state, before)
        # CUDA's messages run to several lines of advice; the first says what failed.
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        log.warning("CUDA graphs off, training eagerly: capture failed: %s", reason)
        return None
    return GraphedEpoch(chunk, chunks, rest_graph, tail, rtol)


class FirstEpoch:
    """Epoch 1 run both ways from one state, queued without a host sync: eagerly, then
    replayed. The replayed result stands; `agrees` (which waits for the device) puts the
    eager one back if they differ beyond the tolerance."""

    def __init__(self, epoch: PickedEpoch, step: Step, graphed: GraphedEpoch) -> None:
        state = [*step.state(), epoch.counter]
        self.targets = [*state, epoch.logits]
        before = snapshot(state)
        epoch.run(step)
        self.eager = snapshot(self.targets)
        restore(state, before)
        del before  # one snapshot fewer while the graphs replay
        self.rtol = graphed.rtol
        graphed.run()
        pairs = zip(self.targets, self.eager, strict=True)
        with torch.no_grad():  # a CNN's parameters require grad; their comparison does not
            excesses = [_excess(now, eager, self.rtol) for now, eager in pairs]
        self.excess = torch.stack(excesses).max()

    def agrees(self) -> bool:
        """True when the replayed epoch matched; else the eager epoch is restored and one
        line says by how much they differed."""
        excess = float(self.excess)
        if excess <= 0.0:
            return True
        restore(self.targets, self.eager)
        log.warning(
            "CUDA graphs off, training eagerly: the replayed first epoch differs from the "
            "eager one by %.3g beyond the tolerance (rtol %g)",
            excess,
            self.rtol,
        )
        return False


def warm_up(work: Callable[[], None], stream: Any) -> None:
    """Run `work` on the capture stream before capture, as torch.cuda.graphs asks: lazy
    initialisation, and cuBLAS's workspace for that very stream, happen outside capture.
    The capture stream is already a side stream (the bundle's own), so none is made."""
    current = torch.cuda.current_stream()
    stream.wait_stream(current)
    with torch.cuda.stream(stream):
        work()
    current.wait_stream(stream)


def capture(work: Callable[[], None], stream: Any, pool: Any = None) -> torch.cuda.CUDAGraph:
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool, stream=stream):
        work()
    return graph


def _steps(epoch: PickedEpoch, step: Step, count: int) -> None:
    for _ in range(count):
        epoch.full_step(step)


def snapshot(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return [tensor.detach().clone() for tensor in tensors]


@torch.no_grad()
def restore(tensors: list[torch.Tensor], saved: list[torch.Tensor]) -> None:
    """Copy `saved` back in place: under no_grad, since a CNN's parameters are leaves that
    require grad, and autograd refuses an in-place copy into those."""
    for tensor, value in zip(tensors, saved, strict=True):
        tensor.copy_(value)


def _excess(now: torch.Tensor, eager: torch.Tensor, rtol: float) -> torch.Tensor:
    """max(|now - eager| - rtol |eager|) as a device scalar, > 0 where they differ beyond
    the tolerance; equal infinities and NaNs in the same places count as equal (a
    diverged member)."""
    same = (now == eager) | (now.isnan() & eager.isnan())
    difference = (now.double() - eager.double()).abs() - rtol * eager.double().abs()
    return torch.where(same, 0.0, difference).max()
