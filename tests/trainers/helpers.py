"""Helpers the trainers' tests share: a recorded stand-in for a CUDA graph, and metrics
without their times (which differ from run to run)."""

from __future__ import annotations

from collections.abc import Callable

import torch

TIMES = ("epoch_time_s", "train_time_s")


class RecordedGraph:
    """Stands in for torch.cuda.CUDAGraph: replay reruns the captured work."""

    def __init__(
        self, work: Callable[[], None], nudge: torch.Tensor | None = None, by: float = 1e-3
    ) -> None:
        self.work, self.nudge, self.by = work, nudge, by

    def replay(self) -> None:
        self.work()
        if self.nudge is not None:  # a replay that drifts from the eager step
            with torch.no_grad():
                self.nudge.add_(self.by)

    def pool(self) -> None:
        return None


def without_times(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in member.items() if k not in TIMES} for member in metrics]
