"""sweeps as a library, for a notebook or a script: `run` is `sweeps run`, returning the
run's results as `analysis.Run` (what `analysis.load_run` reads) instead of printing them.

    import sweeps
    result = sweeps.run("quickstart", epochs=2, set={"batch_size": [64, 512]})
    result.trials.sort_values("val_accuracy")

The overrides are the flags of `sweeps run` under their Python names (`OVERRIDES`). Bad
input is one of the library's exceptions before anything starts, with the message
`sweeps run` prints (SpecError for a spec, an override or a config value, and the others
the command line turns into exit 2); a run that stops writing is ResultsWriteError. What
`sweeps run` warns of, trials that failed or did not report the metric, is a
`SweepWarning`; a run where no trial reported the spec's metric is `NoMetricError`. It
prints nothing unless asked (`progress=True`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from analysis.load import Run, load_run
from sweeps.plan.overrides import Overrides
from sweeps.plan.spec import SweepSpec, load_spec, parse_spec

__all__ = ["OVERRIDES", "NoMetricError", "SweepWarning", "load_model", "run"]

# run()'s keywords, each a flag of `sweeps run` -> the field of Overrides it sets.
OVERRIDES = {
    "set": "assignments",  # --set: "KEY=VALUE" strings, or a mapping (see `assignments`)
    "epochs": "epochs",
    "repeats": "repeats",
    "cpus_per_trial": "cpus",
    "gpus_per_trial": "gpus",
    "max_concurrent": "max_concurrent",
    "fuse": "fuse",
    "max_bundle": "max_bundle",
    "pack": "pack",
    "callback": "callbacks",  # --callback: a logger's name, or several
}


class SweepWarning(UserWarning):
    """What `sweeps run` would warn of on stderr: failed trials, a metric not reported."""


class NoMetricError(RuntimeError):
    """No trial reported the spec's metric: the run's results hold nothing it scores by."""

    def __init__(self, message: str, run_dir: str) -> None:
        super().__init__(message)
        self.run_dir = run_dir  # the results, for analysis.load_run all the same


def run(
    spec: str | os.PathLike[str] | SweepSpec | Mapping[str, Any],
    *,
    results: str | os.PathLike[str] | None = None,
    address: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    **overrides: Any,
) -> Run:
    """Run a sweep, as `sweeps run` does, and return its results.

    `spec` is a preset's name, a spec file, a SweepSpec, or a spec as a mapping (what
    the YAML would hold). `results`, `address` and `data_dir` are `sweeps run`'s
    `--results`, `--address` and `--data-dir`; `overrides` its other flags (`OVERRIDES`):
    `set="lr=0.01,0.1"`, `set=["lr=0.01,0.1", "hidden=[64,64]"]`, or
    `set={"lr": [0.01, 0.1], "hidden": [[64, 64]]}` (a list is a grid axis, as
    `--set lr=0.01,0.1`; a list value is one item of it), `epochs=2`, `repeats=3`,
    `callback="tensorboard"`, ... With `progress`, the progress `sweeps run` shows goes
    to stderr; without, nothing is printed.

    Failed trials are rows of the result (`status` ERROR, `error`), with a SweepWarning;
    KeyboardInterrupt if the run was interrupted before every trial ended (the rows
    written stay: `sweeps resume` trains the rest).
    """
    from sweeps.record.loggers import check_callbacks
    from sweeps.runs.runner import run_sweep
    from sweeps.runs.trainable import import_folders

    sweep = overrides_of(overrides).apply(_spec(spec))
    check_callbacks(sweep)
    with _quiet(not progress):
        outcome = run_sweep(
            sweep, results=_text(results), address=address, data_dir=_text(data_dir),
            say=_say if progress else _silent,
            import_path=import_folders(os.fspath(spec) if isinstance(spec, str | os.PathLike)
                                       else None),
        )  # fmt: skip
    for line in outcome.metric_warnings():
        warnings.warn(line, SweepWarning, stacklevel=2)
    if outcome.failed:
        warnings.warn(f"{outcome.failed} of {outcome.total} trials failed: their `error`"
                      " says why", SweepWarning, stacklevel=2)  # fmt: skip
    no_metric = outcome.metric_error()
    if no_metric is not None:
        raise NoMetricError(no_metric, outcome.run_dir)
    if outcome.finished < outcome.total:
        raise KeyboardInterrupt(
            f"interrupted: {outcome.finished} of {outcome.total} trials have results;"
            f" continue with `sweeps resume {outcome.run_dir}`"
        )
    return load_run(outcome.run_dir)


def load_model(
    run_dir: str | os.PathLike[str],
    config_id: str,
    which: str | None = None,
    device: str = "cpu",
) -> Any:
    """A configuration's trained model from a run kept with `checkpoint: last | best`: a
    torch module, built from the configuration's config with the weights of its best
    epoch (`which="best"`), its last (`"last"`), or by default best where the run kept it.
    It maps images (N, H, W) scaled to [0, 1] to logits (N, 10); `.config` is its config.
    `config_id` is the configuration's `trial_id` in the rows. CheckpointError (a
    RunDataError) naming what is missing."""
    from analysis.rundir import RunDir
    from sweeps.runs.checkpoints import checkpoint_file, read_checkpoint
    from trainers.checkpoint import load_model as build

    place = RunDir.of(os.fspath(run_dir)).place
    return build(read_checkpoint(checkpoint_file(place, config_id, which)), device)


def overrides_of(keywords: Mapping[str, Any]) -> Overrides:
    """run()'s override keywords as the flags' Overrides; TypeError naming an unknown one.
    None leaves the spec's value, as an absent flag does."""
    unknown = [name for name in keywords if name not in OVERRIDES]
    if unknown:
        raise TypeError(f"run() got an unknown override {unknown[0]!r}; overrides:"
                        f" {', '.join(OVERRIDES)}")  # fmt: skip
    fields: dict[str, Any] = {}
    for name, value in keywords.items():
        if value is None:
            continue
        if name == "set":
            value = assignments(value)
        elif name == "callback":
            value = (value,) if isinstance(value, str) else tuple(value)
        fields[OVERRIDES[name]] = value
    return Overrides(**fields)


def assignments(value: str | list[str] | tuple[str, ...] | Mapping[str, Any]) -> tuple[str, ...]:
    """`set=` as `--set` strings: a string or strings as they are; a mapping's values as
    YAML, a list or tuple being several values (a grid axis) and anything else one."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Mapping):
        return tuple(f"{key}={_values(item)}" for key, item in value.items())
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise TypeError(f"set: 'KEY=VALUE' strings or a mapping of keys to values, got {value!r}")


def _values(item: Any) -> str:
    """One value, or a list of them, as the text after `--set KEY=`."""
    values = list(item) if isinstance(item, list | tuple) else [item]
    text = yaml.safe_dump(values, default_flow_style=True, width=float("inf")).strip()
    return text[1:-1]  # the flow list's items, without its brackets


def _spec(spec: str | os.PathLike[str] | SweepSpec | Mapping[str, Any]) -> SweepSpec:
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, Mapping):
        return parse_spec(spec, "spec")
    if isinstance(spec, str | os.PathLike):
        return load_spec(os.fspath(spec))
    raise TypeError(f"spec: a preset, a file, a SweepSpec or a mapping, got {spec!r}")


@contextlib.contextmanager
def _quiet(quiet: bool) -> Iterator[None]:
    """The progress display writes to stderr: kept there only when asked for."""
    if not quiet:
        yield
        return
    with open(os.devnull, "w") as nowhere, contextlib.redirect_stderr(nowhere):
        yield


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _silent(message: str) -> None:
    pass


def _text(path: str | os.PathLike[str] | None) -> str | None:
    return None if path is None else os.fspath(path)
