"""The reports' tables, as plain DataFrames (rendering lives in analysis.render).

Everything starts from `config_table`: one row per configuration of the swept parameters
(seeds folded together), each metric's mean and standard deviation over the repeats. The
report tables are views of it, with the report's figures beside ours where the preset
carries them (`ref1`, `diff1` = ours - ref1, ...; their sources come back alongside).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import pandas as pd

from analysis.load import RunDataError, hashable, require_numeric
from analysis.metrics import config_names, custom_metrics
from analysis.rundir import DEFAULT_METRIC, FINISHED
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
    frame = frame.assign(_failed=~frame["status"].isin(FINISHED), _all="all")
    groups = frame.groupby(keys or ["_all"], sort=True, dropna=False)
    table = groups.agg(runs=("trial_id", "size"), failed=("_failed", "sum"))
    for metric in metrics:
        table[metric] = groups[metric].mean()
        table[f"{metric}_std"] = groups[metric].std(ddof=1)
    table = table.reset_index()
    return table.drop(columns=["_all"]) if not keys else table


class NumberedReference(NamedTuple):
    """A reference that gives a metric: its rows that do, and its number in a table
    (`ref<number>`), None where the table leaves it out."""

    reference: dict[str, Any]
    rows: list[dict[str, Any]]
    number: int | None


def numbered_references(
    references: Sequence[dict[str, Any]], keys: Sequence[str], metric: str
) -> list[NumberedReference]:
    """The references that give `metric`, numbered as a table of `keys` numbers them
    (ref1, ref2, ...), in order: one whose rows do not all name every key has no number,
    for no row of the table could take its figures. The tables, the figures' legends and
    the report's notes number references by this alone, so that "ref2" is one reference
    wherever it is read."""
    numbered: list[NumberedReference] = []
    count = 0
    for reference in references:
        rows = [row for row in reference.get("rows") or [] if metric in row]
        if not rows:
            continue
        placed = all(key in row for row in rows for key in keys)
        count += placed
        numbered.append(NumberedReference(reference, rows, count if placed else None))
    return numbered


def add_references(
    table: pd.DataFrame, references: list[dict[str, Any]], keys: list[str], metric: str
) -> tuple[pd.DataFrame, list[str]]:
    """`ref<i>` (the report's figure) and `diff<i>` (ours - it) for each reference that
    gives `metric` and names every key (numbered_references); also the sources, in the
    same order."""
    sources: list[str] = []
    for reference, rows, index in numbered_references(references, keys, metric):
        if index is None:
            continue
        figures = {tuple(hashable(row[k]) for k in keys): row[metric] for row in rows}
        ours_keys = table[keys].apply(lambda r: tuple(hashable(v) for v in r), axis=1)
        table = table.assign(**{f"ref{index}": ours_keys.map(figures).astype(float)})
        table[f"diff{index}"] = table[metric] - table[f"ref{index}"]
        sources.append(str(reference.get("source", f"reference {index}")))
    return table, sources


def batch_size_table(
    trials: pd.DataFrame,
    references: list[dict[str, Any]],
    metric: str = DEFAULT_METRIC,
    extra: Sequence[str] = (),
) -> tuple[pd.DataFrame, list[str]]:
    """Report A's table: batch sizes as columns, large to small; rows `metric`, its std
    when there are repeats, each reference with our difference, then each `extra` metric
    (and its std)."""
    table = config_table(trials, ["batch_size"], [metric, *extra])
    table, sources = add_references(table, references, ["batch_size"], metric)
    rows = []
    for name in (metric, "refs", *extra):
        if name == "refs":
            rows += [c for c in table.columns if c.startswith(("ref", "diff"))]
            continue
        rows.append(name)
        if table[f"{name}_std"].notna().any():
            rows.append(f"{name}_std")
    wide = table.set_index("batch_size")[rows].T.sort_index(axis=1, ascending=False)
    wide.columns = [str(c) for c in wide.columns]
    return wide.rename_axis("batch_size").reset_index(), sources


def activation_table(
    trials: pd.DataFrame, references: list[dict[str, Any]], extra: Sequence[str] = ()
) -> tuple[pd.DataFrame, list[str]]:
    """Report A's A4 table: activation, loss, accuracy (on the validation = test set), then
    each `extra` metric."""
    metrics = list(dict.fromkeys(["val_loss", "val_accuracy", *extra]))
    table = config_table(trials, ["activation"], metrics)
    return add_references(table, references, ["activation"], "val_accuracy")


def report_b_table(
    trials: pd.DataFrame,
    swept: list[str],
    references: list[dict[str, Any]],
    extra: Sequence[str] = (),
) -> tuple[pd.DataFrame, list[str]]:
    """Report B's table: train / val / test accuracy and loss, params, training time, then
    each `extra` metric; a column with no value anywhere (no test split) left out."""
    table = config_table(trials, swept, present(trials, [*REPORT_B_METRICS, *extra]))
    return add_references(table, references, config_keys(swept), "test_accuracy")


def present(trials: pd.DataFrame, metrics: Sequence[str], keep: str | None = None) -> list[str]:
    """Those of `metrics` the trials have a value of, each once; `keep` wherever it is a
    column, valued or not (a run's own metric: its gaps say that nothing measured it)."""
    return [
        m for m in dict.fromkeys(metrics) if m in trials.columns
        and (m == keep or (pd.api.types.is_numeric_dtype(trials[m]) and trials[m].notna().any()))
    ]  # fmt: skip


def report_table(
    trials: pd.DataFrame,
    spec: dict[str, Any],
    swept: list[str],
    metric: str | None = None,
    custom: Sequence[str] | None = None,
) -> tuple[str, pd.DataFrame, list[str]]:
    """The table a report shows for this sweep: its title, the frame, the sources. Every
    layout has `metric` (the spec's by default) and the `custom` metrics (by default the
    numeric trials columns that are neither configuration nor sweeps' own:
    analysis.metrics), and no metric column without a value."""
    if trials.empty:
        raise RunDataError("the run has no trials")
    metric = metric or str(spec.get("metric") or DEFAULT_METRIC)
    if custom is None:
        custom = custom_metrics(trials, config=config_names(spec) | set(swept))
    extra = present(trials, [m for m in custom if m != metric])
    keys = config_keys(swept)
    # A reference measured under other settings than the run's says so in its source.
    references = [mark_reference(ref, spec) for ref in spec.get("reference") or []]
    held_out = float(spec.get("base", {}).get("validation_split", 0) or 0) > 0
    if held_out:
        table, sources = report_b_table(trials, swept, references, [metric, *extra])
        return "train / val / test", table, sources
    if keys == ["batch_size"] and metric in trials.columns:
        return (f"{metric} by batch size", *batch_size_table(trials, references, metric, extra))
    if keys == ["activation"]:
        table, sources = activation_table(trials, references, present(trials, [metric, *extra]))
        return "activations (validation = test set)", table, sources
    metrics = present(trials, [metric, *extra, *DEFAULT_METRICS], keep=metric)
    table, sources = add_references(config_table(trials, swept, metrics), references, keys, metric)
    return "configurations", table, sources


def tidy_table(
    trials: pd.DataFrame,
    keys: list[str],
    metrics: Sequence[str],
    references: Sequence[dict[str, Any]] = (),
    aggregate: bool = False,
) -> tuple[pd.DataFrame, list[str]]:
    """The trials as a frame a user would build, one column per key and metric: a row per
    configuration (its trial_id, `keys`, status, `metrics`), or with `aggregate` a row per
    combination of the keys' values (seeds folded: config_table, with the references that
    give the first metric beside it); also the references' sources."""
    if aggregate:
        table = config_table(trials, keys, list(metrics))
        return add_references(table, list(references), config_keys(keys), metrics[0])
    columns = list(dict.fromkeys(["trial_id", *keys, "status", *metrics]))
    return trials[[c for c in columns if c in trials.columns]].reset_index(drop=True), []
