"""The layout of a run directory, and its one reader.

    <run>/spec.yaml            the resolved spec (plain YAML)
          manifest.json        versions, host, devices, the planned trials, start and end
                               times (`finished_at` only once the run has ended)
          trials/<id>.parquet  a row per configuration: its config and final metrics
          epochs/<id>.parquet  a row per configuration and epoch
          trials/part-compact-<n>.parquet, epochs/...: the rows of many such files, in one
                               (a large run's folders, compacted as it ends)
          tune/                Ray Tune's own files
          plots/               the figures `sweeps report` draws
          .lock                who writes the run (sweeps.runs.runlock)

sweeps writes it (sweeps.record.results, sweeps.runs.runner) with these names, and everything that
reads a run reads it here. A run directory is a local path or a URI: `file://`, `s3://`,
`gs://` (filesystem options in the query, as for `sweeps run --results`).

A compacted file is written before the files it replaces are removed, so a run stopped
between the two holds some rows twice: a reader takes each trial's rows from one file, the
newest compacted file that has them (`without_copies`).
"""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from analysis.place import Place, StorageError

TRIALS, EPOCHS = "trials", "epochs"
SPEC, MANIFEST = "spec.yaml", "manifest.json"
TUNE, PLOTS = "tune", "plots"
LOCK = ".lock"
# Runs written before the epochs' training metrics took the trials' names (train_loss)
# had the trainer's own; read under the new names, so old and new runs look alike.
OLD_EPOCH_NAMES = {"loss": "train_loss", "accuracy": "train_accuracy"}
COMPACTED = "part-compact-"  # + its number + .parquet: the newest has the largest
DEFAULT_METRIC = "val_accuracy"  # what a sweep is scored by when its spec names no metric
_GLOB = re.compile(r"[*?\[]")


class Status(enum.StrEnum):
    """A configuration's `status` in the trials rows."""

    DONE = "TERMINATED"  # trained until its trainer returned
    STOPPED = "STOPPED"  # stopped early by the scheduler (ASHA); `epochs_completed` says when
    FAILED = "ERROR"  # raised; `error` says what
    DIVERGED = "DIVERGED"  # a loss stopped being a finite number; `error` says where


# The statuses whose metrics measure their configuration: a stopped one's, at the epoch it
# was stopped, is what the scheduler judged it by.
FINISHED = (Status.DONE, Status.STOPPED)


class RunDataError(ValueError):
    """A run directory, column or value the analysis cannot use; the message names it."""


@dataclasses.dataclass(frozen=True)
class RunDir:
    """A run directory: where it is (any pyarrow filesystem) and how to name it to a user."""

    place: Place
    shown: str  # the path as given (local), else the URI

    @classmethod
    def of(cls, location: str | os.PathLike[str]) -> RunDir:
        text = str(location)
        try:
            place = Place.of(text)
            place.check_reachable()
        except StorageError as error:
            reason = str(error).split(": ", 1)[-1]
            raise RunDataError(f"run directory {text!r}: {reason}") from None
        local = "://" not in text
        return cls(place, str(Path(text)) if local else place.uri)

    @property
    def id(self) -> str:
        return self.place.name

    @property
    def parent_name(self) -> str:
        """The folder the run lies in: its sweep's name, as sweeps lays results out."""
        return self.place.parent.name

    def __truediv__(self, name: str) -> Place:
        return self.place / name

    def show(self, name: str) -> str:
        """How to name a file or folder of the run to a user."""
        return f"{self.shown}/{name}" if self.place.local else (self.place / name).uri

    def is_run(self) -> bool:
        return (self / SPEC).is_file() or (self / TRIALS).is_dir()

    def parquet_files(self, folder: str) -> list[str]:
        """A folder's finished Parquet files ('.' and '_' names are still being written)."""
        return (self / folder).parquet_files()

    def read_folder(self, folder: str) -> pd.DataFrame:
        """One folder's files as one frame, lists as tuples; file by file, so that a bad one
        can be named. An empty frame when there are none."""
        table = self.read_table(folder, self.parquet_files(folder))
        if table is None:
            return pd.DataFrame()
        if folder == EPOCHS and not set(OLD_EPOCH_NAMES.values()) & set(table.column_names):
            table = table.rename_columns([OLD_EPOCH_NAMES.get(n, n) for n in table.column_names])
        return to_frame(table)

    def read_table(self, folder: str, paths: list[str]) -> pa.Table | None:
        """The rows of a folder's files `paths` as one table, each trial's from one file
        (`without_copies`), in file name order; None for no files."""
        tables = without_copies({os.path.basename(path): self._read_table(folder, path)
                                 for path in paths})  # fmt: skip
        if not tables:
            return None
        try:  # a column only some files have is null in the others
            return pa.concat_tables(tables.values(), promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise RunDataError(
                f"{folder}/ in {self.shown!r} has files whose columns disagree ({_reason(error)})"
            ) from None

    def _read_table(self, folder: str, path: str) -> pa.Table:
        try:  # ParquetFile: a third of read_table's time for a small file (a dataset each)
            return pq.ParquetFile(path, filesystem=self.place.fs).read()
        except (pa.ArrowException, OSError) as error:
            name = f"{folder}/{os.path.basename(path)}"
            raise RunDataError(
                f"{name} in {self.shown!r} is not a readable Parquet file ({_reason(error)})"
            ) from None

    def read_spec(self) -> dict[str, Any]:
        """The resolved spec the run saved; {} when it has none."""
        text = self._read(SPEC)
        if text is None:
            return {}
        try:  # bytes, so that undecodable text is a YAMLError too
            spec = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark else ""
            raise RunDataError(f"{SPEC} in {self.shown!r} is not valid YAML{where}") from None
        if spec is not None and not isinstance(spec, dict):
            raise RunDataError(f"{SPEC} in {self.shown!r} is not a YAML mapping")
        return spec or {}

    def read_manifest(self) -> dict[str, Any]:
        """The run's manifest; {} when it has none."""
        text = self._read(MANIFEST)
        if text is None:
            return {}
        try:  # ValueError: undecodable bytes as well as bad JSON
            manifest = json.loads(text)
        except ValueError as error:
            reason = ""
            if isinstance(error, json.JSONDecodeError):
                reason = f" ({error.msg}, line {error.lineno})"
            raise RunDataError(f"{MANIFEST} in {self.shown!r} is not valid JSON{reason}") from None
        if not isinstance(manifest, dict):
            raise RunDataError(f"{MANIFEST} in {self.shown!r} is not a JSON object")
        return manifest

    def _read(self, name: str) -> bytes | None:
        place = self / name
        if not place.is_file():
            return None
        try:
            return place.read_bytes()
        except OSError as error:
            raise RunDataError(f"cannot read {name} in {self.shown!r}: {error}") from None


def find_runs(pattern: str | os.PathLike[str]) -> list[RunDir]:
    """The run directories a glob pattern names (`results/report-a-*/*`, also in a URI:
    `s3://bucket/results/quickstart/*`), in name order; folders that hold no run are
    passed over. RunDataError when none is found."""
    text = str(pattern)
    root = RunDir.of(text).place
    parts = root.path.split("/")
    first = next((i for i, part in enumerate(parts) if _GLOB.search(part)), len(parts))
    for _ in parts[first:]:
        root = root.parent
    places = [root]
    for part in parts[first:]:
        if _GLOB.search(part):
            children = [child for place in places for child in place.subdirectories()]
            places = [child for child in children if fnmatch.fnmatchcase(child.name, part)]
        else:
            places = [p / part for p in places]
    local = "://" not in text
    runs = [RunDir(p, p.path if local else p.uri) for p in places]
    runs = [run for run in runs if run.is_run()]
    if not runs:
        raise RunDataError(f"no run directory matches {text!r}")
    return runs


def compacted_number(name: str) -> int | None:
    """The number of a compacted file (`part-compact-<n>.parquet`), None for another."""
    number = name.removeprefix(COMPACTED).removesuffix(".parquet")
    return int(number) if name.startswith(COMPACTED) and number.isdigit() else None


def without_copies(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """A folder's tables by file name, less the files whose trials a compacted file holds
    too (a compaction stopped before it removed them): compacted files, the newest first,
    come before the others, and a file goes if one before it has any of its trial ids. A
    trial's rows are always written in one file, so a file is a copy whole or not at all."""
    if not any(compacted_number(name) is not None for name in tables):
        return tables

    def precedence(name: str) -> tuple[int, int, str]:
        number = compacted_number(name)
        return (0, -number, "") if number is not None else (1, 0, name)

    kept, seen = set(), set()
    for name in sorted(tables, key=precedence):
        table = tables[name]
        ids = (set(table.column("trial_id").unique().to_pylist())
               if "trial_id" in table.column_names else set())  # fmt: skip
        if not ids & seen:
            kept.add(name)
            seen |= ids
    return {name: table for name, table in sorted(tables.items()) if name in kept}


def to_frame(table: pa.Table) -> pd.DataFrame:
    """A table as pandas, with list columns (`hidden`, `confusion`) as tuples: hashable, so
    that `groupby("hidden")` and `drop_duplicates` work."""
    frame = table.to_pandas()
    for field in table.schema:
        if pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            frame[field.name] = frame[field.name].map(as_tuple)
    return frame


def as_tuple(value: Any) -> Any:
    """Arrays and lists, nested too, as tuples; anything else as it is."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return tuple(as_tuple(item) for item in value)
    return value


def _reason(error: Exception) -> str:
    """The first sentence of pyarrow's message, without the path the caller names anyway."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    reason = re.sub(r"^Could not open Parquet input source '.*': ", "", lines[0])
    return reason.split(". ")[0].rstrip(" :.")
