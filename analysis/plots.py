"""PNG figures from the trials and epochs frames: learning curves, metric vs parameter,
confusion matrices.

Figures are plain `matplotlib.figure.Figure` objects rendered by the Agg canvas, never
pyplot: no display is needed and no global figure registry can leak memory across a sweep
of hundreds of trials.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis.load import hashable, require_numeric

DPI = 100
GRID_COLUMNS = 3


def _value_text(value: Any) -> str:
    value = hashable(value)
    if isinstance(value, tuple):
        return str(list(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def trial_label(trial: pd.Series, swept: list[str]) -> str:
    """ "batch_size=64, seed=0"; the trial id when nothing is swept (a single run)."""
    parts = [f"{key}={_value_text(trial[key])}" for key in swept if key in trial.index]
    return ", ".join(parts) or str(trial.get("trial_id", "trial"))


def confusion_counts(trial: pd.Series) -> np.ndarray | None:
    """The trial's confusion matrix as a square int array; None for failed trials."""
    value = trial.get("confusion")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    flat = np.asarray(value, dtype=np.int64).ravel()
    side = math.isqrt(flat.size)
    if side == 0 or side * side != flat.size:
        raise ValueError(
            f"trial {trial.get('trial_id')!r}: confusion has {flat.size} values, not a square"
        )
    return flat.reshape(side, side)


def _save(figure: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    # No "Software" version stamp, so files differ only where the drawing itself does.
    figure.savefig(path, dpi=DPI, metadata={"Software": None})
    figure.clear()
    return path


def learning_curves(trial: pd.Series, epochs: pd.DataFrame, swept: list[str], path: Path) -> Path:
    """Accuracy and loss per epoch, training beside validation, as the lab reports drew them."""
    rows = epochs[epochs["trial_id"] == trial["trial_id"]].sort_values("epoch")
    if rows.empty:
        raise ValueError(f"trial {trial['trial_id']!r} has no rows in the epochs frame")
    figure = Figure(figsize=(10, 4), layout="constrained")
    accuracy_axes, loss_axes = figure.subplots(1, 2)
    for axes, metric in ((accuracy_axes, "accuracy"), (loss_axes, "loss")):
        # A frame made by hand may carry the trainer's own name for it (`loss`).
        train = f"train_{metric}" if f"train_{metric}" in rows.columns else metric
        for column, label in ((train, "train"), (f"val_{metric}", "validation")):
            if column in rows.columns:
                axes.plot(rows["epoch"], rows[column], marker="o", label=label)
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        axes.legend()
    # Integer ticks: a 3-epoch run would otherwise show 1.25, 1.5, ...
    accuracy_axes.xaxis.get_major_locator().set_params(integer=True)
    loss_axes.xaxis.get_major_locator().set_params(integer=True)
    figure.suptitle(trial_label(trial, swept))
    return _save(figure, path)


def accuracy_vs_param(trials: pd.DataFrame, param: str, metric: str, path: Path) -> Path:
    """Mean of `metric` per value of `param` over repeats, standard deviation as error bars."""
    # RunDataError is a ValueError whose message names the missing or non-numeric column.
    require_numeric(trials, param, metric)
    finished = trials.dropna(subset=[param, metric])
    if finished.empty:
        raise ValueError(f"no trial has a value for {metric!r} (all failed?)")
    groups = finished.groupby(param, sort=True)[metric]
    means = groups.mean()
    # One run per value has no spread: draw a zero-length bar rather than none.
    spreads = groups.std(ddof=1).fillna(0.0)
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.subplots()
    axes.errorbar(means.index, means.to_numpy(), yerr=spreads.to_numpy(), marker="o", capsize=4)
    if (means.index > 0).all():
        # Batch sizes and learning rates are swept in powers of two or ten.
        axes.set_xscale("log", base=2 if _all_powers_of_two(means.index) else 10)
        axes.set_xticks(means.index, [_value_text(v) for v in means.index])
        axes.minorticks_off()
    axes.set_xlabel(param)
    axes.set_ylabel(metric)
    axes.grid(alpha=0.3)
    axes.set_title(f"{metric} vs {param} (mean ± std over repeats)")
    return _save(figure, path)


def _all_powers_of_two(values: pd.Index) -> bool:
    return all(float(v).is_integer() and int(v) & (int(v) - 1) == 0 for v in values)


def _draw_confusion(axes: Axes, counts: np.ndarray, title: str, font_size: float) -> None:
    image = axes.imshow(counts, cmap="Blues", vmin=0)
    threshold = counts.max() / 2
    for (true, predicted), count in np.ndenumerate(counts):
        # White on dark cells, black on light: readable at either end of the colour map.
        colour = "white" if count > threshold else "black"
        axes.text(
            predicted, true, str(count), ha="center", va="center", color=colour, fontsize=font_size
        )
    ticks = range(counts.shape[0])
    axes.set_xticks(ticks)
    axes.set_yticks(ticks)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    axes.figure.colorbar(image, ax=axes, shrink=0.8)


def confusion_matrix(trial: pd.Series, swept: list[str], path: Path) -> Path:
    """The trial's validation confusion matrix, counts written in the cells."""
    counts = confusion_counts(trial)
    if counts is None:
        raise ValueError(f"trial {trial.get('trial_id')!r} has no confusion matrix")
    figure = Figure(figsize=(7, 6), layout="constrained")
    _draw_confusion(figure.subplots(), counts, trial_label(trial, swept), font_size=8)
    return _save(figure, path)


def confusion_grid(trials: pd.DataFrame, by: str, path: Path) -> Path:
    """One confusion heat map per trial that has one, ordered by `by`, side by side."""
    if by not in trials.columns:
        raise ValueError(f"no column {by!r}; columns: {', '.join(map(str, trials.columns))}")
    order = trials.assign(_key=trials[by].map(hashable)).sort_values(["_key", "trial_id"])
    panels = [
        (row, counts)
        for _, row in order.iterrows()
        if (counts := confusion_counts(row)) is not None
    ]
    if not panels:
        raise ValueError(f"no trial has a confusion matrix to plot by {by!r}")
    columns = min(GRID_COLUMNS, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(5 * columns, 4.5 * rows), layout="constrained")
    grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for axes, (row, counts) in zip(grid, panels, strict=False):
        accuracy = row.get("val_accuracy")
        title = f"{by}={_value_text(row[by])}"
        if accuracy is not None and not pd.isna(accuracy):
            title += f"  val_accuracy={accuracy:.4f}"
        _draw_confusion(axes, counts, title, font_size=6)
    for axes in grid[len(panels) :]:
        axes.set_visible(False)
    return _save(figure, path)


def write_plots(
    trials: pd.DataFrame, epochs: pd.DataFrame, swept: list[str], out_dir: Path
) -> list[Path]:
    """Every figure the run supports, into `out_dir`; returns the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with_epochs = set(epochs["trial_id"]) if "trial_id" in epochs.columns else set()
    written: list[Path] = []
    for _, trial in trials.sort_values("trial_id").iterrows():
        trial_id = trial["trial_id"]
        if trial_id in with_epochs:
            target = out_dir / f"learning-{trial_id}.png"
            written.append(learning_curves(trial, epochs, swept, target))
        if confusion_counts(trial) is not None:
            written.append(confusion_matrix(trial, swept, out_dir / f"confusion-{trial_id}.png"))
    # A sweep where every trial failed has nothing to plot; a missing column still raises.
    metric_known = "val_accuracy" not in trials.columns or trials["val_accuracy"].notna().any()
    if "batch_size" in swept and metric_known:
        target = out_dir / "accuracy-vs-batch_size.png"
        written.append(accuracy_vs_param(trials, "batch_size", "val_accuracy", target))
    if "activation" in swept and any(confusion_counts(t) is not None for _, t in trials.iterrows()):
        target = out_dir / "confusion-grid-activation.png"
        written.append(confusion_grid(trials, "activation", target))
    return written
