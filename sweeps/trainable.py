"""What runs inside a Tune trial: the trainer named by the spec, fed the shared dataset.

Every trial reports `kind: "epoch"` results as it trains and one `kind: "final"` result
when the trainer returns; the driver's Parquet writer tells them apart by that key.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ray import tune

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


def run_trial(
    config: dict[str, Any],
    dataset: Any = None,
    trainer: str = DEFAULT_TRAINER,
    cpus: float = 1,
    gpus: float = 0,
) -> None:
    """The Tune trainable: `tune.with_parameters` supplies everything but `config`."""
    train = resolve_trainer(trainer)
    if trainer == DEFAULT_TRAINER:
        config = with_device(config, cpus, gpus)
    _share_gpu(gpus)

    def report(metrics: dict[str, Any]) -> None:
        tune.report({**metrics, "kind": "epoch"})

    final = train(config, dataset, report)
    if not isinstance(final, dict):
        raise TypeError(f"trainer {trainer!r} must return a dict of metrics, got {final!r}")
    tune.report({**final, "kind": "final"})


def run_bundle(
    config: dict[str, Any],
    dataset: Any = None,
    bundles: list[list[dict[str, Any]]] | None = None,
    cpus: float = 1,
    gpus: float = 0,
) -> None:
    """The Tune trainable of a fused sweep: `config["bundle"]` indexes `bundles`, whose
    configurations train as one fused model (or alone, for a bundle of one). Reports
    carry `members`: each configuration's metrics, in the bundle's order."""
    from trainers import train
    from trainers.fused import train_fused

    configs = [with_device(member, cpus, gpus) for member in (bundles or [])[config["bundle"]]]
    _share_gpu(gpus)

    def report(members: list[dict[str, Any]]) -> None:
        tune.report({"kind": "epoch", "members": members})

    if len(configs) == 1:
        final = [train(configs[0], dataset, lambda metrics: report([metrics]))]
    else:
        final = train_fused(configs, dataset, report)
    tune.report({"kind": "final", "members": final})


def with_device(config: dict[str, Any], cpus: float, gpus: float) -> dict[str, Any]:
    """The built-in trainer's config on the trial's own resources, unless it names them."""
    return {"device": "cuda" if gpus > 0 else "cpu", "threads": max(1, int(cpus)), **config}


def _share_gpu(gpus: float) -> None:
    if 0 < gpus < 1:
        import torch

        if torch.cuda.is_available():
            # Neighbours on the same GPU get their share: a trial takes no more than its own.
            torch.cuda.set_per_process_memory_fraction(gpus)
