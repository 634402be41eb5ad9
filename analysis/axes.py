"""Which columns of a trials frame a figure must keep apart, and what it averages.

A figure of a metric against one parameter averages the trials of each of its values:
a mean over repeats only where nothing else varies among them. A run's other swept axes
are known (analysis.load writes them into the trials frame's attrs, "swept", so a bare
frame carries them into a notebook); a frame made by hand gives one away when trials
that share the parameter's value also share a seed: what else differs among them is
another axis. Pure functions of frames: analysis.plots draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analysis.load import RunDataError, hashable
from analysis.metrics import TRIAL_COLUMNS


def other_axes(trials: pd.DataFrame, keys: Sequence[str], metric: str) -> list[str]:
    """The swept axes of `trials` besides `keys` and the seed: the run's, where the frame
    carries them, else those read off the frame (see the module docstring)."""
    swept = _swept(trials)
    if swept is not None:
        return [key for key in swept if key not in keys]
    pooled = _pooled(trials, keys)
    if pooled.empty:
        return []
    # A grid axis repeats its values from trial to trial; a metric all but never does. Of
    # the columns that might be axes, the fewest, those of fewest values first, that leave
    # no two trials of a point sharing a seed.
    candidates = [column for column in trials.columns
                  if column not in {*TRIAL_COLUMNS, *keys, "seed", metric}
                  and trials[column].map(hashable).nunique() < len(trials)
                  and _varies(pooled, column)]  # fmt: skip
    candidates.sort(key=lambda column: trials[column].map(hashable).nunique())
    axes: list[str] = []
    for column in candidates:
        axes.append(column)
        if _pooled(trials, [*keys, *axes]).empty:
            return axes
    return []


def check_apart(trials: pd.DataFrame, keys: Sequence[str], param: str) -> None:
    """RunDataError where the trials that share the values of `keys` (a point of a
    figure) differ in another axis, which a mean over them would pool as repeats: one the
    run sweeps that `keys` leave out, or, in a frame made by hand, whatever makes trials of
    one point share a seed."""
    swept = _swept(trials)
    if swept is not None:
        left = [key for key in swept if key not in keys]
        if left:
            raise RunDataError(
                f"the trials also sweep {', '.join(left)}: a point of the {param} figure would"
                f" pool its values as repeats; name it as a series or facet"
            )
        return
    pooled = _pooled(trials, keys)
    if not pooled.empty:
        first = pooled.iloc[0]
        where = ", ".join(f"{key}={first[key]}" for key in keys)
        raise RunDataError(
            f"trials at {where} share seed {first['seed']}: something else varies among them,"
            f" and a mean over them would pool it as repeats; name it as a series or facet"
            f" of the {param} figure"
        )


def repeats(trials: pd.DataFrame, keys: Sequence[str]) -> int:
    """The most trials any combination of `keys` has: the repeats a point averages."""
    if trials.empty:
        return 0
    frame = trials.assign(**{key: trials[key].map(hashable) for key in keys})
    return int(frame.groupby(list(keys), dropna=False).size().max()) if keys else len(frame)


def averaged(count: int) -> str:
    """What a point of a figure is: "mean ± std over 2 repeats", or "one run each"."""
    return f"mean ± std over {count} repeats" if count > 1 else "one run each"


def _swept(trials: pd.DataFrame) -> list[str] | None:
    """The axes the run sweeps (analysis.load's attrs) that vary in this frame, the seed
    aside; None for a frame that does not say."""
    swept = trials.attrs.get("swept")
    if swept is None:
        return None
    return [key for key in swept if key != "seed" and key in trials
            and trials[key].map(hashable).nunique() > 1]  # fmt: skip


def _pooled(trials: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The trials of each group of `keys` and seed that holds more than one, numbered by
    group in `_group`; empty without a seed column (repeats then cannot be told apart)."""
    if "seed" not in trials.columns or trials.empty:
        return trials.iloc[:0]
    by = [*keys, "seed"]
    frame = trials.assign(**{key: trials[key].map(hashable) for key in by})
    group = frame.groupby(by, dropna=False, sort=False).ngroup()
    counts = group.map(group.value_counts())
    return frame.assign(_group=group)[counts.gt(1).to_numpy()]


def _varies(pooled: pd.DataFrame, column: str) -> bool:
    """Whether `column` differs among the trials of some pooled point."""
    counts = pooled.groupby("_group")[column].agg(lambda values: values.map(hashable).nunique())
    return bool(counts.gt(1).any())
