"""A run narrowed to some of its configurations: `--where lr=0.01`.

`select(run, ["lr=0.01"])` keeps the trials (and their epochs) whose swept `lr` is 0.01;
the key then no longer counts as swept, so that a report or a threshold over the other
axis compares configurations of that one value, not a mix of them. A value matches as it
is written in the spec, as YAML reads it (`[64, 64]`, `1e-3`) or as a table prints it
(0.00863 for 0.008632909096921014, when that names one value of the column).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
import yaml

from analysis.load import Run, RunDataError, hashable
from analysis.numbers import is_number, value_text, value_texts

ORDINALS = ("first", "second")


def parse_where(text: str) -> tuple[str, str]:
    """ "KEY=VALUE" -> (key, value text); RunDataError naming it when it is not one."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise RunDataError(f"--where expects KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def select(run: Run, where: Sequence[str]) -> Run:
    """The run with only the configurations every `KEY=VALUE` of `where` names; a key the
    run does not sweep, or a value it never took, is a RunDataError naming it."""
    if not where:
        return run
    trials, fixed = run.trials, dict(run.where)
    for text in where:
        key, wanted = parse_where(text)
        if key in fixed:
            raise RunDataError(f"--where {text}: {key} is already {value_text(fixed[key])}")
        swept = run.swept
        if key not in swept:
            sweeps = ", ".join(swept) or "nothing"
            raise RunDataError(f"--where {text}: the run sweeps no {key!r} (it sweeps {sweeps})")
        values = sorted_values(trials[key])
        value = match(wanted, values)
        if value is None:
            shown = ", ".join(value_texts(values)) or "none left"
            raise RunDataError(f"--where {text}: the run has no {key} {wanted} ({key}: {shown})")
        trials = trials[trials[key].map(hashable) == value]
        fixed[key] = value
        run = dataclasses.replace(run, trials=trials, where=tuple(fixed.items()))
    epochs = run.epochs
    if "trial_id" in epochs.columns:
        epochs = epochs[epochs["trial_id"].isin(set(trials["trial_id"]))]
    trials = trials.reset_index(drop=True)
    trials.attrs = {**trials.attrs, "swept": run.swept}  # what the plots take as the axes
    return dataclasses.replace(run, trials=trials, epochs=epochs)


def select_runs(runs: Sequence[Run], where: Sequence[str]) -> list[Run]:
    """Each run narrowed by the conditions on the keys it sweeps (`sweeps compare`): a key
    no run sweeps, or a value one that sweeps it lacks, is a RunDataError naming it."""
    runs = list(runs)
    for text in where:
        key, _ = parse_where(text)
        chosen = [i for i, run in enumerate(runs) if key in run.swept]
        if not chosen:
            raise RunDataError(f"--where {text}: neither run sweeps {key!r}")
        for i in chosen:
            try:
                runs[i] = select(runs[i], [text])
            except RunDataError as error:
                which = ORDINALS[i] if i < len(ORDINALS) else f"#{i + 1}"
                raise RunDataError(f"the {which} run ({runs[i].id}): {error}") from None
    return runs


def match(text: str, values: list[Any]) -> Any:
    """The one value of `values` that `text` names (see the module docstring); None when
    none does."""
    try:
        parsed = hashable(yaml.safe_load(text))
    except yaml.YAMLError:
        parsed = text
    number = _number(text)
    shown = dict(zip(value_texts(values), values, strict=True))
    for value in values:
        if value == parsed or str(value) == text or value_text(value) == text:
            return value
        if number is not None and is_number(value) and math.isclose(float(value), number):
            return value
    return shown.get(text)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def sorted_values(column: pd.Series) -> list[Any]:
    """A column's distinct values (lists as tuples), numbers ascending, the rest as text."""
    values = list(dict.fromkeys(column.map(hashable).dropna()))
    if all(is_number(v) for v in values):
        return sorted(values)
    return sorted(values, key=str)
