"""What runs inside a Tune trial, called as Tune calls it: real trainers on the digits,
Tune's `report` kept instead of sent (outside a trial Tune drops it)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from ray import tune

from sweeps.record.protocol import EPOCH, FINAL, Report, decode
from sweeps.runs.trainable import (
    TrainerImportError,
    TrainerNotes,
    resolve_trainer,
    run_group,
    with_device,
)
from tests.sweeps.conftest import PLUGINS
from trainers import Dataset, train
from trainers.config import ConfigError

BASE = {"dataset": "digits", "epochs": 2, "batch_size": 64, "seed": 0}


def params(hidden: int) -> int:
    """An 8x8-input MLP's parameter count: which configuration a final report is of."""
    return 64 * hidden + hidden + hidden * 10 + 10


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the trial passes to `tune.report`, in order."""
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(tune, "report", sent.append)
    return sent


def decoded(sent: list[dict[str, Any]]) -> list[Report]:
    found = [decode(report) for report in sent]
    assert None not in found, sent
    return [report for report in found if report is not None]


def test_a_trainer_path_names_a_function() -> None:
    assert resolve_trainer("trainers:train") is train


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("trainers:no_such", "trainer 'trainers:no_such': trainers has no function 'no_such'"),
        ("trainers:DEFAULTS", "trainer 'trainers:DEFAULTS': trainers has no function 'DEFAULTS'"),
    ],
)
def test_a_trainer_path_to_no_function_names_the_module_and_the_function(
    path: str, message: str
) -> None:
    with pytest.raises(TrainerImportError) as raised:
        resolve_trainer(path)
    assert str(raised.value) == message


def test_a_trainer_module_not_found_says_where_it_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TrainerImportError) as raised:
        resolve_trainer("no_such_module:train")
    message = str(raised.value)
    assert message.startswith(
        "trainer 'no_such_module:train': cannot import 'no_such_module'"
        " (No module named 'no_such_module'); searched "
    )
    assert str(tmp_path) in message


def test_a_trainer_module_that_fails_to_import_is_named_without_the_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The module was found: what it imports is missing, not the module."""
    (tmp_path / "needs_more.py").write_text("import no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "needs_more", raising=False)
    with pytest.raises(TrainerImportError) as raised:
        resolve_trainer("needs_more:train")
    assert str(raised.value) == (
        "trainer 'needs_more:train': cannot import 'needs_more'"
        " (No module named 'no_such_dependency')"
    )


@pytest.mark.parametrize(
    ("config", "cpus", "gpus", "expected"),
    [
        ({"lr": 0.1}, 2.7, 0.0, {"device": "cpu", "threads": 2, "lr": 0.1}),
        ({"lr": 0.1}, 0.5, 0.25, {"device": "cuda", "threads": 1, "lr": 0.1}),
        ({"device": "cpu", "threads": 8}, 1.0, 1.0, {"device": "cpu", "threads": 8}),
    ],
)
def test_the_built_in_trainer_gets_the_trials_own_resources_unless_the_config_names_them(
    config: dict[str, Any], cpus: float, gpus: float, expected: dict[str, Any]
) -> None:
    assert with_device(config, cpus, gpus) == expected


def test_a_trial_of_one_configuration_reports_each_epoch_then_its_final_metrics(
    digits: Dataset, reports: list[dict[str, Any]]
) -> None:
    configs = [{**BASE, "hidden": [hidden]} for hidden in (4, 8, 16)]
    groups = [[0], [1], [2]]
    run_group({"group": 1}, digits, configs, groups, cpus=2.5, gpus=0)
    found = decoded(reports)
    assert [(r.kind, len(r.members)) for r in found] == [(EPOCH, 1), (EPOCH, 1), (FINAL, 1)]
    epochs, (final,) = [r.members[0] for r in found[:2]], found[2].members
    assert [metrics["epoch"] for metrics in epochs] == [1, 2]
    # configs[1] trained, on the CPU with the trial's whole CPUs
    assert final["params"] == params(8) and final["epochs_completed"] == 2
    assert (final["device"], final["threads"]) == ("cpu", 2)
    # A group of one: its metrics also at the top, where Tune's ASHA looks for the metric.
    assert reports[0]["val_accuracy"] == epochs[0]["val_accuracy"]
    assert reports[2]["test_accuracy"] == final["test_accuracy"]


def test_a_fused_bundle_reports_every_member_each_epoch(
    digits: Dataset, reports: list[dict[str, Any]]
) -> None:
    configs = [{**BASE, "hidden": [8], "lr": lr} for lr in (0.5, 0.05)]
    run_group({"group": 0}, digits, configs, [[1, 0]], cpus=1, gpus=0)
    found = decoded(reports)
    assert [(r.kind, len(r.members), r.positions) for r in found] == [
        (EPOCH, 2, None), (EPOCH, 2, None), (FINAL, 2, None)]  # fmt: skip
    assert "val_accuracy" not in reports[0]  # several members: none of them at the top
    # In the group's order, each as it trains alone.
    for member, config in zip(found[-1].members, (configs[1], configs[0]), strict=True):
        alone = train({**config, "device": "cpu", "threads": 1}, digits)
        assert member["test_loss"] == pytest.approx(alone["test_loss"], rel=1e-5)


def test_a_pack_reports_each_bundle_apart_and_a_failing_bundle_alone(
    digits: Dataset, reports: list[dict[str, Any]]
) -> None:
    configs = [{**BASE, "hidden": [8], "lr": 0.5}, {**BASE, "hidden": [8], "lr": 0.05},
               {**BASE, "hidden": [4], "activation": "swish"}]  # fmt: skip
    # One trial of two bundles: configs 0 and 1 fused, and config 2, which cannot train.
    run_group({"group": 0}, digits, configs, [[0, 1, 2]], sizes=[[2, 1]], cpus=1, gpus=0)
    found = decoded(reports)
    with pytest.raises(ConfigError) as raised:
        train(configs[2], digits)
    error = f"ConfigError: {' '.join(str(raised.value).split())}"
    assert [(r.kind, r.positions, r.errors) for r in found] == [
        (FINAL, [2], [error]),  # refused before any bundle trains
        (EPOCH, [0, 1], None),
        (EPOCH, [0, 1], None),
        (FINAL, [0, 1], [None, None]),
    ]
    assert found[0].members == [{}]
    assert [member["params"] for member in found[-1].members] == [params(8)] * 2
    assert "val_accuracy" not in reports[1]  # a pack's reports have nothing at the top


def test_a_users_trainer_gets_its_config_as_it_is_and_must_return_a_dict(
    reports: list[dict[str, Any]],
) -> None:
    """`slice` returns what it is given: the config, the dataset and the report function
    the trainer was called with, each seen in the error."""
    with pytest.raises(TypeError) as raised:
        run_group({"group": 0}, "the dataset", [{"x": 1}], [[0]], trainer="builtins:slice")
    assert str(raised.value).startswith(
        "trainer 'builtins:slice' must return a dict of metrics, got"
        " slice({'x': 1}, 'the dataset', <function "
    )  # no device or threads added: those are the built-in trainer's keys
    assert reports == []


def test_the_trainers_warnings_go_with_the_next_report_once(
    monkeypatch: pytest.MonkeyPatch, reports: list[dict[str, Any]]
) -> None:
    monkeypatch.syspath_prepend(PLUGINS)
    run_group({"group": 0}, None, [{"x": 1, "epochs": 2}], [[0]], trainer="user_trainers:warns")
    assert [report.notes for report in decoded(reports)] == [
        ["CUDA graphs off, training eagerly: capture failed: a stand-in"], [], []]  # fmt: skip
    assert TrainerNotes not in map(type, logging.getLogger("trainers").handlers)


def test_notes_are_the_trainers_warnings_only() -> None:
    with TrainerNotes() as notes:
        logging.getLogger("trainers.graphs").warning("capture failed: %s", "no memory")
        logging.getLogger("trainers.graphs").info("captured")
        logging.getLogger("ray.tune").warning("not ours")
        assert notes.drain() == ["capture failed: no memory"]
        assert notes.drain() == []
    logging.getLogger("trainers.graphs").warning("after the trial")
    assert notes.drain() == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_trial_with_a_share_of_a_gpu_takes_no_more_than_its_share(
    digits: Dataset, reports: list[dict[str, Any]]
) -> None:
    before = torch.cuda.get_per_process_memory_fraction()
    try:
        run_group({"group": 0}, digits, [{**BASE, "hidden": [8]}], [[0]], cpus=1, gpus=0.25)
        assert torch.cuda.get_per_process_memory_fraction() == 0.25
        assert decoded(reports)[-1].members[0]["device"] == "cuda"
    finally:
        torch.cuda.set_per_process_memory_fraction(before)
