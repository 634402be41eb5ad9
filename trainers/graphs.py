"""An epoch of graph-safe steps (trainers.step.PickedEpoch) captured as CUDA graphs.

At batch 8 a GPU step is launch-bound: each of its ~30 kernels costs a launch, not its
arithmetic. Captured, `CHUNK_STEPS` steps replay as one graph launch. An epoch of S full
batches replays the chunk graph S // CHUNK_STEPS times, a graph of the S % CHUNK_STEPS
steps left over, and one of the smaller tail batch; the three share one memory pool.

Capture can fail (an op that syncs, a driver without graph support, no memory): then the
trainer goes on eagerly with the same step, after one logged line saying why. The first
capture is checked against the eager step from the same state; a difference beyond
`SELF_CHECK_TOLERANCE` also means eager, with a warning. CUDA only: on the CPU nothing is
captured.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from trainers.step import PickedEpoch, Step

CHUNK_STEPS = 100  # steps per replay; the measured floor used 100 (not tuned here)
WARMUP_STEPS = 3  # eager steps on a side stream before capture, as torch.cuda.graphs asks
SELF_CHECK_TOLERANCE = 1e-5

log = logging.getLogger(__name__)


class GraphedEpoch:
    """The epoch's steps as captured graphs over `epoch`'s buffers."""

    def __init__(self, epoch: PickedEpoch, step: Step, chunk_steps: int = CHUNK_STEPS) -> None:
        self.epoch = epoch
        self.chunk_steps = min(chunk_steps, epoch.full_steps)
        self.chunks, rest = divmod(epoch.full_steps, self.chunk_steps)
        self.state = [*step.state(), epoch.counter]
        before = snapshot(self.state)

        def warm_up_steps() -> None:
            _steps(epoch, step, min(WARMUP_STEPS, epoch.full_steps))
            if epoch.tail:
                epoch.tail_step(step)

        warm_up(warm_up_steps)
        restore(self.state, before)

        self.chunk = capture(lambda: _steps(epoch, step, self.chunk_steps))
        pool = self.chunk.pool()
        self.rest = capture(lambda: _steps(epoch, step, rest), pool) if rest else None
        self.tail = capture(lambda: epoch.tail_step(step), pool) if epoch.tail else None

    def run(self, step: Step) -> None:
        """One epoch from the counter's start (`step` was captured already)."""
        for _ in range(self.chunks):
            self.chunk.replay()
        if self.rest is not None:
            self.rest.replay()
        if self.tail is not None:
            self.tail.replay()

    def self_check(self, step: Step) -> float:
        """The largest difference, over the state, between one replayed chunk and the same
        steps run eagerly from the same state; the state is left as it was."""
        before = snapshot(self.state)
        _steps(self.epoch, step, self.chunk_steps)
        eager = snapshot(self.state)
        restore(self.state, before)
        self.chunk.replay()
        graphed = snapshot(self.state)
        restore(self.state, before)
        return max(_difference(a, b) for a, b in zip(eager, graphed, strict=True))


def capture_epoch(epoch: PickedEpoch, step: Step) -> GraphedEpoch | None:
    """The epoch's steps as checked CUDA graphs; None (after one logged line why) when they
    cannot be captured or do not give the eager step's numbers."""
    try:
        graphed = GraphedEpoch(epoch, step)
        difference = graphed.self_check(step)
    except Exception as error:  # any failure of capture means: train eagerly
        # CUDA's messages run to several lines of advice; the first says what failed.
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        log.warning("CUDA graphs off, training eagerly: capture failed: %s", reason)
        return None
    if not difference <= SELF_CHECK_TOLERANCE:
        log.warning(
            "CUDA graphs off, training eagerly: a replayed chunk differs from the eager "
            "steps by %.3g (tolerance %g)",
            difference,
            SELF_CHECK_TOLERANCE,
        )
        return None
    return graphed


def warm_up(work: Callable[[], None]) -> None:
    """Run `work` on a side stream, as torch.cuda.graphs asks before a capture."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        work()
    torch.cuda.current_stream().wait_stream(side)


def capture(work: Callable[[], None], pool: Any = None) -> torch.cuda.CUDAGraph:
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        work()
    return graph


def _steps(epoch: PickedEpoch, step: Step, count: int) -> None:
    for _ in range(count):
        epoch.full_step(step)


def snapshot(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return [tensor.clone() for tensor in tensors]


def restore(tensors: list[torch.Tensor], saved: list[torch.Tensor]) -> None:
    for tensor, value in zip(tensors, saved, strict=True):
        tensor.copy_(value)


def _difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max |a - b|, equal infinities and NaNs in the same places counting as equal (a
    diverged member)."""
    same = (a == b) | (a.isnan() & b.isnan())
    return float(torch.where(same, 0.0, (a.double() - b.double()).abs()).max())
