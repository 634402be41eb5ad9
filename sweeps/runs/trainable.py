"""What runs inside a Tune trial: the trainer named by the spec, fed the shared dataset,
on one group of configurations of the run plan."""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import site
import sys
import sysconfig
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

import ray
from ray import tune

from sweeps.plan.search import SEARCH_TRIAL
from sweeps.plan.spec import DEFAULT_TRAINER
from sweeps.record.fanout import configuration_id
from sweeps.record.protocol import EPOCH, FINAL, attach_output, encode
from sweeps.runs.checkpoints import Checkpoints, Keeper, train_checkpointed

Trainer = Callable[..., dict[str, Any]]


class TrainerImportError(ImportError):
    """The spec's `trainer` names no importable function."""


def import_folders(spec: str | None = None) -> list[str]:
    """Where a user's trainer is imported from before anything installed, as `python`
    finds a script's modules: the folder of the spec (when it is a file) and the current
    folder."""
    folders = []
    if spec is not None and not spec.startswith("env:") and os.path.isfile(spec):
        folders.append(os.path.dirname(os.path.abspath(spec)))
    folders.append(os.getcwd())
    return list(dict.fromkeys(folders))


@contextlib.contextmanager
def importable_from(folders: Sequence[str]) -> Iterator[None]:
    """`folders` first on this process's import path for the length of the block, ahead
    of $PYTHONPATH's; a sweep's workers get them through Ray (sweeps.cluster.session)."""
    added = [folder for folder in dict.fromkeys(folders) if folder not in sys.path]
    sys.path[:0] = added
    importlib.invalidate_caches()  # a module written since the last import is found
    try:
        yield
    finally:
        for folder in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)


def resolve_trainer(path: str) -> Trainer:
    """`package.module:function` -> the function. TrainerImportError naming the folders
    searched when the module is not found."""
    module_name, _, function_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        missing = getattr(error, "name", None) or ""
        # A module of the trainer's own that it cannot import is its problem, not the path's.
        searched = module_name == missing or module_name.startswith(f"{missing}.")
        where = f"; searched {_searched()}" if searched else ""
        raise TrainerImportError(
            f"trainer {path!r}: cannot import {module_name!r} ({error}){where}"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise TrainerImportError(
            f"trainer {path!r}: {module_name} has no function {function_name!r}"
        )
    return function


def _searched() -> str:
    """The import path as a user reads it: the folders named, then what is installed
    (the standard library, site-packages, the environment's scripts folder)."""
    paths = sysconfig.get_paths()
    installed = [os.path.realpath(path) for key, path in paths.items() if key != "data"]
    installed += [os.path.realpath(path) for path in site.getsitepackages()]
    named = []
    for folder in dict.fromkeys(path or os.getcwd() for path in sys.path):
        real = os.path.realpath(folder)
        inside = any(real == root or real.startswith(root + os.sep) for root in installed)
        if os.path.isdir(folder) and not inside:
            named.append(folder)
    return ", ".join(named) + " and the installed packages" if named else "the installed packages"


def run_group(
    config: dict[str, Any],
    dataset: Any = None,
    configs: list[dict[str, Any]] | None = None,
    groups: list[list[int]] | None = None,
    sizes: list[list[int]] | None = None,
    trainer: str = DEFAULT_TRAINER,
    cpus: float = 1,
    gpus: float = 0,
    checkpoints: Checkpoints | None = None,
    plan: list[Any] | None = None,
) -> None:
    """The Tune trainable: `config["group"]` indexes the plan's `groups`, whose
    configurations train together (sweeps.plan.groups): one bundle, or a pack of bundles of
    `sizes`; a config without it is one configuration a search proposed, the values it
    chose on the template that is each of a search's `configs` (sweeps.plan.search).
    `tune.with_parameters` supplies the rest. Reports follow sweeps.record.protocol. With
    `checkpoints`, its one configuration keeps them (sweeps.runs.checkpoints). `plan`: the
    configs, groups and sizes in the object store instead (`shared_plan`)."""
    if plan is not None:
        configs, groups, sizes = shared_plan(plan[0])
    group = config.get("group")
    if group is None:  # a configuration the search proposed: its values on the template
        proposed = {key: value for key, value in config.items() if key != SEARCH_TRIAL}
        members, sizes = [{**(configs or [{}])[0], **proposed}], None
    else:
        members = [(configs or [])[index] for index in (groups or [])[group]]
    train = resolve_trainer(trainer)
    if trainer == DEFAULT_TRAINER:
        members = [with_device(member, cpus, gpus) for member in members]
    _share_gpu(gpus)
    bundle_sizes = sizes[group] if sizes and group is not None else [len(members)]
    with TrainerNotes() as notes, TrialOutput(notes) as said:
        try:
            if len(bundle_sizes) > 1:
                _run_pack(members, bundle_sizes, dataset, said, gpus)
                return

            def report(metrics: list[dict[str, Any]]) -> None:
                tune.report(encode(EPOCH, metrics, **said.drain()))

            if checkpoints is not None:
                index = None if group is None else (groups or [])[group][0]
                keeper = Keeper(checkpoints, tune.get_context().get_trial_id(), index)
                final = [train_checkpointed(members[0], dataset, lambda m: report([m]), keeper,
                                            notes.pending.append)]  # fmt: skip
            elif len(members) > 1:
                from trainers import train_members

                final = train_members(members, dataset, report)
            else:
                final = [train(members[0], dataset, lambda metrics: report([metrics]))]
                if not isinstance(final[0], dict):
                    raise TypeError(
                        f"trainer {trainer!r} must return a dict of metrics, got {final[0]!r}"
                    )
            tune.report(encode(FINAL, final, **said.drain()))
        except BaseException as error:
            # No report follows: what it said since the last one travels on the exception.
            attach_output(error, **said.drain())
            raise


_PLANS: dict[str, Any] = {}


def shared_plan(ref: Any) -> Any:
    """The run's plan, fetched once per worker process: each trial taking it afresh
    (`tune.with_parameters` does) costs in proportion to the plan, 21 ms a trial at
    10,000 configurations, so a run's total would grow as the square of its size. (Not
    a reference: the plan itself.)"""
    if not isinstance(ref, ray.ObjectRef):
        return ref
    key = ref.hex()
    if key not in _PLANS:
        _PLANS.clear()  # a worker reused by another run keeps that run's plan only
        _PLANS[key] = ray.get(ref)
    return _PLANS[key]


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


class TrialOutput:
    """What the trainer prints (sys.stdout, sys.stderr: one stream, as a terminal shows
    them) and warns (warnings.warn, also a note for the driver to show), kept for the
    trial's next report and still written where it went before (Ray's worker logs).
    Output written to the file descriptors themselves (a subprocess, a C library) is not."""

    def __init__(self, notes: TrainerNotes) -> None:
        self.notes = notes
        self._parts: list[str] = []
        self._lock = threading.Lock()  # the trainer may print from threads of its own
        self._saved: tuple[TextIO, TextIO] | None = None
        self._warnings = warnings.catch_warnings()

    def write(self, text: str) -> None:
        with self._lock:
            self._parts.append(text)

    def drain(self) -> dict[str, Any]:
        """The notes and output since the last drain, as sweeps.record.protocol.encode
        takes them."""
        with self._lock:
            output, self._parts = "".join(self._parts), []
        return {"notes": self.notes.drain(), "output": output}

    def __enter__(self) -> TrialOutput:
        self._saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(sys.stdout, self), _Tee(sys.stderr, self)
        # Also resets which warnings were shown: a reused worker shows a trial its own.
        self._warnings.__enter__()
        warnings.showwarning = self._show_warning
        return self

    def __exit__(self, *exc: object) -> None:
        self._warnings.__exit__(None, None, None)
        if self._saved is not None:
            sys.stdout, sys.stderr = self._saved

    def _show_warning(self, message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, file: TextIO | None = None, line: str | None = None,
                      ) -> None:  # fmt: skip
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
        self.notes.pending.append(f"{category.__name__}: {message}")


class _Tee(io.TextIOBase):
    """A text stream that writes to `stream` and to `copy`."""

    def __init__(self, stream: TextIO, copy: TrialOutput) -> None:
        self.stream, self.copy = stream, copy

    def write(self, text: str) -> int:
        self.copy.write(text)
        with contextlib.suppress(Exception):  # a closed worker log costs the trial nothing
            self.stream.write(text)
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self.stream.flush()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", None) or "utf-8"


def _run_pack(
    members: list[dict[str, Any]],
    sizes: list[int],
    dataset: Any,
    said: TrialOutput,
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
        tune.report(encode(EPOCH, metrics, positions=positions, **said.drain()))

    def ended(bundle: int, outcome: list[dict[str, Any]] | Exception) -> None:
        # Reported at once: the driver writes this bundle's rows while the others train.
        positions = list(range(starts[bundle], starts[bundle] + sizes[bundle]))
        if isinstance(outcome, Exception):
            message: str | None = " ".join(f"{type(outcome).__name__}: {outcome}".split())
            finals = [{} for _ in positions]
            # Its traceback, in the output the trial's log keeps: the process goes on.
            trial = tune.get_context().get_trial_id()
            ids = ", ".join(configuration_id(trial, p, len(members)) for p in positions)
            print(f"# --- configurations {ids} failed: ---", file=sys.stderr)
            traceback.print_exception(outcome, file=sys.stderr)
        else:
            message, finals = None, outcome
        errors = [message] * len(positions)
        tune.report(encode(FINAL, finals, positions=positions, errors=errors,
                           **said.drain()))  # fmt: skip

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
