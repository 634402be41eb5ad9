"""The metric against each parameter of a run that drew its values (a `sample` key, or a
`search: random | tpe` run): a panel a parameter, a point a configuration.

A grid's figure joins the means of each grid point (analysis.plots.metric_vs_param); drawn
values are all different, so there are no points to join, only where the good
configurations lie. Points are coloured by when the configuration was proposed
(`config_index`), so a TPE run shows its search closing in; a configuration without the
parameter (one a `when` left it out of) has no point in its panel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from analysis.load import hashable
from analysis.numbers import is_number
from analysis.plots import direction, heading, scored_trials
from analysis.scales import log_base, ordered

MAX_COLUMNS = 3


def metric_by_param(
    trials: pd.DataFrame,
    params: Sequence[str],
    metric: str,
    *,
    mode: str = "max",
    orders: Mapping[str, Sequence[Any]] | None = None,
    title: str = "",
) -> Figure:
    """A panel for each of `params`: `metric` of each configuration against its value (a
    log axis where the values span decades; a category's values side by side, spread a
    little so that equal ones do not hide each other), the best starred."""
    scored = scored_trials(trials, list(params), metric)
    order = scored["config_index"] if "config_index" in scored.columns else pd.Series(
        np.arange(len(scored)), index=scored.index)  # fmt: skip
    columns = min(len(params), MAX_COLUMNS)
    rows = -(-len(params) // columns)
    figure = Figure(figsize=(4.2 * columns + 1.5, 3.6 * rows + 1), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    best = scored[metric].idxmax() if mode == "max" else scored[metric].idxmin()
    points = None
    for axes, param in zip(grid.flat, params, strict=False):
        has = scored[param].map(lambda value: value is not None and value == value)
        shown = scored[has]
        values = shown[param].tolist()
        if values and all(is_number(value) for value in values):
            x = np.asarray(values, dtype=float)
            if log_base(values) is not None:
                axes.set_xscale("log")
        else:
            categories = ordered(shown[param], (orders or {}).get(param))
            place = {category: i for i, category in enumerate(categories)}
            spread = np.random.default_rng(0).uniform(-0.15, 0.15, len(shown))
            x = np.array([place[hashable(value)] for value in values], dtype=float) + spread
            axes.set_xticks(range(len(categories)), [str(c) for c in categories])
        points = axes.scatter(x, shown[metric], c=order[has], cmap=colormaps["viridis"],
                              vmin=order.min(), vmax=max(order.max(), order.min() + 1),
                              s=18, alpha=0.85)  # fmt: skip
        if has[best]:
            at = int(np.flatnonzero(shown.index == best)[0])
            axes.scatter([x[at]], [shown[metric].iloc[at]], marker="*", s=180,
                         facecolor="none", edgecolor="black", label="best")  # fmt: skip
            axes.legend(loc="best", fontsize="small")
        axes.set_xlabel(param)
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
    for axes in list(grid.flat)[len(params) :]:
        axes.set_visible(False)
    if points is not None:
        figure.colorbar(points, ax=grid, label="configuration (config_index: the order proposed)")
    heading(figure, title, f"by parameter: {direction(metric, mode)}")
    return figure
