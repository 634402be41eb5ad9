"""Parallel coordinates: one line per configuration across an axis per swept parameter
and one for the metric (report B's sweeps of several parameters at once)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from analysis import crowds
from analysis.numbers import value_texts
from analysis.plots import (
    LABEL_BOX,
    direction,
    heading,
    is_number,
    log_base,
    ordered,
    scored_trials,
)
from analysis.threshold import infer_mode


def parallel_coordinates(
    trials: pd.DataFrame,
    keys: Sequence[str],
    metric: str,
    *,
    mode: str | None = None,
    orders: Mapping[str, Sequence[Any]] | None = None,
    title: str = "",
) -> Figure:
    """One line per configuration (the mean over its repeats) across an axis per swept
    parameter and one for `metric`, coloured by the metric, the best drawn on top; past
    CROWD configurations a crowd (analysis.crowds), the best and the worst drawn out."""
    mode = mode or infer_mode(metric)
    keys = list(keys)
    scored = scored_trials(trials, keys, metric)
    table = scored.groupby(keys, sort=False)[metric].mean().reset_index()
    table = table.sort_values(metric, ascending=mode == "max")  # the best drawn last, on top
    scales = [_scale(table[key], (orders or {}).get(key)) for key in keys]
    low, high = float(table[metric].min()), float(table[metric].max())
    norm = Normalize(low, high if high > low else low + 1e-9)
    cmap = colormaps["viridis" if mode == "max" else "viridis_r"]

    figure = Figure(figsize=(3 + 2.2 * len(keys), 5), layout="constrained")
    axes = figure.subplots()
    heights = np.column_stack([*(table[key].map(scale).to_numpy(dtype=float)
                                 for key, scale in zip(keys, scales, strict=True)),
                               norm(table[metric].to_numpy(dtype=float))])  # fmt: skip
    crowded = len(table) > crowds.CROWD
    if crowded:  # one artist for them all, the best and the worst drawn out
        lines = [np.column_stack([np.arange(len(ys)), ys]) for ys in heights]
        colours = [tuple(c) for c in cmap(heights[:, -1])]
        best, worst = crowds.extremes(table[metric].to_numpy(), mode)
        names = crowds.namer(table, keys, metric, [*best, *worst], orders)
        named = crowds.draw(axes, lines, colours, best, worst, names.__getitem__)
    else:
        for ys, score in zip(heights, table[metric], strict=True):
            axes.plot(range(len(ys)), ys, color=cmap(norm(score)), linewidth=2, alpha=0.85,
                      marker="o", markersize=4)  # fmt: skip
    for i, scale in enumerate(scales):
        shown = _labelled(list(scale))
        for text, value in zip(value_texts(shown), shown, strict=True):
            axes.text(i + 0.04, scale[value], text, va="center", fontsize=8, bbox=LABEL_BOX)
    for y in np.linspace(0, 1, 5):
        axes.text(len(keys) + 0.04, y, f"{norm.inverse(y):.4g}", va="center", fontsize=8)
    for i in range(len(keys) + 1):
        axes.axvline(i, color="black", linewidth=0.8)
    axes.set_xticks(range(len(keys) + 1), [*keys, metric])
    axes.set_yticks([])
    axes.set_xlim(-0.1, len(keys) + 0.45)
    axes.set_ylim(-0.05, 1.05)
    for side in ("left", "right", "top", "bottom"):
        axes.spines[side].set_visible(False)
    figure.colorbar(ScalarMappable(norm, cmap), ax=axes, label=direction(metric, mode))
    if crowded:
        crowds.name_extremes(figure, named, metric)
    repeats = int(scored.groupby(keys).size().max())
    mean = f", mean over {repeats} repeats" if repeats > 1 else ""
    heading(figure, title, f"parallel coordinates: {len(table)} configurations{mean}")
    return figure


def _labelled(values: list[Any]) -> list[Any]:
    """The values an axis names: all of them, or past CROWD as many, evenly spread."""
    if len(values) <= crowds.CROWD:
        return values
    picks = np.linspace(0, len(values) - 1, crowds.CROWD // 2).round().astype(int)
    return [values[i] for i in dict.fromkeys(picks.tolist())]


def _scale(column: pd.Series, order: Sequence[Any] | None) -> dict[Any, float]:
    """Each value's height on its axis in [0, 1]: by value (log where it reads best) for
    numbers, evenly spaced for anything else."""
    values = ordered(column, order)
    if len(values) == 1:
        return {values[0]: 0.5}
    if all(is_number(v) for v in values):
        to = np.log if log_base(values) else np.asarray
        points = to(np.asarray(values, dtype=float))
        return {v: float((p - points.min()) / (points.max() - points.min()))
                for v, p in zip(values, points, strict=True)}  # fmt: skip
    return {v: i / (len(values) - 1) for i, v in enumerate(values)}
