"""Confusion matrices, row-normalised (each cell the share of its true class), drawn by
scikit-learn's ConfusionMatrixDisplay on one colour scale, 0 to 1, in every panel: a
class's recall reads off the diagonal, and panels compare at a glance."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analysis.load import RunDataError

GRID_COLUMNS = 4
SCALE = {"vmin": 0.0, "vmax": 1.0}


def confusion_counts(trial: Mapping[str, Any] | pd.Series) -> np.ndarray | None:
    """A trial's confusion matrix as a square int array (true x predicted); None when it
    has none (a failed trial)."""
    value = trial.get("confusion")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    flat = np.asarray(value, dtype=np.int64).ravel()
    side = math.isqrt(flat.size)
    if side == 0 or side * side != flat.size:
        raise RunDataError(
            f"trial {trial.get('trial_id')!r}: confusion has {flat.size} values, not a square"
        )
    return flat.reshape(side, side)


def pooled_counts(trials: pd.DataFrame) -> np.ndarray | None:
    """The trials' matrices summed (a configuration's repeats); None when none has one."""
    if "confusion" not in trials.columns:
        return None
    matrices = [m for _, t in trials.iterrows() if (m := confusion_counts(t)) is not None]
    if not matrices:
        return None
    if len({m.shape for m in matrices}) > 1:
        raise RunDataError("the trials' confusion matrices differ in size")
    return np.sum(matrices, axis=0)


def row_normalised(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its total: the share of each true class predicted as each class
    (a class never seen stays a row of zeros)."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)


def accuracy(counts: np.ndarray) -> float:
    return float(np.trace(counts) / counts.sum()) if counts.sum() else math.nan


def _draw(axes: Axes, counts: np.ndarray, font_size: float) -> Any:
    # Imported here: scikit-learn takes a second to import, and only these figures need it.
    from sklearn.metrics import ConfusionMatrixDisplay

    display = ConfusionMatrixDisplay(row_normalised(counts))
    display.plot(ax=axes, cmap="Blues", values_format=".2f", colorbar=False, im_kw=SCALE,
                 text_kw={"fontsize": font_size})  # fmt: skip
    # A cell no prediction reached is left blank, so that the few errors there are stand out
    # (a share that rounds to 0.00 was still reached, and keeps its text).
    for (true, predicted), count in np.ndenumerate(counts):
        if count == 0:
            display.text_[true, predicted].set_text("")
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    return display.im_


def _caption(label: str, counts: np.ndarray, runs: int) -> str:
    pooled = f", {runs} seeds pooled" if runs > 1 else ""
    return f"{label}\naccuracy {accuracy(counts):.4f} ({int(counts.sum()):,} examples{pooled})"


def confusion_matrix(counts: np.ndarray, label: str, *, runs: int = 1, title: str = "") -> Figure:
    """One configuration's matrix (`runs` trials pooled), large enough to read every cell."""
    figure = Figure(figsize=(7.5, 7), layout="constrained")
    axes = figure.subplots()
    image = _draw(axes, counts, font_size=9)
    axes.set_title(_caption(label, counts, runs))
    figure.colorbar(image, ax=axes, shrink=0.8, label="share of the true class")
    figure.suptitle(f"{title}\nconfusion matrix, rows normalised" if title else label)
    return figure


def confusion_grid(
    panels: Sequence[tuple[str, np.ndarray, int]], *, title: str = "", columns: int = GRID_COLUMNS
) -> Figure:
    """Each (label, counts, runs) a panel, side by side on one colour scale with one colour
    bar."""
    if not panels:
        raise RunDataError("no trial has a confusion matrix")
    columns = min(columns, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(4 * columns + 1.2, 4.3 * rows + 0.8), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False).ravel()
    image = None
    for axes, (label, counts, runs) in zip(grid, panels, strict=False):
        image = _draw(axes, counts, font_size=7 if counts.shape[0] > 6 else 9)
        axes.set_title(_caption(label, counts, runs), fontsize=9)
    for axes in grid[len(panels) :]:
        axes.set_visible(False)
    figure.colorbar(image, ax=list(grid[: len(panels)]), shrink=0.6,
                    label="share of the true class")  # fmt: skip
    what = f"confusion matrices, rows normalised, {len(panels)} configurations"
    figure.suptitle(f"{title}\n{what}" if title else what)
    return figure
