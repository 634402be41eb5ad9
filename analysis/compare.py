"""Two runs side by side, only where they are alike.

`compare_runs` pairs the configurations of two runs that match on every config key (the
dataset, epochs and every other base value, each swept parameter), seeds aside: the
repeats of a configuration are its mean. What differs is listed first; when nothing pairs
it refuses, naming the keys, unless forced, and then it pairs on the keys whose values
overlap, averaging over the others.

"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from analysis.load import Run, RunDataError, hashable, require_numeric
from analysis.rundir import DEFAULT_METRIC
from analysis.settings import ABSENT, Difference, value_text
from analysis.tables import config_keys, config_table

MAX_SHOWN = 6  # values listed in a difference before "... (N values)"


@dataclasses.dataclass(frozen=True)
class Comparison:
    metric: str
    table: pd.DataFrame  # the matched-on keys that vary, runs_a, <metric>_a, ..., diff
    differences: list[Difference]
    matched_on: list[str]
    paired: int  # configurations both runs have
    forced: bool


def compare_runs(a: Run, b: Run, metric: str = DEFAULT_METRIC, force: bool = False) -> Comparison:
    """Pair the configurations of `a` and `b` (see the module docstring); RunDataError
    naming the differing keys when none pairs and `force` is off."""
    for name, run in (("first", a), ("second", b)):
        try:
            require_numeric(run.trials, metric)
        except RunDataError as error:
            raise RunDataError(f"the {name} run ({run.id}): {error}") from None
    frame_a, frame_b = _configs(a), _configs(b)
    swept = config_keys([*a.swept, *b.swept])
    keys = list(dict.fromkeys([*swept, *frame_a.attrs["keys"], *frame_b.attrs["keys"]]))
    frame_a, frame_b = _fill(frame_a, keys), _fill(frame_b, keys)
    differences = [d for key in keys if (d := _differ(key, frame_a[key], frame_b[key]))]
    apart = {d.key for d in differences if not d.overlap}
    matched_on = [key for key in keys if key != "seed" and not (force and key in apart)]
    table = paired_table(frame_a, frame_b, matched_on, metric, shown=swept)
    paired = int((table["runs_a"].notna() & table["runs_b"].notna()).sum())
    if not paired and not force:
        # The keys no configuration can pair across say why; else every key that differs.
        keyed = [d for d in differences if d.key != "seed"]
        named = [d for d in keyed if not d.overlap] or keyed
        because = ", ".join(d.text() for d in named) or "their configurations"
        raise RunDataError(
            f"nothing to compare: no configuration of a ({a.id}) is one of b ({b.id}); they"
            f" differ in {because}; --force compares them anyway"
        )
    return Comparison(metric, table, differences, matched_on, paired, force)


def compare_table(
    trials_a: pd.DataFrame,
    trials_b: pd.DataFrame,
    swept: list[str],
    metric: str = DEFAULT_METRIC,
) -> pd.DataFrame:
    """Two trials frames matched on the swept parameters alone (seeds averaged), as
    paired_table lays them out; compare_runs matches on every config key instead."""
    keys = config_keys(swept)
    for name, trials in (("first", trials_a), ("second", trials_b)):
        missing = [key for key in keys if key not in trials.columns]
        if missing:
            raise RunDataError(f"the {name} run has no column {missing[0]!r} to match on")
    return paired_table(trials_a, trials_b, keys, metric, shown=keys)


def paired_table(
    trials_a: pd.DataFrame,
    trials_b: pd.DataFrame,
    keys: list[str],
    metric: str,
    shown: list[str] | None = None,
) -> pd.DataFrame:
    """One row per configuration of `keys` either run has: `runs_a`, `<metric>_a`, its std,
    the same for b, and `diff` (b - a); a gap where a run lacks the configuration. Of the
    keys, those in `shown` are columns, and those that vary: the others are the same in
    every row."""
    a = config_table(trials_a, keys, [metric]).drop(columns=["failed"])
    b = config_table(trials_b, keys, [metric]).drop(columns=["failed"])
    if keys:
        # As objects: a key one run lacks holds ABSENT there, text beside the other's numbers.
        a, b = (side.astype({key: object for key in keys}) for side in (a, b))
        merged = a.merge(b, on=keys, how="outer", suffixes=("_a", "_b"))
        order = sorted(range(len(merged)), key=lambda i: [_order(merged.at[i, k]) for k in keys])
        merged = merged.iloc[order].reset_index(drop=True)
    else:  # one configuration each: side by side
        merged = pd.concat([a.add_suffix("_a"), b.add_suffix("_b")], axis=1)
    merged = merged.astype({"runs_a": "Int64", "runs_b": "Int64"})  # a gap is not 3.0000
    merged["diff"] = merged[f"{metric}_b"] - merged[f"{metric}_a"]
    shown = shown or []
    varies = {key for key in keys if merged[key].map(hashable).nunique(dropna=False) > 1}
    fixed = [key for key in keys if key not in shown and key not in varies]
    return merged.drop(columns=fixed)


def _configs(run: Run) -> pd.DataFrame:
    """The run's trials, config columns as hashable values; the columns in attrs."""
    keys = run.config_columns
    frame = run.trials.assign(**{key: run.trials[key].map(hashable) for key in keys})
    frame.attrs["keys"] = keys
    return frame


def _fill(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.assign(**{key: ABSENT for key in keys if key not in frame.columns})


def _differ(key: str, a: pd.Series, b: pd.Series) -> Difference | None:
    values_a, values_b = _values(a), _values(b)
    if values_a == values_b:
        return None
    overlap = any(value in values_b for value in values_a)
    return Difference(key, _describe(values_a), _describe(values_b), overlap)


def _values(column: pd.Series) -> list[Any]:
    return sorted(set(column.dropna()), key=_order)


def _describe(values: list[Any]) -> str:
    texts = [value_text(value) for value in values[:MAX_SHOWN]]
    more = f", ... ({len(values)} values)" if len(values) > MAX_SHOWN else ""
    return ", ".join(texts) + more if texts else "-"


def _order(value: Any) -> tuple[str, Any]:
    """A sort key for config values of any kind: by kind, then value (numbers by size)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | tuple):
        return (type(value).__name__, repr(value))
    kind = "number" if isinstance(value, int | float) else type(value).__name__
    if isinstance(value, tuple) and not all(isinstance(v, int | float) for v in value):
        return (kind, repr(value))
    return (kind, value)
