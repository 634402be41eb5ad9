"""Figures of a sweep, for any grid: the metric against each swept parameter, every
trial's learning curves on one figure, parallel coordinates over the grid's axes.

Each function returns a `matplotlib.figure.Figure` (for a notebook, or `png()` for bytes);
writing files is the caller's. Figures are built on the Agg canvas, never pyplot: no
display is needed, and no global figure registry keeps hundreds of them alive.
Confusion matrices are in analysis.confusion, which figures a run gets in analysis.figures.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis import crowds
from analysis.axes import averaged, check_apart, other_axes, repeats
from analysis.load import RunDataError, hashable, require_numeric
from analysis.marks import Reference, draw_references, draw_threshold, in_panel, legend
from analysis.metrics import epoch_metrics
from analysis.numbers import is_number, value_texts
from analysis.rundir import DEFAULT_METRIC
from analysis.scales import (
    colours,
    config_label,
    log_base,
    ordered,
    series_colours,
)
from analysis.threshold import Threshold, infer_mode

DPI = 100
MAX_SERIES = 10  # lines a legend names beside the best and references; past it, a crowd
MAX_FACET_COLUMNS = 3  # panels a row, at most
MISSING = (0.6, 0.6, 0.6, 1.0)  # the colour of a configuration without the key coloured by
LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 1}
EPOCH_PANELS = (  # (row, column): the epochs column, the panel's title
    ("train_accuracy", "training accuracy"), ("val_accuracy", "validation accuracy"),
    ("train_loss", "training loss"), ("val_loss", "validation loss"),
)  # fmt: skip


def png(figure: Figure) -> bytes:
    """The figure as PNG bytes, with no "Software" stamp: files differ only where the
    drawing does."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png(figure))
    return path


def heading(figure: Figure, title: str, what: str) -> None:
    figure.suptitle(f"{title}\n{what}" if title else what)


def direction(metric: str, mode: str) -> str:
    return f"{metric} ({'higher' if mode == 'max' else 'lower'} is better)"


def _x_axis(axes: Axes, param: str, values: list[Any], numeric: bool) -> None:
    axes.set_xlabel(param)
    if not numeric:
        axes.set_xticks(range(len(values)), value_texts(values))
        axes.set_xlim(-0.5, len(values) - 0.5)
        return
    base = log_base(values)
    if base is not None:
        axes.set_xscale("log", base=base)
        if len(values) <= crowds.CROWD:  # past it the ticks overlap: the scale's own
            axes.set_xticks(values, value_texts(values))
            axes.minorticks_off()


def metric_vs_param(
    trials: pd.DataFrame,
    param: str,
    metric: str | None = None,
    *,
    mode: str | None = None,
    series: Sequence[str] | None = None,
    facet: str | None = None,
    orders: Mapping[str, Sequence[Any]] | None = None,
    references: Sequence[Reference] = (),
    threshold: Threshold | None = None,
    title: str = "",
) -> Figure:
    """`metric` (by default the run's, as analysis.load records it) against `param`: a
    line per combination of the `series` keys (by default the run's other swept axes:
    analysis.axes), in a panel per value of `facet`; each point the mean over repeats with
    their standard deviation as error bars and each repeat a faint dot; the best mean
    starred; references' figures dashed; `threshold`'s answers as vertical lines when it
    is about this parameter and metric. No point pools another axis: a swept axis left out
    of `series` and `facet` (in a frame made by hand, trials of one point that share a
    seed) is a RunDataError."""
    metric = metric or str(trials.attrs.get("metric") or DEFAULT_METRIC)
    mode = mode or infer_mode(metric)
    orders = orders or {}
    panel_keys = [facet] if facet else []
    if series is None:  # the columns named checked first: a missing one is named as such
        scored_trials(trials, [param, *panel_keys], metric)
        series = other_axes(trials, [param, *panel_keys], metric)
    series = [key for key in series if key not in (param, facet)]
    scored = scored_trials(trials, [param, *series, *panel_keys], metric)
    point = [*panel_keys, *series, param]
    check_apart(scored, point, param)
    values = ordered(scored[param], orders.get(param))
    numeric = all(is_number(v) for v in values)
    position = {v: (float(v) if numeric else float(i)) for i, v in enumerate(values)}
    crowd = None
    if series and scored.groupby(series).ngroups > MAX_SERIES:  # a crowd (analysis.crowds)
        crowd = crowds.SeriesCrowd.of(scored, series, param, metric, mode, position, orders)
        none = scored.iloc[:0]  # the lines' keys are all the references need
        lines, palette = [(key, none) for key in crowd.colours], dict(crowd.colours)
    else:
        lines = split_by(scored, series, orders)
        palette = series_colours([key for key, _ in lines]) if len(lines) > 1 else {}
    among = {key: ordered(scored[key], orders.get(key)) for key in [*series, *panel_keys]}
    count = repeats(scored, point)
    panels = split_by(scored, panel_keys, orders)
    columns = min(len(panels), MAX_FACET_COLUMNS)
    rows = -(-len(panels) // columns)
    size = (8, 5) if len(panels) == 1 else (4.2 * columns + 1.5, 3.6 * rows + 1)

    figure = Figure(figsize=size, layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False, sharey=True).ravel()
    style = _Lines(param, metric, series, palette, position, numeric, count, among)
    means: list[tuple[Axes, tuple[float, float]]] = []  # every point, for the best
    named: dict[str, Line2D] = {}
    for axes, (key, panel) in zip(grid, panels, strict=False):
        if crowd is None:
            points = style.draw(axes, split_by(panel, series, orders))
        else:
            points, drawn_out = crowd.draw(axes, panel)
            named |= drawn_out
        means += [(axes, xy) for xy in points]
        shown = [in_panel(reference, facet, key) for reference in references]
        draw_references(axes, shown, param, metric, series, lines, palette, position)
        draw_threshold(axes, threshold, param, metric, position)
        _x_axis(axes, param, values, numeric)
        axes.grid(alpha=0.3)
        if facet:
            axes.set_title(config_label({facet: key[0]}, panel_keys, among))
    for axes in grid[len(panels) :]:
        axes.set_visible(False)
    best_axes, best = (max if mode == "max" else min)(means, key=lambda point: point[1][1])
    best_axes.plot(*best, marker="*", markersize=16, color="gold", markeredgecolor="black",
                   linestyle="none", label="best", zorder=5)  # fmt: skip
    for axes in grid[::columns]:
        axes.set_ylabel(direction(metric, mode))
    legend(figure, grid[0] if len(panels) == 1 else None)
    if crowd is not None:
        crowd.palette.key(figure, grid[: len(panels)])
        crowds.name_extremes(figure, named, metric)
    per = f", a panel per {facet}" if facet else ""
    each = averaged(count).replace(" ± std", "") if crowd else averaged(count)  # no bars
    heading(figure, title, f"{metric} vs {param}{per} ({each})")
    return figure


@dataclasses.dataclass(frozen=True)
class _Lines:
    """How metric_vs_param draws a panel's lines: what every panel shares."""

    param: str
    metric: str
    series: list[str]
    palette: dict[Any, Any]
    position: dict[Any, float]
    numeric: bool
    count: int  # repeats a point averages, at most
    among: dict[str, list[Any]]

    def draw(
        self, axes: Axes, groups: list[tuple[tuple[Any, ...], pd.DataFrame]]
    ) -> list[tuple[float, float]]:
        """A line a group; the (x, mean) of each point."""
        param, metric, series = self.param, self.metric, self.series
        means: list[tuple[float, float]] = []
        for index, (key, group) in enumerate(groups):
            colour = self.palette.get(key, "tab:blue")
            named = dict(zip(series, key, strict=True))
            label = config_label(named, series, self.among) if series else None
            # Side by side, not on top of each other, where categories share an x.
            shift = 0.0 if self.numeric else 0.08 * (index - (len(groups) - 1) / 2)
            stats = group.groupby(param)[metric].agg(["mean", "std", "size"])
            stats = stats.loc[[v for v in self.position if v in stats.index]]
            xs = np.array([self.position[v] for v in stats.index]) + shift
            spread = stats["std"].fillna(0.0).to_numpy() if self.count > 1 else None
            axes.errorbar(xs, stats["mean"].to_numpy(), yerr=spread, marker="o", capsize=4,
                          color=colour, label=label)  # fmt: skip
            if self.count > 1:
                dots = group[param].map(self.position).to_numpy() + shift
                axes.scatter(dots, group[metric], s=12, color=colour, alpha=0.35, linewidths=0)
            means += zip(xs.tolist(), stats["mean"].tolist(), strict=True)
        return means


def split_by(
    scored: pd.DataFrame, keys: list[str], orders: Mapping[str, Sequence[Any]]
) -> list[tuple[tuple[Any, ...], pd.DataFrame]]:
    """The trials split by their (hashable) values of `keys`, in figure order: the
    groups' key tuples, each with its trials."""
    if not keys:
        return [((), scored)]
    groups = {key if isinstance(key, tuple) else (key,): group
              for key, group in scored.groupby(keys, sort=False)}  # fmt: skip
    ranks = [{v: i for i, v in enumerate(ordered(scored[key], orders.get(key)))} for key in keys]

    def rank(item: tuple[tuple[Any, ...], pd.DataFrame]) -> list[int]:
        return [r[v] for r, v in zip(ranks, item[0], strict=True)]

    return sorted(groups.items(), key=rank)


def learning_curves(
    trials: pd.DataFrame,
    epochs: pd.DataFrame,
    by: str | None,
    *,
    metrics: Sequence[str] | None = None,
    order: Sequence[Any] | None = None,
    metric: str | None = None,
    mode: str | None = None,
    title: str = "",
) -> Figure:
    """Every trial's metrics per epoch on one figure, each trial coloured by its value of
    `by` (None: all one colour): accuracy and loss, training beside validation, then a
    panel per metric of the trainer's own (`train_x` beside `val_x`). `metrics` names the
    panels; by default every metric the epochs have (analysis.metrics). Past CROWD
    configurations, a crowd (analysis.crowds): its best and worst by `metric` (by default
    the run's) drawn out."""
    if "trial_id" not in epochs.columns or epochs.empty:
        raise RunDataError("the epochs frame is empty: no learning curves to draw")
    # A frame made by hand may carry the trainer's own names (`loss`, `accuracy`).
    epochs = epochs.rename(columns={n: f"train_{n}" for n in ("loss", "accuracy")
                                    if f"train_{n}" not in epochs.columns})  # fmt: skip
    config = [*trials.attrs.get("swept", ()), "seed", *([by] if by else [])]
    found = epoch_metrics(epochs, config)
    for metric in metrics or ():
        if metric not in found:
            raise RunDataError(f"the epochs frame has no metric {metric!r}; its metrics: "
                               + (", ".join(found) or "none"))  # fmt: skip
    rows = _curve_rows(list(found if metrics is None else metrics))
    if not rows:
        raise RunDataError("the epochs frame has none of " + ", ".join(c for c, _ in EPOCH_PANELS)
                           + " and no metric of its own")  # fmt: skip
    if by is not None and by not in trials.columns:
        raise RunDataError(f"no column {by!r}; columns: {', '.join(trials.columns)}")
    drawn = trials[trials["trial_id"].isin(set(epochs["trial_id"]))]
    values = ordered(drawn[by], order) if by is not None else [None]
    palette = colours(values) if by is not None else {None: colormaps["tab10"](0)}

    figure = Figure(figsize=(11, 3.75 * len(rows)), layout="constrained")
    grid = figure.subplots(len(rows), 2, sharex=True, squeeze=False)
    panels = {column: axes for row, line in zip(rows, grid, strict=True)
              for column, axes in zip(row, line, strict=True) if column}  # fmt: skip
    crowd = crowds.configurations(drawn, by) > crowds.CROWD
    if crowd:
        metric = metric or str(trials.attrs.get("metric") or DEFAULT_METRIC)
        mode = mode or infer_mode(metric)
        key, named = crowds.learning_curves(panels, drawn, epochs, by, order, metric, mode)
    else:
        curves = {trial_id: curve.sort_values("epoch")
                  for trial_id, curve in epochs.groupby("trial_id", sort=False)}  # fmt: skip
        for _, trial in drawn.sort_values("trial_id").iterrows():
            curve = curves[trial["trial_id"]]
            # A configuration without the key (a `when` left it out) is grey.
            colour = palette.get(hashable(trial[by]) if by is not None else None, MISSING)
            for column, axes in panels.items():
                axes.plot(curve["epoch"], curve[column], color=colour, alpha=0.8, linewidth=1.4,
                          marker="o", markersize=2.5)  # fmt: skip
    names = dict(EPOCH_PANELS)
    for row, line in zip(rows, grid, strict=True):
        for column, axes in zip(row, line, strict=True):
            if column is None:
                axes.set_visible(False)
                continue
            axes.set_title(names.get(column, column))
            axes.set_ylabel(names[column].split()[-1] if column in names else column)
            axes.grid(alpha=0.3)
            axes.xaxis.get_major_locator().set_params(integer=True)
            if column.endswith("loss"):
                _log_if_spread(axes, epochs[[c for c in row if c and c.endswith("loss")]])
        if all(row):  # training beside validation: one scale, so that the gap reads
            _share_y(line)
    for axes in grid[-1]:  # the rows above share its x axis
        axes.set_xlabel("epoch")
    if crowd:
        key.key(figure, list(panels.values()))
        crowds.name_extremes(figure, named, metric)
    elif by is not None:
        handles = [Line2D([], [], color=palette[v], linewidth=2) for v in values]
        figure.legend(handles, value_texts(values), title=by, loc="outside right upper")
    what = f"learning curves, {len(drawn)} trials" + (f", coloured by {by}" if by else "")
    heading(figure, title, what)
    return figure


def _curve_rows(metrics: list[str]) -> list[tuple[str | None, str | None]]:
    """The panels two a row: training beside validation accuracy, then loss, in their
    places whichever is there; a trainer's `train_x` beside its `val_x`; the rest two by
    two."""
    rows: list[tuple[str | None, str | None]] = []
    for train, val in (("train_accuracy", "val_accuracy"), ("train_loss", "val_loss")):
        if train in metrics or val in metrics:
            rows.append((train if train in metrics else None, val if val in metrics else None))
    placed = {column for row in rows for column in row}
    for metric in metrics:
        twin = f"val_{metric.removeprefix('train_')}"
        if metric.startswith("train_") and twin in metrics and twin not in placed:
            rows.append((metric, twin))
            placed |= {metric, twin}
    rest = [metric for metric in metrics if metric not in placed]
    rows += [(rest[i], rest[i + 1] if i + 1 < len(rest) else None) for i in range(0, len(rest), 2)]
    return rows


def _log_if_spread(axes: Axes, losses: pd.DataFrame) -> None:
    """A log scale where the losses span orders of magnitude (a diverging trial, MSE beside
    cross-entropy), which on a linear one would flatten every other curve; decided on both
    loss panels at once, so that they share a scale."""
    values = losses.to_numpy(dtype=float).ravel()
    finite = values[np.isfinite(values) & (values > 0)]
    if len(finite) and finite.max() / finite.min() > 100:
        axes.set_yscale("log")


def _share_y(row: np.ndarray) -> None:
    """Both panels of a row on one scale (where both are linear or both log)."""
    if row[0].get_yscale() == row[1].get_yscale():
        low = min(axes.get_ylim()[0] for axes in row)
        high = max(axes.get_ylim()[1] for axes in row)
        for axes in row:
            axes.set_ylim(low, high)


def scored_trials(trials: pd.DataFrame, keys: list[str], metric: str) -> pd.DataFrame:
    """The trials with a value for `metric`, `keys` hashable (lists as tuples); a
    RunDataError naming what is missing."""
    for key in keys:
        if key not in trials.columns:
            raise RunDataError(f"no column {key!r}; columns: {', '.join(trials.columns)}")
    require_numeric(trials, metric)
    scored = trials.dropna(subset=[metric])
    if scored.empty:
        raise RunDataError(f"no trial has a value for {metric!r} (all failed?)")
    return scored.assign(**{key: scored[key].map(hashable) for key in keys})
