"""What runs inside a Tune trial: the trainer named by the spec, fed the shared dataset,
on one group of configurations of the run plan."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from ray import tune

from sweeps.plan.spec import DEFAULT_TRAINER
from sweeps.record.protocol import EPOCH, FINAL, encode

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
    sizes: list[list[int]] | None = None,
    trainer: str = DEFAULT_TRAINER,
    cpus: float = 1,
    gpus: float = 0,
) -> None:
    """The Tune trainable: `config["group"]` indexes the plan's `groups`, whose
    configurations train together (sweeps.plan.groups): one bundle, or a pack of bundles of
    `sizes`; `tune.with_parameters` supplies the rest. Reports follow sweeps.record.protocol."""
    group = config["group"]
    members = [(configs or [])[index] for index in (groups or [])[group]]
    train = resolve_trainer(trainer)
    if trainer == DEFAULT_TRAINER:
        members = [with_device(member, cpus, gpus) for member in members]
    _share_gpu(gpus)
    bundle_sizes = (sizes or [])[group] if sizes else [len(members)]
    with TrainerNotes() as notes:
        if len(bundle_sizes) > 1:
            _run_pack(members, bundle_sizes, dataset, notes, gpus)
            return

        def report(metrics: list[dict[str, Any]]) -> None:
            tune.report(encode(EPOCH, metrics, notes=notes.drain()))

        if len(members) > 1:
            from trainers import train_members

            final = train_members(members, dataset, report)
        else:
            final = [train(members[0], dataset, lambda metrics: report([metrics]))]
            if not isinstance(final[0], dict):
                raise TypeError(
                    f"trainer {trainer!r} must return a dict of metrics, got {final[0]!r}"
                )
        tune.report(encode(FINAL, final, notes=notes.drain()))


class TrainerNotes(logging.Handler):
    """The warnings the trainers log (a CUDA graph fallback, say), kept for the trial's
    next report: a trial's own output goes to files nobody reads, the driver shows them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.pending.append(record.getMessage())

    def drain(self) -> list[str]:
        notes, self.pending = self.pending, []
        return notes

    def __enter__(self) -> TrainerNotes:
        logging.getLogger("trainers").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("trainers").removeHandler(self)


def _run_pack(
    members: list[dict[str, Any]],
    sizes: list[int],
    dataset: Any,
    notes: TrainerNotes,
    gpus: float,
) -> None:
    """The bundles of a pack in this one process (trainers.pack), within the trial's share
    of its GPU; a bundle that fails marks its members failed and the others go on. A lost
    CUDA context fails the trial (Tune may retry it in a fresh process)."""
    import torch

    from trainers.memory import gpu_budget
    from trainers.pack import train_pack

    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    bundles = [members[start : start + size] for start, size in zip(starts, sizes, strict=True)]

    def report(bundle: int, metrics: list[dict[str, Any]]) -> None:
        positions = list(range(starts[bundle], starts[bundle] + sizes[bundle]))
        tune.report(encode(EPOCH, metrics, positions=positions, notes=notes.drain()))

    def ended(bundle: int, outcome: list[dict[str, Any]] | Exception) -> None:
        # Reported at once: the driver writes this bundle's rows while the others train.
        positions = list(range(starts[bundle], starts[bundle] + sizes[bundle]))
        if isinstance(outcome, Exception):
            message: str | None = " ".join(f"{type(outcome).__name__}: {outcome}".split())
            finals = [{} for _ in positions]
        else:
            message, finals = None, outcome
        errors = [message] * len(positions)
        tune.report(encode(FINAL, finals, positions=positions, errors=errors,
                           notes=notes.drain()))  # fmt: skip

    on_gpu = gpus > 0 and torch.cuda.is_available()
    train_pack(bundles, dataset, report, ended, gpu_budget(min(gpus, 1.0)) if on_gpu else None)


def with_device(config: dict[str, Any], cpus: float, gpus: float) -> dict[str, Any]:
    """The built-in trainer's config on the trial's own resources, unless it names them."""
    return {"device": "cuda" if gpus > 0 else "cpu", "threads": max(1, int(cpus)), **config}


def _share_gpu(gpus: float) -> None:
    if 0 < gpus < 1:
        import torch

        if torch.cuda.is_available():
            # Neighbours on the same GPU get their share: a trial takes no more than its own.
            torch.cuda.set_per_process_memory_fraction(gpus)
