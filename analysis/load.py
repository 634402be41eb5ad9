"""A run directory -> DataFrames: `trials, epochs = analysis.load(run_dir)`.

`load_run` also reads the resolved spec the run saved (plain YAML: no sweeps import), for
the swept parameters and the reports' reference figures, and the run's manifest.json.
`load_runs(pattern)` reads several runs as one pair of frames, with a `sweep` column.
A run directory is a local path or a URI (analysis.rundir); a file that cannot be read
is a RunDataError naming it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import pandas as pd

from analysis.numbers import value_text
from analysis.rundir import (
    DEFAULT_METRIC,
    EPOCHS,
    TRIALS,
    RunDataError,
    RunDir,
    as_tuple,
    find_runs,
)
from analysis.settings import run_settings

__all__ = ["Run", "RunDataError", "load", "load_run", "load_runs"]


@dataclasses.dataclass(frozen=True)
class Run:
    dir: RunDir
    trials: pd.DataFrame
    epochs: pd.DataFrame
    spec: dict[str, Any]
    manifest: dict[str, Any] = dataclasses.field(default_factory=dict)
    # The configurations kept (analysis.select, `--where`): key -> value, each key fixed.
    where: tuple[tuple[str, Any], ...] = ()

    @property
    def path(self) -> str:
        """The run directory as a user names it: the path given, or its URI."""
        return self.dir.shown

    @property
    def id(self) -> str:
        return self.dir.id

    @property
    def name(self) -> str:
        return str(self.spec.get("name", self.dir.parent_name))

    @property
    def title(self) -> str:
        """ "quickstart run 20261125-114820-8ad7": what figures and pages are headed with;
        "..., where lr=0.01" for a selection of its configurations."""
        selection = f", where {self.selection}" if self.where else ""
        return f"{self.name} run {self.id}{selection}"

    @property
    def selection(self) -> str:
        """ "lr=0.01, width=64": the configurations kept of the run; "" for all of them."""
        return ", ".join(f"{key}={value_text(value)}" for key, value in self.where)

    @property
    def swept(self) -> list[str]:
        """The parameters that vary between trials, as the spec declared them, less those a
        selection fixes."""
        spec = self.spec
        keys = [*spec.get("grid", {}), *spec.get("sample", {})]
        if int(spec.get("repeats", 1)) > 1:
            keys.append("seed")
        fixed = {key for key, _ in self.where}
        return [key for key in keys if key in self.trials.columns and key not in fixed]

    @property
    def settings(self) -> dict[str, Any]:
        """What every trial shares: the dataset and the base config."""
        return run_settings(self.spec)

    @property
    def config_columns(self) -> list[str]:
        """The trials columns that hold configuration (the rest are ids and results): a key
        of the spec's base, grid or sample, `dataset`, `seed`, under its own name or with
        the `config_` prefix a key named like a result column gets."""
        spec = self.spec
        keys = ["dataset", *(spec.get("base") or {}), *spec.get("grid", {}),
                *spec.get("sample", {}), "seed"]  # fmt: skip
        columns = []
        for key in dict.fromkeys(keys):
            for column in (f"config_{key}", key):
                if column in self.trials.columns:
                    columns.append(column)
                    break
        return columns

    @property
    def planned(self) -> int | None:
        """The configurations the run was to train: from the manifest, else the spec; of a
        selection, those with its values (None where that cannot be known: a sampled key)."""
        spec = self.spec
        grid = spec.get("grid") or {}
        if any(key not in grid and key != "seed" for key, _ in self.where):
            return None
        if self.where and spec.get("search", "grid") != "grid":  # a grid key is a choice
            return None
        # Each fixed grid key keeps one of its values; a fixed seed, one of the repeats.
        kept = math.prod(len(grid[key]) if key in grid else int(spec.get("repeats", 1))
                         for key, _ in self.where)  # fmt: skip
        planned = self.manifest.get("trials")
        if isinstance(planned, int) and not isinstance(planned, bool):
            return planned // kept if planned % kept == 0 else None
        if not spec:
            return None
        count = math.prod(len(v) for v in grid.values())
        return count * int(spec.get("repeats", 1)) * int(spec.get("num_samples", 1)) // kept

    @property
    def in_progress(self) -> bool:
        """Started and not ended: still running, or its driver died (`sweeps resume`)."""
        return "started_at" in self.manifest and "finished_at" not in self.manifest

    @property
    def references(self) -> list[dict[str, Any]]:
        return list(self.spec.get("reference") or [])


def load(run_dir: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trials and epochs frames of a run (a local path or a URI)."""
    run = load_run(run_dir)
    return run.trials, run.epochs


def load_run(run_dir: str | os.PathLike[str] | RunDir) -> Run:
    where = run_dir if isinstance(run_dir, RunDir) else RunDir.of(run_dir)
    if not where.place.is_dir():
        raise RunDataError(f"run directory {where.shown!r} does not exist")
    if not where.parquet_files(TRIALS):
        raise RunDataError(f"run directory {where.shown!r} has no trial results (trials/*.parquet)")
    trials = where.read_folder(TRIALS)
    epochs = where.read_folder(EPOCHS)
    spec, manifest = where.read_spec(), where.read_manifest()
    run = Run(where, trials.sort_values("trial_id", ignore_index=True), epochs, spec, manifest)
    # For the plots, which take a bare frame: its swept axes (no point pools one of them
    # as repeats) and the metric a figure is of when none is named.
    run.trials.attrs = {"swept": run.swept, "metric": str(spec.get("metric") or DEFAULT_METRIC)}
    return run


def load_runs(pattern: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trials and epochs of every run a glob pattern names, as one frame each, with
    `sweep` (the spec's name) and `run_id` first: `load_runs("results/report-a-*/*")`,
    `load_runs("s3://bucket/results/quickstart/*")`. A column only some runs have is
    empty in the others."""
    runs = [load_run(where) for where in find_runs(pattern)]
    return _stack([(run, run.trials) for run in runs]), _stack([(run, run.epochs) for run in runs])


def _stack(frames: list[tuple[Run, pd.DataFrame]]) -> pd.DataFrame:
    marked = []
    for run, frame in frames:
        if frame.empty:
            continue
        if "run_id" not in frame.columns:  # a run written by hand, say
            frame = frame.assign(run_id=run.id)
        rest = [column for column in frame.columns if column not in ("sweep", "run_id")]
        marked.append(frame.assign(sweep=run.name)[["sweep", "run_id", *rest]])
    return pd.concat(marked, ignore_index=True) if marked else pd.DataFrame()


def require_numeric(frame: pd.DataFrame, *columns: str) -> None:
    """Raise RunDataError unless every column exists and holds numbers."""
    for column in columns:
        if column not in frame.columns:
            raise RunDataError(
                f"no column {column!r}; columns: {', '.join(map(str, frame.columns))}"
            )
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise RunDataError(f"column {column!r} is not numeric (dtype {frame[column].dtype})")


def hashable(value: Any) -> Any:
    """A config value usable as a group key: lists and arrays (e.g. `hidden`) as tuples."""
    return as_tuple(value)
