"""The reports' tables, as plain DataFrames (rendering lives in analysis.render).

Everything starts from `config_table`: one row per configuration of the swept parameters
(seeds folded together), each metric's mean and standard deviation over the repeats. The
report tables are views of it, with the report's figures beside ours where the preset
carries them (`ref1`, `diff1` = ours - ref1, ...; their sources come back alongside).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis.load import RunDataError, hashable, require_numeric
from analysis.rundir import DEFAULT_METRIC, Status
from analysis.settings import mark_reference

REPORT_B_METRICS = [
    "train_accuracy", "train_loss", "val_accuracy", "val_loss", "test_accuracy", "test_loss",
    "params", "train_time_s",
]  # fmt: skip
DEFAULT_METRICS = ["val_accuracy", "val_loss", "test_accuracy", "train_time_s"]


def config_keys(swept: list[str]) -> list[str]:
    return [key for key in swept if key != "seed"]


def config_table(
    trials: pd.DataFrame, swept: list[str], metrics: list[str] | None = None
) -> pd.DataFrame:
    """One row per configuration: `runs`, `failed`, and `<metric>`, `<metric>_std` each."""
    keys = config_keys(swept)
    if metrics is None:
        metrics = [m for m in DEFAULT_METRICS if m in trials.columns]
    require_numeric(trials, *metrics)
    frame = trials.assign(**{key: trials[key].map(hashable) for key in keys})
    frame = frame.assign(_failed=frame["status"].ne(Status.DONE), _all="all")
    groups = frame.groupby(keys or ["_all"], sort=True, dropna=False)
    table = groups.agg(runs=("trial_id", "size"), failed=("_failed", "sum"))
    for metric in metrics:
        table[metric] = groups[metric].mean()
        table[f"{metric}_std"] = groups[metric].std(ddof=1)
    table = table.reset_index()
    return table.drop(columns=["_all"]) if not keys else table


def add_references(
    table: pd.DataFrame, references: list[dict[str, Any]], keys: list[str], metric: str
) -> tuple[pd.DataFrame, list[str]]:
    """`ref<i>` (the report's figure) and `diff<i>` (ours - it) for each reference that
    gives `metric`; also the sources, in the same order."""
    sources: list[str] = []
    for reference in references:
        rows = [r for r in reference.get("rows", []) if metric in r]
        if not rows or not all(key in row for row in rows for key in keys):
            continue
        index = len(sources) + 1
        figures = {tuple(hashable(row[k]) for k in keys): row[metric] for row in rows}
        ours_keys = table[keys].apply(lambda r: tuple(hashable(v) for v in r), axis=1)
        table = table.assign(**{f"ref{index}": ours_keys.map(figures).astype(float)})
        table[f"diff{index}"] = table[metric] - table[f"ref{index}"]
        sources.append(str(reference.get("source", f"reference {index}")))
    return table, sources


def batch_size_table(
    trials: pd.DataFrame, references: list[dict[str, Any]], metric: str = DEFAULT_METRIC
) -> tuple[pd.DataFrame, list[str]]:
    """Report A's table: batch sizes as columns, large to small; rows `metric`, its std
    when there are repeats, and each reference with our difference."""
    table = config_table(trials, ["batch_size"], [metric])
    table, sources = add_references(table, references, ["batch_size"], metric)
    rows = [metric]
    if table[f"{metric}_std"].notna().any():
        rows.append(f"{metric}_std")
    rows += [c for c in table.columns if c.startswith(("ref", "diff"))]
    wide = table.set_index("batch_size")[rows].T.sort_index(axis=1, ascending=False)
    wide.columns = [str(c) for c in wide.columns]
    return wide.rename_axis("batch_size").reset_index(), sources


def activation_table(
    trials: pd.DataFrame, references: list[dict[str, Any]]
) -> tuple[pd.DataFrame, list[str]]:
    """Report A's A4 table: activation, loss, accuracy (on the validation = test set)."""
    table = config_table(trials, ["activation"], ["val_loss", "val_accuracy"])
    return add_references(table, references, ["activation"], "val_accuracy")


def report_b_table(
    trials: pd.DataFrame, swept: list[str], references: list[dict[str, Any]]
) -> tuple[pd.DataFrame, list[str]]:
    """Report B's table: train / val / test accuracy and loss, params, training time."""
    table = config_table(trials, swept, [m for m in REPORT_B_METRICS if m in trials.columns])
    return add_references(table, references, config_keys(swept), "test_accuracy")


def report_table(
    trials: pd.DataFrame, spec: dict[str, Any], swept: list[str]
) -> tuple[str, pd.DataFrame, list[str]]:
    """The table a report shows for this sweep: its title, the frame, the sources."""
    if trials.empty:
        raise RunDataError("the run has no trials")
    keys = config_keys(swept)
    # A reference measured under other settings than the run's says so in its source.
    references = [mark_reference(ref, spec) for ref in spec.get("reference") or []]
    held_out = float(spec.get("base", {}).get("validation_split", 0) or 0) > 0
    if held_out:
        return ("train / val / test", *report_b_table(trials, swept, references))
    if keys == ["batch_size"]:
        return ("val_accuracy by batch size", *batch_size_table(trials, references))
    if keys == ["activation"]:
        return ("activations (validation = test set)", *activation_table(trials, references))
    table, sources = add_references(config_table(trials, swept), references, keys, "val_accuracy")
    return "configurations", table, sources
