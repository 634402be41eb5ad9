"""trainers.graphs on the CPU: what runs without CUDA is the replay arithmetic (chunks,
the rest, the tail), the self-check and the fallback. Capture itself is CUDA's; here a
"graph" that records the Python work and reruns it stands in for it, so the same
buffers, counter and state are exercised."""

from __future__ import annotations

import logging

import pytest
import torch

import trainers.graphs as graphs
from trainers import ConfigError, TrainConfig
from trainers.data import make_splits
from trainers.fused import FusedMLP
from trainers.members import wants_graphs
from trainers.models import MLP
from trainers.optim import Adam
from trainers.step import PickedEpoch, Step


class RecordedGraph:
    """Stands in for torch.cuda.CUDAGraph: replay reruns the captured work."""

    def __init__(self, work, nudge: torch.Tensor | None = None) -> None:
        self.work, self.nudge = work, nudge

    def replay(self) -> None:
        self.work()
        if self.nudge is not None:  # a replay that drifts from the eager step
            self.nudge.add_(1e-3)

    def pool(self) -> None:
        return None


def bundle(digits, batch_size: int) -> tuple[PickedEpoch, Step]:
    """Two members with orders of their own, Adam, on digits' 1,497 training images."""
    split = make_splits(digits, 0.0, 0, torch.device("cpu")).train
    cpu = torch.device("cpu")
    mlps = [
        MLP(64, (16,), activation, "glorot_uniform", torch.Generator().manual_seed(seed), cpu)
        for seed, activation in ((1, "relu"), (2, "tanh"))
    ]
    model = FusedMLP(mlps, ["categorical_crossentropy", "mse"], shared_input=False)
    step = Step(model, Adam(model.params, model.learning_rates([0.01, 0.003])))
    epoch = PickedEpoch(model, split, batch_size, orders=2)
    generator = torch.Generator().manual_seed(0)
    epoch.start(torch.stack([torch.randperm(len(split), generator=generator) for _ in range(2)]))
    return epoch, step


@pytest.fixture
def recorded(monkeypatch) -> None:
    monkeypatch.setattr(graphs, "warm_up", lambda work: work())
    monkeypatch.setattr(graphs, "capture", lambda work, pool=None: RecordedGraph(work))


@pytest.mark.parametrize(("batch_size", "chunk_steps"), [(64, 7), (64, 100), (499, 3), (1497, 5)])
def test_chunks_rest_and_tail_replay_exactly_the_eager_epoch(
    digits, recorded, batch_size, chunk_steps
) -> None:
    eager_epoch, eager_step = bundle(digits, batch_size)
    eager_epoch.run(eager_step)
    epoch, step = bundle(digits, batch_size)
    graphed = graphs.GraphedEpoch(epoch, step, chunk_steps)
    assert graphed.self_check(step) == 0.0
    graphed.run(step)
    assert int(epoch.counter) == epoch.full_steps
    for ours, eager in zip(step.state(), eager_step.state(), strict=True):
        torch.testing.assert_close(ours, eager, rtol=0, atol=0)
    torch.testing.assert_close(epoch.logits, eager_epoch.logits, rtol=0, atol=0)


def test_a_chunk_that_drifts_from_the_eager_step_means_eager(digits, monkeypatch, caplog) -> None:
    epoch, step = bundle(digits, 64)
    monkeypatch.setattr(graphs, "warm_up", lambda work: work())
    drifting = lambda work, pool=None: RecordedGraph(work, nudge=step.model.params[0])  # noqa: E731
    monkeypatch.setattr(graphs, "capture", drifting)
    before = [tensor.clone() for tensor in step.state()]
    with caplog.at_level(logging.WARNING, logger="trainers.graphs"):
        assert graphs.capture_epoch(epoch, step) is None
    assert "CUDA graphs off, training eagerly: a replayed chunk differs" in caplog.text
    assert "by 0.001" in caplog.text
    for tensor, saved in zip(step.state(), before, strict=True):  # the state is untouched
        torch.testing.assert_close(tensor, saved, rtol=0, atol=0)


def test_capture_failing_means_eager_with_one_line_why(digits, caplog) -> None:
    epoch, step = bundle(digits, 64)  # on the CPU: torch.cuda refuses to capture
    with caplog.at_level(logging.WARNING, logger="trainers.graphs"):
        assert graphs.capture_epoch(epoch, step) is None
    [record] = caplog.records
    assert record.getMessage().startswith("CUDA graphs off, training eagerly: capture failed: ")
    assert "\n" not in record.getMessage()
    assert int(epoch.counter) == 0


def test_graphs_is_auto_or_off_and_only_captures_on_cuda() -> None:
    assert wants_graphs(TrainConfig.from_dict({}), torch.device("cuda"))
    assert not wants_graphs(TrainConfig.from_dict({"graphs": "off"}), torch.device("cuda"))
    assert not wants_graphs(TrainConfig.from_dict({}), torch.device("cpu"))
    with pytest.raises(ConfigError, match="graphs must be one of auto, off; got 'on'"):
        TrainConfig.from_dict({"graphs": "on"})
