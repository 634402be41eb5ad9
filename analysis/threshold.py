"""Report A's batch-size threshold (A2), exactly as it computed it, and a noise-aware twin.

The report: batch sizes ordered large to small, `np.diff` of their accuracies (the change
going to the next smaller batch), threshold 0.001, the first change <= threshold, and the
answer is the batch size after it. With repeats (several seeds per batch size) we use the
mean accuracy, and the noise-aware answer also counts a change as insignificant when it
lies within the 95% interval of the difference of two means (Welch's t), i.e. inside the
seed-to-seed noise, so a user sees when the single-run answer is noise.

Only finished trials count (`measured`), those stopped early by the scheduler with the
rest (their metric is the one the scheduler judged them by): a diverged trial's figures
are whatever its weights scored once its loss stopped being a number, a failed one's are
from before it failed; neither measures its configuration.

The rule knows the metric's direction: for a metric to minimise (a loss), the gain of a
smaller batch is the drop, so "the first change <= threshold" reads "the first
improvement <= threshold" whichever way is better. On accuracy that is the report's rule.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

from analysis.load import RunDataError, require_numeric
from analysis.rundir import DEFAULT_METRIC, FINISHED, Status

DEFAULT_THRESHOLD = 0.001


def infer_mode(metric: str) -> str:
    """ "min" for a loss or an error, else "max": a metric's direction when no spec says."""
    return "min" if "loss" in metric or "error" in metric else "max"


@dataclasses.dataclass(frozen=True)
class Level:
    """One value of the parameter: its metric over the repeats."""

    value: Any
    mean: float
    std: float  # NaN with one run
    count: int
    half_width: float  # of the 95% interval of the mean; NaN with one run


@dataclasses.dataclass(frozen=True)
class Change:
    larger: Any  # the parameter value we come from
    smaller: Any  # the next smaller value
    change: float  # mean(smaller) - mean(larger), as np.diff computes it
    noise: float  # half-width of the 95% interval of that difference; NaN if unknown


@dataclasses.dataclass(frozen=True)
class Threshold:
    param: str
    metric: str
    mode: str  # "max": higher is better; "min": lower is
    threshold: float
    levels: list[Level]  # large to small
    changes: list[Change]
    answer: Level | None  # the report's rule
    noise_aware: Level | None  # the report's rule, or the change within the noise
    dropped: int  # rows left out: not finished, or without the parameter or a finite metric
    diverged: int  # of `dropped`, the diverged trials

    @property
    def has_repeats(self) -> bool:
        return any(level.count > 1 for level in self.levels)

    def lines(self) -> list[str]:
        """The report's printed lines, then the answer (or why there is none)."""
        label = self.param.replace("_", " ").capitalize()
        metric = self.metric.replace("val_", "").replace("_", " ")
        lines = [
            f"Change in {metric} from {c.smaller} to {c.larger}: {c.change:.4f}"
            for c in self.changes
        ]
        if self.answer is not None:
            lines.append(
                f"Potential threshold for insignificant {metric} change: {label}"
                f" {self.answer.value} with {metric} {self.answer.mean:.4f}"
            )
        elif len(self.levels) < 2:
            lines.append(
                f"No threshold within the data: only one {self.param} ({len(self.levels)} level)"
            )
        else:
            lines.append(
                f"No threshold within the data: no change <= {self.threshold:g} going from"
                f" {self.levels[0].value} down to {self.levels[-1].value}"
            )
        return lines


def find_threshold(
    trials: pd.DataFrame,
    param: str = "batch_size",
    metric: str = DEFAULT_METRIC,
    threshold: float = DEFAULT_THRESHOLD,
    mode: str | None = None,
) -> Threshold:
    """Report A's threshold over any trials frame; see the module docstring. `mode` is the
    metric's direction ("max" or "min"); None infers it from the name (infer_mode)."""
    mode = mode or infer_mode(metric)
    if mode not in ("max", "min"):
        raise RunDataError(f"mode must be 'max' or 'min', got {mode!r}")
    require_numeric(trials, param, metric)
    usable = measured(trials, metric).dropna(subset=[param])
    diverged = _diverged(trials)
    if usable.empty:
        # Said, or a user whose trials all diverged looks for a missing column.
        why = f" ({diverged} diverged trials left out)" if diverged else ""
        raise RunDataError(f"no trial has both {param!r} and {metric!r}{why}")
    levels = [
        _level(value, group[metric].to_numpy(dtype=float))
        for value, group in usable.groupby(param, sort=True)
    ][::-1]  # large to small, as the report ordered its batch sizes
    means = np.array([level.mean for level in levels])
    changes = [
        Change(larger.value, smaller.value, float(diff), _noise(larger, smaller))
        for larger, smaller, diff in zip(levels, levels[1:], np.diff(means), strict=False)
    ]
    gains = [c.change if mode == "max" else -c.change for c in changes]
    first = next((i for i, gain in enumerate(gains) if gain <= threshold), None)
    noisy = next(
        (
            i
            for i, (c, gain) in enumerate(zip(changes, gains, strict=True))
            if gain <= threshold or (not math.isnan(c.noise) and gain <= c.noise)
        ),
        None,
    )
    return Threshold(
        param=param,
        metric=metric,
        mode=mode,
        threshold=threshold,
        levels=levels,
        changes=changes,
        answer=None if first is None else levels[first + 1],
        noise_aware=None if noisy is None else levels[noisy + 1],
        dropped=len(trials) - len(usable),
        diverged=diverged,
    )


def measured(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The trials whose `metric` measures their configuration: finished (status
    TERMINATED, or STOPPED early by the scheduler) with a finite value; see the module
    docstring. Rows without a status (a reference's figures, a table made by hand) count
    as finished."""
    if metric not in trials.columns:
        return trials.iloc[:0]
    values = pd.to_numeric(trials[metric], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    finished = trials["status"].isin(FINISHED).to_numpy() if "status" in trials.columns else True
    return trials[np.isfinite(values) & finished]


def _diverged(trials: pd.DataFrame) -> int:
    return int(trials["status"].eq(Status.DIVERGED).sum()) if "status" in trials.columns else 0


def _level(value: Any, scores: np.ndarray) -> Level:
    count = len(scores)
    if count < 2:
        return Level(_plain(value), float(scores.mean()), math.nan, count, math.nan)
    std = float(scores.std(ddof=1))
    half_width = float(_t_quantile(count - 1) * std / math.sqrt(count))
    return Level(_plain(value), float(scores.mean()), std, count, half_width)


def _noise(a: Level, b: Level) -> float:
    """Half-width of the 95% interval of mean(b) - mean(a) (Welch); NaN without repeats."""
    if a.count < 2 or b.count < 2:
        return math.nan
    va, vb = a.std**2 / a.count, b.std**2 / b.count
    if va + vb == 0:
        return 0.0
    dof = (va + vb) ** 2 / (va**2 / (a.count - 1) + vb**2 / (b.count - 1))
    return float(_t_quantile(dof) * math.sqrt(va + vb))


def _t_quantile(dof: float) -> float:
    """Student's t at 0.975 for `dof` degrees of freedom: scipy.stats.t.ppf(0.975, dof),
    bit for bit, through the special function it calls (scipy.stats takes 0.4 s more to
    import, a third of `sweeps threshold`)."""
    from scipy.special import stdtrit

    return float(stdtrit(dof, 0.975))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
