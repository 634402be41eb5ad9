"""Which columns of a run are metrics: the built-in ones and a trainer's own.

A metric is a numeric per-epoch column other than the bookkeeping ones (ids, the epoch,
its time); a custom metric is one beyond the built-in four (training and validation loss
and accuracy), such as `val_macro_f1`. A value a trainer reports only at the end is a
trials column only: one that is numeric, no configuration and none of the columns sweeps
fills itself counts too. The names mirror sweeps/record/columns.py and docs/results.md
(analysis imports nothing of sweeps; tests/analysis/test_metrics.py keeps them in step).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from analysis.load import Run, RunDataError
from analysis.rundir import DEFAULT_METRIC
from analysis.threshold import infer_mode

BUILT_IN = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")  # every epoch's
EPOCH_BOOKKEEPING = frozenset({"run_id", "trial_id", "epoch", "epoch_time_s", "sweep"})
# The trials columns sweeps writes itself (`sweep` is load_runs'): never a custom metric.
TRIAL_COLUMNS = frozenset({
    "run_id", "trial_id", "bundle_id", "config_index", "status", "error", "sweep",
    *BUILT_IN, "test_loss", "test_accuracy", "train_time_s", "params", "epochs_completed",
    "device", "device_name", "threads", "precision", "gpu_fraction", "confusion",
    "started_at", "finished_at",
})  # fmt: skip


def config_names(spec: Mapping[str, Any]) -> set[str]:
    """The columns a spec's configuration can have: each key of its base, grid and sample,
    `dataset` and `seed`, under its own name and with the `config_` prefix."""
    keys = {"dataset", "seed", *(spec.get("base") or {}), *(spec.get("grid") or {}),
            *(spec.get("sample") or {})}  # fmt: skip
    return keys | {f"config_{key}" for key in keys}


def _measures(frame: pd.DataFrame, column: str) -> bool:
    """A column of numbers (not flags) with a value somewhere."""
    values = frame[column]
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    return numeric and bool(values.notna().any())


def epoch_metrics(epochs: pd.DataFrame, config: Iterable[str] = ()) -> list[str]:
    """Every metric of the epochs frame, the built-in ones first, each with a value."""
    skip = EPOCH_BOOKKEEPING | set(config)
    found = [column for column in epochs.columns
             if column not in skip and _measures(epochs, column)]  # fmt: skip
    return [m for m in BUILT_IN if m in found] + [m for m in found if m not in BUILT_IN]


def custom_metrics(
    trials: pd.DataFrame, epochs: pd.DataFrame | None = None, config: Iterable[str] = ()
) -> list[str]:
    """A trainer's own metrics, those per epoch first, then those only the trials have;
    `config` names the columns that hold configuration (analysis.load's
    Run.config_columns, or config_names of the spec)."""
    config = set(config)
    per_epoch = [] if epochs is None else epoch_metrics(epochs, config)
    custom = [m for m in per_epoch if m not in BUILT_IN]
    custom += [column for column in trials.columns
               if column not in TRIAL_COLUMNS | config and column not in custom
               and _measures(trials, column)]  # fmt: skip
    return custom


def run_metric(run: Run, metric: str | None = None) -> str:
    """The metric a report of `run` is about: `metric`, else the spec's, else
    val_accuracy; RunDataError naming it and the run's metrics when the trials lack it."""
    metric = metric or str(run.spec.get("metric") or DEFAULT_METRIC)
    check_metric(run.trials, metric, run_metrics(run))
    return metric


def run_metrics(run: Run) -> list[str]:
    """Every metric of the run with a value: the built-in ones, then its custom ones."""
    known = [m for m in (*BUILT_IN, "test_loss", "test_accuracy") if m in run.trials.columns
             and _measures(run.trials, m)]  # fmt: skip
    return known + custom_metrics(run.trials, run.epochs, run.config_columns)


def check_metric(trials: pd.DataFrame, metric: str, metrics: Iterable[str]) -> None:
    """RunDataError unless `metric` is a numeric trials column: one line naming it and the
    metrics there are."""
    if metric not in trials.columns:
        listed = ", ".join(metrics) or "none"
        raise RunDataError(f"no column {metric!r} in the run; its metrics: {listed}")
    if not pd.api.types.is_numeric_dtype(trials[metric]):
        raise RunDataError(f"column {metric!r} is not numeric (dtype {trials[metric].dtype})")


def metric_mode(spec: Mapping[str, Any], metric: str) -> str:
    """A metric's direction: the spec's `mode` for the spec's metric, else by its name
    (min for a loss or an error)."""
    if metric == spec.get("metric") and spec.get("mode") in ("max", "min"):
        return str(spec["mode"])
    return infer_mode(metric)


def shown_metrics(run: Run, metric: str) -> list[str]:
    """What a report covers, tables and figures alike: `metric`, then the run's custom
    metrics."""
    return [metric, *(m for m in custom_metrics(run.trials, run.epochs, run.config_columns)
                      if m != metric)]  # fmt: skip
