"""A metric over two swept parameters at once: a cell per combination, coloured by the
mean over its repeats, the figure of a two-axis grid that shows every configuration side
by side (analysis.plots draws the metric against one parameter, a line per the other's
value)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from analysis.axes import averaged, check_apart, other_axes, repeats
from analysis.load import RunDataError
from analysis.numbers import metric_decimals, value_texts
from analysis.plots import direction, heading, ordered, scored_trials
from analysis.rundir import DEFAULT_METRIC
from analysis.threshold import infer_mode


def heatmap(
    trials: pd.DataFrame,
    x: str,
    y: str,
    metric: str | None = None,
    *,
    mode: str | None = None,
    orders: Mapping[str, Sequence[Any]] | None = None,
    title: str = "",
) -> Figure:
    """`metric` (by default the run's, as analysis.load records it) in a cell per value of
    `x` (columns) and `y` (rows): the mean over the cell's repeats, written in it with
    their standard deviation, the best cell outlined. A third swept axis would be pooled
    in every cell: a RunDataError naming it (select one of its values first:
    analysis.select, `--where`)."""
    metric = metric or str(trials.attrs.get("metric") or DEFAULT_METRIC)
    mode = mode or infer_mode(metric)
    orders = orders or {}
    scored = scored_trials(trials, [x, y], metric)
    others = other_axes(trials, [x, y], metric)
    if others:
        raise RunDataError(
            f"the trials also sweep {', '.join(others)}: a cell of {x} and {y} would pool"
            f" its values as repeats; keep one value of {others[0]} first"
        )
    check_apart(scored, [x, y], x)
    columns, rows = ordered(scored[x], orders.get(x)), ordered(scored[y], orders.get(y))
    stats = scored.groupby([y, x])[metric].agg(["mean", "std", "size"])
    means = np.full((len(rows), len(columns)), math.nan)
    for (row, column), mean in stats["mean"].items():
        means[rows.index(row), columns.index(column)] = mean
    count = repeats(scored, [x, y])

    figure = Figure(figsize=(1.3 * len(columns) + 3.5, 0.8 * len(rows) + 2.5), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(means, cmap="viridis" if mode == "max" else "viridis_r", aspect="auto")
    axes.set_xticks(range(len(columns)), value_texts(columns))
    axes.set_yticks(range(len(rows)), value_texts(rows))
    axes.set_xlabel(x)
    axes.set_ylabel(y)
    decimals = metric_decimals(stats["mean"], mode)
    low, high = np.nanmin(means), np.nanmax(means)
    for (row, column), cell in stats.iterrows():
        text = f"{cell['mean']:.{decimals}f}"
        if count > 1 and not math.isnan(cell["std"]):
            text += f"\n± {cell['std']:.{decimals}f}"
        # Dark text on the light end of the map, light text on the dark end.
        light = (cell["mean"] - low) / (high - low) > 0.5 if high > low else True
        if mode == "min":
            light = not light
        axes.text(columns.index(column), rows.index(row), text, ha="center", va="center",
                  fontsize=8, color="black" if light else "white")  # fmt: skip
    best = stats["mean"].idxmax() if mode == "max" else stats["mean"].idxmin()
    corner = (columns.index(best[1]) - 0.5, rows.index(best[0]) - 0.5)
    axes.add_patch(Rectangle(corner, 1, 1, fill=False, edgecolor="red", linewidth=3,
                             label="best"))  # fmt: skip
    figure.colorbar(image, ax=axes, label=direction(metric, mode))
    heading(figure, title, f"{metric} by {x} and {y} ({averaged(count)})")
    return figure
