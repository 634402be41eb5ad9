"""trainers.graphs on the CPU. Capture itself is CUDA's; here `RecordedGraph`
(tests/trainers/helpers.py), a "graph" that reruns the Python work it recorded, stands in
for it, so the loop, the warm-up, the snapshots, the first epoch's check and every
fallback run on the same buffers, counter and state as on a GPU. `GraphSafety`
(tests/trainers/safety.py) checks what the stand-in cannot: that the captured step syncs
nothing and keeps its tensors where they are."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch

import trainers.bundle as bundle_module
import trainers.graphs as graphs
import trainers.step as step_module
from tests.trainers.helpers import RecordedGraph, without_times
from tests.trainers.safety import GraphSafety, NotCapturable, addresses
from trainers import Dataset, TrainConfig, train_members
from trainers.bundle import Bundle
from trainers.data import make_splits
from trainers.step import PickedEpoch

MNIST = {"dataset": "mnist", "device": "cpu", "threads": 2, "epochs": 3, "batch_size": 10}
# Every kind of step the trainer captures: K = 1 and fused (one order and orders of their
# own), SGD and Adam, cross-entropy and MSE, the report's three CNNs.
BUNDLES = {
    "mlp-sgd": [{**MNIST, "hidden": [32]}],
    "mlp-adam-mse": [{**MNIST, "hidden": [32, 16], "optimizer": "adam", "loss": "mse"}],
    "fused-lr": [{**MNIST, "hidden": [32], "lr": lr} for lr in (0.01, 0.05, 0.2)],
    "fused-seeds-adam": [
        {**MNIST, "hidden": [32], "optimizer": "adam", "lr": 0.003, "seed": seed,
         "activation": activation}
        for seed, activation in ((1, "relu"), (2, "tanh"), (3, "relu"))
    ],
    "cnn1": [{**MNIST, "model": "cnn1"}],
    "cnn2-adam": [{**MNIST, "model": "cnn2", "optimizer": "adam", "lr": 0.001, "epochs": 2}],
    "cnn3": [{**MNIST, "model": "cnn3", "epochs": 2}],
}  # fmt: skip


@pytest.fixture(scope="module")
def small_mnist(mnist) -> Dataset:
    """Real MNIST, 105 training and 20 test images: 10 full batches of 10 and a tail of
    5, small enough to train the CNNs on the CPU in seconds."""
    return dataclasses.replace(
        mnist,
        train_images=mnist.train_images[:105],
        train_labels=mnist.train_labels[:105],
        test_images=mnist.test_images[:20],
        test_labels=mnist.test_labels[:20],
    )


@pytest.fixture
def on_cpu_as_on_cuda(monkeypatch) -> None:
    """The CUDA path on the CPU: batches picked on the device, graphs wanted, recorded
    graphs for captured ones, chunks of 4 steps (so an epoch has chunks, a rest and a
    tail)."""
    monkeypatch.setattr(step_module, "PICK_ON_DEVICE", True)
    monkeypatch.setattr(bundle_module, "wants_graphs", lambda cfg, device: cfg.graphs == "auto")
    monkeypatch.setattr(graphs, "CHUNK_STEPS", 4)
    monkeypatch.setattr(graphs, "warm_up", lambda work, stream: work())
    monkeypatch.setattr(graphs, "capture", lambda work, stream, pool=None: RecordedGraph(work))


def trained(configs: list[dict], dataset: Dataset, graphs_setting: str) -> list[list[dict]]:
    """Every epoch's metrics and the finals, without the times."""
    epochs: list[list[dict]] = []
    configs = [{**config, "graphs": graphs_setting} for config in configs]
    finals = train_members(configs, dataset, epochs.append)
    return [without_times(metrics) for metrics in [*epochs, finals]]


@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLES)
def test_graphed_training_equals_graphs_off_exactly(
    small_mnist, on_cpu_as_on_cuda, name, caplog
) -> None:
    """The CNNs crashed here: the restore after warm-up copied into leaves that require
    grad, and the fallback then ran from the warm-up's counter past the epoch's end."""
    with caplog.at_level(logging.WARNING, logger="trainers"):
        graphed = trained(BUNDLES[name], small_mnist, "auto")
    assert caplog.records == []  # captured and checked: no fallback
    assert graphed == trained(BUNDLES[name], small_mnist, "off")


def _failing_capture(call: int):
    calls = []

    def capture(work, stream, pool=None):
        calls.append(work)
        if len(calls) == call:
            raise RuntimeError("CUDA out of memory (a stand-in)\nmore lines of advice")
        return RecordedGraph(work)

    return capture


def _failing_warm_up(work, stream) -> None:
    work()  # the warm-up's steps have changed the state...
    raise RuntimeError("CUDA error: out of memory (a stand-in)")  # ...when it fails


def _drifting_capture(work, stream, pool=None):
    return RecordedGraph(work, nudge=FIRST_PARAM[0])


FIRST_PARAM: list[torch.Tensor] = []


@pytest.mark.slow
@pytest.mark.parametrize("bundle", ["mlp-adam-mse", "fused-seeds-adam", "cnn1"])
@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("warm-up", "capture failed: CUDA error: out of memory (a stand-in)"),
        ("chunk", "capture failed: CUDA out of memory (a stand-in)"),
        ("rest", "capture failed: CUDA out of memory (a stand-in)"),
        ("tail", "capture failed: CUDA out of memory (a stand-in)"),
        ("self-check", "the replayed first epoch differs from the eager one"),
    ],
)
def test_a_failure_anywhere_falls_back_to_exactly_graphs_off(
    small_mnist, on_cpu_as_on_cuda, monkeypatch, caplog, bundle, where, expected
) -> None:
    """Each failure leaves the state as before the attempt, the counter at 0: the run then
    gives graphs: off's numbers bit for bit, after one line why."""
    if where == "warm-up":
        monkeypatch.setattr(graphs, "warm_up", _failing_warm_up)
    elif where == "self-check":
        monkeypatch.setattr(graphs, "capture", _drifting_capture)
        original = Bundle.__init__

        def remember_first_param(self, *args, **kwargs) -> None:
            original(self, *args, **kwargs)
            FIRST_PARAM[:] = [self.model.params[0]]

        monkeypatch.setattr(Bundle, "__init__", remember_first_param)
    else:
        call = {"chunk": 1, "rest": 2, "tail": 3}[where]
        monkeypatch.setattr(graphs, "capture", _failing_capture(call))
    with caplog.at_level(logging.WARNING, logger="trainers"):
        fallen_back = trained(BUNDLES[bundle], small_mnist, "auto")
    [record] = caplog.records
    assert record.getMessage().startswith("CUDA graphs off, training eagerly: ")
    assert expected in record.getMessage() and "\n" not in record.getMessage()
    assert fallen_back == trained(BUNDLES[bundle], small_mnist, "off")


def test_the_self_check_is_exact_for_mlps_and_relative_for_cudnn(digits, monkeypatch) -> None:
    """A replay 1e-6 off (relative) passes where cuDNN's algorithms may differ, and fails
    where the kernels are the same."""
    splits = make_splits(digits, 0.0, 0, torch.device("cpu"))
    cfg = TrainConfig.from_dict({"dataset": "digits", "hidden": [16], "batch_size": 64})
    for rtol, agrees in ((0.0, False), (graphs.CUDNN_RTOL, True)):
        bundle = Bundle([cfg], splits)
        epoch = PickedEpoch(bundle.model, splits.train, 64, 1)
        bias = bundle.model.params[1]
        bias.fill_(1.0)  # a nudge of 1e-6 is then about 1e-6 relative
        monkeypatch.setattr(graphs, "capture", _nudging(bias, 1e-6))
        monkeypatch.setattr(graphs, "warm_up", lambda work, stream: work())
        graphed = graphs.capture_epoch(epoch, bundle.step, None, rtol)
        assert graphed is not None
        epoch.start(None)
        assert graphs.FirstEpoch(epoch, bundle.step, graphed).agrees() is agrees


def test_the_self_check_covers_the_tail_graph_and_the_logits(digits, monkeypatch) -> None:
    """A tail graph that writes slightly other logits, the parameters unchanged: the old
    check of one chunk's state could not see it."""
    splits = make_splits(digits, 0.0, 0, torch.device("cpu"))
    cfg = TrainConfig.from_dict({"dataset": "digits", "hidden": [16], "batch_size": 64})
    bundle = Bundle([cfg], splits)
    epoch = PickedEpoch(bundle.model, splits.train, 64, 1)
    captured: list[RecordedGraph] = []

    def capture(work, stream, pool=None) -> RecordedGraph:
        tail = len(captured) == 1  # chunk, then (no rest at 23 steps) the tail
        captured.append(RecordedGraph(work, nudge=epoch.logits[0, -1] if tail else None))
        return captured[-1]

    monkeypatch.setattr(graphs, "capture", capture)
    monkeypatch.setattr(graphs, "warm_up", lambda work, stream: work())
    graphed = graphs.capture_epoch(epoch, bundle.step)
    assert graphed is not None and graphed.tail is captured[1] and graphed.rest is None
    epoch.start(None)
    first = graphs.FirstEpoch(epoch, bundle.step, graphed)
    eager_params = [p.clone() for p in first.eager[: len(bundle.model.params)]]
    assert first.agrees() is False
    for param, eager in zip(bundle.model.params, eager_params, strict=True):
        torch.testing.assert_close(param, eager, rtol=0, atol=0)


def _nudging(tensor: torch.Tensor, by: float):
    return lambda work, stream, pool=None: RecordedGraph(work, nudge=tensor, by=by)


def test_a_sticky_cuda_error_is_raised_not_fallen_back_from(digits, monkeypatch) -> None:
    splits = make_splits(digits, 0.0, 0, torch.device("cpu"))
    cfg = TrainConfig.from_dict({"dataset": "digits", "hidden": [16], "batch_size": 64})
    bundle = Bundle([cfg], splits)
    epoch = PickedEpoch(bundle.model, splits.train, 64, 1)

    def lost(work, stream) -> None:
        raise torch.AcceleratorError("CUDA error: device-side assert triggered")

    monkeypatch.setattr(graphs, "warm_up", lost)
    with pytest.raises(torch.AcceleratorError, match="device-side assert"):
        graphs.capture_epoch(epoch, bundle.step)
    assert graphs.is_fatal(RuntimeError("CUDA error: an illegal memory access was encountered"))
    assert not graphs.is_fatal(torch.OutOfMemoryError("CUDA out of memory"))


@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLES)
def test_the_captured_step_syncs_nothing_and_keeps_its_tensors_in_place(small_mnist, name) -> None:
    cfgs = [TrainConfig.from_dict(c) for c in BUNDLES[name]]
    splits = make_splits(small_mnist, 0.0, 0, torch.device("cpu"))
    bundle = Bundle(cfgs, splits)
    epoch = PickedEpoch(bundle.model, splits.train, cfgs[0].batch_size, len(bundle.orders))
    epoch.start(bundle.orders.next())
    kept = [*bundle.step.state(), epoch.counter, epoch.logits, epoch.one_hot, epoch.order,
            *(getattr(bundle.model, "_grads", []))]  # fmt: skip
    where = addresses(kept)
    for _ in range(graphs.WARMUP_STEPS):  # as before capture: buffers sized, state made
        epoch.full_step(bundle.step)
    epoch.tail_step(bundle.step)
    with GraphSafety() as safety:
        for _ in range(3):
            epoch.full_step(bundle.step)
        epoch.tail_step(bundle.step)
    assert addresses(kept) == where
    assert safety.leaks() == []
    assert safety.allocated  # the check saw the step's work


def test_the_safety_check_fails_a_step_that_syncs_or_keeps_an_allocation() -> None:
    state = torch.ones(4)
    with pytest.raises(NotCapturable, match="_local_scalar_dense"), GraphSafety():
        if state.sum() > 0:  # a Python branch on a tensor's value
            state.add_(1)
    with pytest.raises(NotCapturable, match="tolist"), GraphSafety():
        state.tolist()
    with pytest.raises(NotCapturable, match="copies a tensor to the CPU"), GraphSafety():
        state.to("cpu", copy=True)
    kept = []
    with GraphSafety() as safety:
        kept.append(state * 2)  # an allocation that outlives the step
        state.mul_(2)  # in place: no allocation
    assert safety.leaks() == ["aten.mul.Tensor"]
