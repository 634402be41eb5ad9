"""What runs inside a Tune trial: the trainer named by the spec, fed the shared dataset,
on one group of configurations of the run plan."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ray import tune

from sweeps.protocol import EPOCH, FINAL, encode
from sweeps.spec import DEFAULT_TRAINER

Trainer = Callable[..., dict[str, Any]]


class TrainerImportError(ImportError):
    """The spec's `trainer` names no importable function."""


def resolve_trainer(path: str) -> Trainer:
    """`package.module:function` -> the function."""
    module_name, _, function_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise TrainerImportError(
            f"trainer {path!r}: cannot import {module_name!r} ({error})"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise TrainerImportError(
            f"trainer {path!r}: {module_name} has no function {function_name!r}"
        )
    return function


def run_group(
    config: dict[str, Any],
    dataset: Any = None,
    configs: list[dict[str, Any]] | None = None,
    groups: list[list[int]] | None = None,
    trainer: str = DEFAULT_TRAINER,
    cpus: float = 1,
    gpus: float = 0,
) -> None:
    """The Tune trainable: `config["group"]` indexes the plan's `groups`, whose
    configurations train together (sweeps.plan); `tune.with_parameters` supplies the rest.
    Reports follow sweeps.protocol."""
    members = [(configs or [])[index] for index in (groups or [])[config["group"]]]
    train = resolve_trainer(trainer)
    if trainer == DEFAULT_TRAINER:
        members = [with_device(member, cpus, gpus) for member in members]
    _share_gpu(gpus)

    def report(metrics: list[dict[str, Any]]) -> None:
        tune.report(encode(EPOCH, metrics))

    if len(members) > 1:
        from trainers import train_members

        final = train_members(members, dataset, report)
    else:
        final = [train(members[0], dataset, lambda metrics: report([metrics]))]
        if not isinstance(final[0], dict):
            raise TypeError(f"trainer {trainer!r} must return a dict of metrics, got {final[0]!r}")
    tune.report(encode(FINAL, final))


def with_device(config: dict[str, Any], cpus: float, gpus: float) -> dict[str, Any]:
    """The built-in trainer's config on the trial's own resources, unless it names them."""
    return {"device": "cuda" if gpus > 0 else "cpu", "threads": max(1, int(cpus)), **config}


def _share_gpu(gpus: float) -> None:
    if 0 < gpus < 1:
        import torch

        if torch.cuda.is_available():
            # Neighbours on the same GPU get their share: a trial takes no more than its own.
            torch.cuda.set_per_process_memory_fraction(gpus)
