"""A run directory -> DataFrames: `trials, epochs = analysis.load(run_dir)`.

`load_run` also reads the resolved spec the run saved (plain YAML: no sweeps import), for
the swept parameters and the reports' reference figures.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd
import yaml


class RunDataError(ValueError):
    """A run directory, column or value the analysis cannot use; the message names it."""


@dataclasses.dataclass(frozen=True)
class Run:
    path: Path
    trials: pd.DataFrame
    epochs: pd.DataFrame
    spec: dict[str, Any]

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
    trials_dir, epochs_dir = path / "trials", path / "epochs"
    if not any(trials_dir.glob("*.parquet")):
        raise RunDataError(f"run directory {str(path)!r} has no trial results (trials/*.parquet)")
    trials = pd.read_parquet(trials_dir)
    epochs = pd.read_parquet(epochs_dir) if any(epochs_dir.glob("*.parquet")) else pd.DataFrame()
    spec_file = path / "spec.yaml"
    spec = yaml.safe_load(spec_file.read_text()) if spec_file.is_file() else {}
    return Run(path, trials.sort_values("trial_id", ignore_index=True), epochs, spec or {})


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
