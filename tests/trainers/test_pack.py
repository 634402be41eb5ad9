"""A pack trains its bundles in one process, epochs interleaved, each exactly as it would
train alone; one that fails ends alone."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

import trainers.pack as pack
from tests.trainers.helpers import without_times
from trainers import ConfigError, train_members
from trainers.bundle import Bundle

DIGITS = {"dataset": "digits", "device": "cpu", "threads": 1, "hidden": [32]}

GROUPS = [
    [{**DIGITS, "activation": "relu", "batch_size": 64, "epochs": 3},
     {**DIGITS, "activation": "tanh", "batch_size": 64, "epochs": 3, "seed": 2}],
    [{**DIGITS, "batch_size": 8, "epochs": 2, "lr": 0.1}],
    [{**DIGITS, "batch_size": 256, "epochs": 4, "optimizer": "adam", "validation_split": 0.1}],
]  # fmt: skip


def test_each_bundle_trains_as_alone_and_reports_interleaved(digits) -> None:
    reports: list[tuple[int, list[dict]]] = []
    outcomes = pack.train_pack(GROUPS, digits, lambda index, m: reports.append((index, m)))
    # Round by round, each bundle still training reports its epoch.
    assert [(index, m[0]["epoch"]) for index, m in reports] == [
        (0, 1), (1, 1), (2, 1), (0, 2), (1, 2), (2, 2), (0, 3), (2, 3), (2, 4),
    ]  # fmt: skip
    for index, configs in enumerate(GROUPS):
        alone: list[list[dict]] = []
        finals = train_members(configs, digits, alone.append)
        assert without_times(outcomes[index]) == without_times(finals)
        packed = [m for i, m in reports if i == index]
        assert [without_times(m) for m in packed] == [without_times(m) for m in alone]


def test_a_bundle_that_fails_ends_alone(digits, monkeypatch) -> None:
    class FailsAtEpoch2(Bundle):
        def collect_epoch(self) -> list[dict]:
            metrics = super().collect_epoch()
            if self.shared.batch_size == 8 and self.epoch == 2:
                raise RuntimeError("CUDA out of memory (a stand-in)")
            return metrics

    monkeypatch.setattr(pack, "Bundle", FailsAtEpoch2)
    bad = [{**DIGITS, "activation": "swish"}]
    reports: list[tuple[int, int]] = []
    outcomes = pack.train_pack(
        [*GROUPS, bad], digits, lambda index, m: reports.append((index, m[0]["epoch"]))
    )
    assert isinstance(outcomes[1], RuntimeError) and "out of memory" in str(outcomes[1])
    assert isinstance(outcomes[3], ConfigError) and "'swish'" in str(outcomes[3])
    assert [epoch for index, epoch in reports if index == 1] == [1]
    assert [len(outcomes[0]), len(outcomes[2])] == [2, 1]
    assert outcomes[2][0]["epochs_completed"] == 4


def test_an_error_of_the_report_is_the_callers(digits) -> None:
    def report(index: int, metrics: list[dict]) -> None:
        raise OSError("the driver is gone")

    with pytest.raises(OSError, match="the driver is gone"):
        pack.train_pack(GROUPS[:1], digits, report)


def test_a_sticky_cuda_error_ends_the_pack_with_one_reason(digits, monkeypatch) -> None:
    """After an illegal address every CUDA call fails: the bundles not ended yet are lost
    with the pack (PackLost, which fails the Tune trial), not each failed with a
    misleading error of its own; the one that had finished stays finished."""

    class LosesTheContextAtEpoch3(Bundle):
        def collect_epoch(self) -> list[dict]:
            metrics = super().collect_epoch()
            if self.epoch == 3:
                raise torch.AcceleratorError(
                    "CUDA error: an illegal memory access was encountered\nmore advice"
                )
            return metrics

    monkeypatch.setattr(pack, "Bundle", LosesTheContextAtEpoch3)
    ended: list[tuple[int, object]] = []
    with pytest.raises(pack.PackLost) as lost:
        pack.train_pack(GROUPS, digits, ended=lambda index, outcome: ended.append((index, outcome)))
    assert str(lost.value) == (
        "the CUDA context is lost, and every unfinished bundle of this pack with it: "
        "AcceleratorError: CUDA error: an illegal memory access was encountered more advice"
    )
    [(index, outcome)] = ended  # the two-epoch bundle, finished before the error
    assert index == 1 and isinstance(outcome, list)


def test_every_bundle_captures_before_any_trains_and_lives_until_the_pack_ends(
    digits, monkeypatch
) -> None:
    events: list[tuple[str, int]] = []
    alive: list[weakref.ref] = []

    class Watched(Bundle):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            alive.append(weakref.ref(self))

        def capture(self) -> None:
            events.append(("capture", self.shared.batch_size))
            super().capture()

        def launch_epoch(self) -> None:
            events.append(("launch", self.shared.batch_size))
            super().launch_epoch()

    def report(index: int, metrics: list[dict]) -> None:
        gc.collect()  # a bundle dropped early would be gone now, its graphs destroyed
        assert all(ref() is not None for ref in alive)

    monkeypatch.setattr(pack, "Bundle", Watched)
    pack.train_pack(GROUPS, digits, report)
    assert events[:4] == [("capture", 64), ("capture", 8), ("capture", 256), ("launch", 64)]
    assert len(alive) == 3


def test_waves_fit_the_memory_and_the_streams() -> None:
    refused: list[tuple[int, Exception]] = []
    refuse = lambda index, error: refused.append((index, error))  # noqa: E731
    sizes = {0: 3 * 2**30, 1: 3 * 2**30, 2: 3 * 2**30, 3: 9 * 2**30}
    assert pack.waves(sizes, 2**30, 8 * 2**30, refuse) == [[0, 1], [2]]
    [(index, error)] = refused
    assert index == 3 and isinstance(error, ConfigError)
    assert str(error).startswith(
        "this bundle needs about 10.00 GiB of GPU memory with its data, the trial has 8.00 GiB"
    )
    many = dict.fromkeys(range(10), 1)
    assert pack.waves(many, 0, None, refuse) == [list(range(8)), [8, 9]]  # MAX_BUNDLES


def test_a_pack_over_its_memory_trains_in_waves_and_refuses_what_never_fits(
    digits, monkeypatch
) -> None:
    sizes = {}
    for index, configs in enumerate(GROUPS):
        cfgs, _ = pack.checked_configs(configs, digits)
        sizes[index] = pack._estimate(cfgs, digits)
    data = pack._data_estimate(digits)
    limit = data + sizes[0] + sizes[1]  # bundles 0 and 1 together, then 2 alone
    assert data + sizes[2] <= limit < data + sizes[0] + sizes[1] + sizes[2]
    reports: list[tuple[int, int]] = []
    outcomes = pack.train_pack(
        GROUPS, digits, lambda index, m: reports.append((index, m[0]["epoch"])), None, limit
    )
    assert reports == [(0, 1), (1, 1), (0, 2), (1, 2), (0, 3), (2, 1), (2, 2), (2, 3), (2, 4)]
    for index, configs in enumerate(GROUPS):
        assert without_times(outcomes[index]) == without_times(train_members(configs, digits))
    refused = pack.train_pack(GROUPS, digits, memory_limit=data + 1)
    assert all(isinstance(o, ConfigError) and "GiB of GPU memory" in str(o) for o in refused)
