"""A bundle on its own: built from a sweep's configurations, driven an epoch at a time,
capturing on its own stream, its results in the order given."""

from __future__ import annotations

import pytest
import torch

import trainers.bundle as bundle_module
import trainers.graphs as graphs
import trainers.step as step_module
from tests.trainers.helpers import RecordedGraph, without_times
from trainers import ConfigError, TrainConfig, train, train_members
from trainers.bundle import Bundle, wants_graphs
from trainers.data import make_splits

DIGITS = {"dataset": "digits", "device": "cpu", "threads": 1, "hidden": [32]}


def test_an_epoch_at_a_time_is_train_members(digits) -> None:
    """Launched, collected and finished by hand, as a pack drives it: train_members' numbers."""
    configs = [{**DIGITS, "epochs": 2, "activation": a} for a in ("tanh", "relu")]
    bundle = Bundle.from_configs(configs, digits)
    with pytest.raises(RuntimeError, match="collect_epoch before launch_epoch"):
        bundle.collect_epoch()
    epochs = []
    while bundle.epochs_left:
        bundle.launch_epoch()
        epochs.append(bundle.collect_epoch())
    by_hand = [without_times(metrics) for metrics in [*epochs, bundle.finish()]]
    reports: list[list[dict]] = []
    finals = train_members(configs, digits, reports.append)
    assert by_hand == [without_times(metrics) for metrics in [*reports, finals]]
    assert [metrics[0]["epoch"] for metrics in epochs] == [1, 2]


def test_finals_come_back_in_the_given_order(digits) -> None:
    base = {"dataset": "digits", "batch_size": 64, "epochs": 1, "device": "cpu"}
    activations = ["tanh", "elu", "relu", "sigmoid"]  # not sorted: the bundle sorts them
    per_epoch: list[list[dict]] = []
    finals = train_members([{**base, "activation": a} for a in activations], digits,
                         per_epoch.append)  # fmt: skip
    alone = [train({**base, "activation": a}, digits) for a in activations]
    assert [f["val_loss"] for f in finals] == pytest.approx([a["val_loss"] for a in alone])
    assert [r["val_loss"] for r in per_epoch[0]] == pytest.approx([f["val_loss"] for f in finals])


def test_the_bundles_of_a_pack_share_one_copy_of_the_data(digits) -> None:
    shared: dict = {}
    first = Bundle.from_configs([DIGITS], digits, shared)
    second = Bundle.from_configs([{**DIGITS, "lr": 0.5}], digits, shared)
    held_out = Bundle.from_configs([{**DIGITS, "validation_split": 0.1}], digits, shared)
    assert second.splits is first.splits and held_out.splits is not first.splits
    assert len(shared) == 2
    alone = Bundle.from_configs([DIGITS], digits)
    assert alone.splits is not first.splits


def test_a_bundle_needs_a_configuration(digits) -> None:
    with pytest.raises(ConfigError, match="a bundle needs at least one configuration"):
        Bundle.from_configs([], digits)


def test_capture_and_warm_up_use_the_bundles_own_stream(digits, monkeypatch) -> None:
    """Never torch's shared capture stream: each bundle's graphs on its own, one pool."""
    splits = make_splits(digits, 0.0, 0, torch.device("cpu"))
    cfg = TrainConfig.from_dict({"dataset": "digits", "hidden": [16], "batch_size": 200})
    stream = object()  # what the bundle passes as its stream
    seen: list[tuple[str, object, object]] = []

    def warm_up(work, given) -> None:
        seen.append(("warm-up", given, None))
        work()

    def capture(work, given, pool=None):
        seen.append(("capture", given, pool))
        return RecordedGraph(work)

    monkeypatch.setattr(graphs, "warm_up", warm_up)
    monkeypatch.setattr(graphs, "capture", capture)
    monkeypatch.setattr(graphs, "CHUNK_STEPS", 2)
    monkeypatch.setattr(step_module, "PICK_ON_DEVICE", True)
    monkeypatch.setattr(bundle_module, "wants_graphs", lambda cfg, device: True)
    bundle = Bundle([cfg], splits)
    bundle.stream = stream  # a CUDA bundle's own; the CPU has none
    bundle.capture()
    bundle.capture()  # once only
    # 1,497 images at 200: 7 full steps (3 chunks of 2 and a rest of 1) and a tail of 97.
    assert [(kind, given) for kind, given, _ in seen] == [
        ("warm-up", stream), ("capture", stream), ("capture", stream), ("capture", stream),
    ]  # fmt: skip
    assert isinstance(bundle.runner, graphs.GraphedEpoch) and bundle.runner.chunks == 3


def test_graphs_is_auto_or_off_and_only_captures_on_cuda() -> None:
    assert wants_graphs(TrainConfig.from_dict({}), torch.device("cuda"))
    assert not wants_graphs(TrainConfig.from_dict({"graphs": "off"}), torch.device("cuda"))
    assert not wants_graphs(TrainConfig.from_dict({}), torch.device("cpu"))
    with pytest.raises(ConfigError, match="graphs must be one of auto, off; got 'on'"):
        TrainConfig.from_dict({"graphs": "on"})
