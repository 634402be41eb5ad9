"""A run directory -> DataFrames: `trials, epochs = analysis.load(run_dir)`.

`load_run` also reads the resolved spec the run saved (plain YAML: no sweeps import), for
the swept parameters and the reports' reference figures, and the run's manifest.json.
A file that cannot be read is a RunDataError naming it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml


class RunDataError(ValueError):
    """A run directory, column or value the analysis cannot use; the message names it."""


@dataclasses.dataclass(frozen=True)
class Run:
    path: Path
    trials: pd.DataFrame
    epochs: pd.DataFrame
    spec: dict[str, Any]
    manifest: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.spec.get("name", self.path.parent.name))

    @property
    def swept(self) -> list[str]:
        """The parameters that vary between trials, as the spec declared them."""
        spec = self.spec
        keys = [*spec.get("grid", {}), *spec.get("sample", {})]
        if int(spec.get("repeats", 1)) > 1:
            keys.append("seed")
        return [key for key in keys if key in self.trials.columns]

    @property
    def references(self) -> list[dict[str, Any]]:
        return list(self.spec.get("reference") or [])


def load(run_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trials and epochs frames of a run."""
    run = load_run(run_dir)
    return run.trials, run.epochs


def load_run(run_dir: str | Path) -> Run:
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDataError(f"run directory {str(path)!r} does not exist")
    if not _parquet_files(path / "trials"):
        raise RunDataError(f"run directory {str(path)!r} has no trial results (trials/*.parquet)")
    trials = _read_parquet(path, "trials")
    epochs = _read_parquet(path, "epochs")
    spec, manifest = _read_spec(path), _read_manifest(path)
    return Run(path, trials.sort_values("trial_id", ignore_index=True), epochs, spec, manifest)


def _parquet_files(folder: Path) -> list[Path]:
    """The folder's finished Parquet files: '.' and '_' names are still being written."""
    files = folder.glob("*.parquet") if folder.is_dir() else []
    return sorted(file for file in files if not file.name.startswith((".", "_")))


def _read_parquet(run: Path, folder: str) -> pd.DataFrame:
    """One folder's files as one frame; file by file, so a bad one can be named."""
    tables = [_read_table(run, file) for file in _parquet_files(run / folder)]
    if not tables:
        return pd.DataFrame()
    try:  # a column only some files have is null in the others
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise RunDataError(
            f"{folder}/ in {str(run)!r} has files whose columns disagree ({_reason(error)})"
        ) from None
    return table.to_pandas()


def _read_table(run: Path, file: Path) -> pa.Table:
    try:
        return pq.read_table(file)
    except (pa.ArrowException, OSError) as error:
        name = file.relative_to(run).as_posix()
        raise RunDataError(
            f"{name} in {str(run)!r} is not a readable Parquet file ({_reason(error)})"
        ) from None


def _reason(error: Exception) -> str:
    """The first sentence of pyarrow's message, without the path the caller names anyway."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    reason = re.sub(r"^Could not open Parquet input source '.*': ", "", lines[0])
    return reason.split(". ")[0].rstrip(" :.")


def _read_spec(run: Path) -> dict[str, Any]:
    file = run / "spec.yaml"
    if not file.is_file():
        return {}
    try:  # bytes, so that undecodable text is a YAMLError too
        spec = yaml.safe_load(file.read_bytes())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise RunDataError(f"spec.yaml in {str(run)!r} is not valid YAML{where}") from None
    if spec is not None and not isinstance(spec, dict):
        raise RunDataError(f"spec.yaml in {str(run)!r} is not a YAML mapping")
    return spec or {}


def _read_manifest(run: Path) -> dict[str, Any]:
    file = run / "manifest.json"
    if not file.is_file():
        return {}
    try:  # ValueError: undecodable bytes as well as bad JSON
        manifest = json.loads(file.read_bytes())
    except ValueError as error:
        reason = ""
        if isinstance(error, json.JSONDecodeError):
            reason = f" ({error.msg}, line {error.lineno})"
        raise RunDataError(f"manifest.json in {str(run)!r} is not valid JSON{reason}") from None
    if not isinstance(manifest, dict):
        raise RunDataError(f"manifest.json in {str(run)!r} is not a JSON object")
    return manifest


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
    """A config value usable as a group key: lists (e.g. `hidden`) become tuples."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    return tuple(value) if isinstance(value, list) else value
