"""A pack trains its bundles in one process, epochs interleaved, each exactly as it would
train alone; one that fails ends alone."""

from __future__ import annotations

import pytest

import trainers.pack as pack
from trainers import ConfigError, train_members
from trainers.train import Bundle

DIGITS = {"dataset": "digits", "device": "cpu", "threads": 1, "hidden": [32]}
TIMES = ("epoch_time_s", "train_time_s")

GROUPS = [
    [{**DIGITS, "activation": "relu", "batch_size": 64, "epochs": 3},
     {**DIGITS, "activation": "tanh", "batch_size": 64, "epochs": 3, "seed": 2}],
    [{**DIGITS, "batch_size": 8, "epochs": 2, "lr": 0.1}],
    [{**DIGITS, "batch_size": 256, "epochs": 4, "optimizer": "adam", "validation_split": 0.1}],
]  # fmt: skip


def without_times(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in member.items() if k not in TIMES} for member in metrics]


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
