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
import textwrap
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

from analysis.load import RunDataError, hashable, require_numeric
from analysis.settings import value_text
from analysis.threshold import Threshold, infer_mode

DPI = 100
MAX_SERIES = 10  # more lines than this in one axes is a thicket: points instead
REFERENCE_MARKERS = ("X", "P", "D", "v", "^")
LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 1}
EPOCH_PANELS = (  # (row, column): the epochs column, the panel's title
    ("train_accuracy", "training accuracy"), ("val_accuracy", "validation accuracy"),
    ("train_loss", "training loss"), ("val_loss", "validation loss"),
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Reference:
    """Published figures to draw beside ours: a legend label and the rows that give them."""

    label: str
    rows: tuple[Mapping[str, Any], ...]


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


def config_label(row: Mapping[str, Any], keys: Sequence[str]) -> str:
    """ "batch_size=64, activation=relu"; "all trials" when nothing is swept."""
    return ", ".join(f"{key}={value_text(hashable(row[key]))}" for key in keys) or "all trials"


def ordered(values: Sequence[Any], order: Sequence[Any] | None = None) -> list[Any]:
    """Distinct values in the order a figure shows them: numbers ascending, anything else
    in the spec's grid order, then as text."""
    distinct = list(dict.fromkeys(hashable(v) for v in values))
    if all(is_number(v) for v in distinct):
        return sorted(distinct)
    position = {hashable(v): i for i, v in enumerate(order or [])}
    return sorted(distinct, key=lambda v: (position.get(v, len(position)), str(v)))


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_)


def log_base(values: Sequence[Any]) -> int | None:
    """2 or 10 when the values read best on a log axis (batch sizes, learning rates)."""
    if len(values) < 2 or not all(is_number(v) and v > 0 for v in values):
        return None
    if all(float(v).is_integer() and int(v) & (int(v) - 1) == 0 for v in values):
        return 2
    return 10 if max(values) / min(values) >= 10 else None


def colours(values: Sequence[Any]) -> dict[Any, tuple[float, ...]]:
    """A colour per value: a sequential map over ordered numbers (small dark, large
    light), distinct hues for categories."""
    if values and all(is_number(v) for v in values) and len(values) > 1:
        cmap = colormaps["viridis"]
        # Stop short of viridis' pale yellow end, which vanishes on white.
        return {v: cmap(0.85 * i / (len(values) - 1)) for i, v in enumerate(values)}
    cmap = colormaps["tab10" if len(values) <= 10 else "tab20"]
    return {v: cmap(i % cmap.N) for i, v in enumerate(values)}


def series_colours(keys: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, ...], tuple[float, ...]]:
    """A colour per series key: one swept axis gets the colours its values get in the
    learning curves (batch sizes sequential in both figures); several axes, a hue each."""
    if all(len(key) == 1 for key in keys):
        by_value = colours([key[0] for key in keys])
        return {key: by_value[key[0]] for key in keys}
    return colours(keys)


def heading(figure: Figure, title: str, what: str) -> None:
    figure.suptitle(f"{title}\n{what}" if title else what)


def direction(metric: str, mode: str) -> str:
    return f"{metric} ({'higher' if mode == 'max' else 'lower'} is better)"


def _x_axis(axes: Axes, param: str, values: list[Any], numeric: bool) -> None:
    axes.set_xlabel(param)
    if not numeric:
        axes.set_xticks(range(len(values)), [value_text(v) for v in values])
        axes.set_xlim(-0.5, len(values) - 0.5)
        return
    base = log_base(values)
    if base is not None:
        axes.set_xscale("log", base=base)
        axes.set_xticks(values, [value_text(v) for v in values])
        axes.minorticks_off()


def metric_vs_param(
    trials: pd.DataFrame,
    param: str,
    metric: str,
    *,
    mode: str | None = None,
    series: Sequence[str] = (),
    orders: Mapping[str, Sequence[Any]] | None = None,
    references: Sequence[Reference] = (),
    threshold: Threshold | None = None,
    title: str = "",
) -> Figure:
    """`metric` against `param`: a line per combination of the `series` keys (the grid's
    other axes), each point the mean over repeats with their standard deviation as error
    bars and each repeat a faint dot; the best mean starred; references' figures dashed;
    `threshold`'s answers as vertical lines when it is about this parameter and metric."""
    mode = mode or infer_mode(metric)
    orders = orders or {}
    series = [key for key in series if key != param]
    scored = scored_trials(trials, [param, *series], metric)
    values = ordered(scored[param], orders.get(param))
    numeric = all(is_number(v) for v in values)
    position = {v: (float(v) if numeric else float(i)) for i, v in enumerate(values)}
    groups = split_by(scored, series, orders)
    crowded = len(groups) > MAX_SERIES
    palette = series_colours([key for key, _ in groups]) if len(groups) > 1 else {}
    repeats = int(scored.groupby([*series, param]).size().max())

    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.subplots()
    means: list[tuple[float, float]] = []  # (x, mean) of every point, for the best
    for index, (key, group) in enumerate(groups):
        colour = "grey" if crowded else palette.get(key, "tab:blue")
        named = dict(zip(series, key, strict=True))
        label = config_label(named, series) if series and not crowded else None
        # Side by side, not on top of each other, where categories share an x.
        shift = 0.0 if numeric or crowded else 0.08 * (index - (len(groups) - 1) / 2)
        stats = group.groupby(param)[metric].agg(["mean", "std", "size"])
        stats = stats.loc[[v for v in values if v in stats.index]]
        xs = np.array([position[v] for v in stats.index]) + shift
        spread = stats["std"].fillna(0.0).to_numpy() if repeats > 1 else None
        axes.errorbar(xs, stats["mean"].to_numpy(), yerr=spread, marker="o", capsize=4,
                      color=colour, label=label, linestyle="none" if crowded else "-")  # fmt: skip
        if repeats > 1:
            dots = group[param].map(position).to_numpy() + shift
            axes.scatter(dots, group[metric], s=12, color=colour, alpha=0.35, linewidths=0)
        means += zip(xs.tolist(), stats["mean"].tolist(), strict=True)
    best = (max if mode == "max" else min)(means, key=lambda point: point[1])
    axes.plot(*best, marker="*", markersize=16, color="gold", markeredgecolor="black",
                  linestyle="none", label="best", zorder=5)  # fmt: skip
    _draw_references(axes, references, param, metric, series, groups, palette, position)
    _draw_threshold(axes, threshold, param, metric, position)
    _x_axis(axes, param, values, numeric)
    axes.set_ylabel(direction(metric, mode))
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")
    spread_text = f"mean ± std over {repeats} seeds" if repeats > 1 else "one run each"
    heading(figure, title, f"{metric} vs {param} ({spread_text})")
    return figure


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


def _draw_references(
    axes: Axes,
    references: Sequence[Reference],
    param: str,
    metric: str,
    series: list[str],
    groups: list[tuple[tuple[Any, ...], pd.DataFrame]],
    palette: dict[Any, Any],
    position: dict[Any, float],
) -> None:
    """Each reference dashed, with a marker of its own: in a series' colour where its rows
    name that series' values, in black where they name none of the other axes."""
    for reference, marker in zip(references, REFERENCE_MARKERS * 4, strict=False):
        rows = [r for r in reference.rows if param in r and metric in r
                and hashable(r[param]) in position]  # fmt: skip
        lines: list[tuple[Any, list[Mapping[str, Any]]]] = []
        unconditional = [r for r in rows if not any(key in r for key in series)]
        if unconditional:
            lines.append(("black", unconditional))
        for key, _ in groups:
            wanted = dict(zip(series, key, strict=True))
            matched = [r for r in rows if series and all(
                k in r and hashable(r[k]) == v for k, v in wanted.items())]  # fmt: skip
            if matched:
                lines.append((palette.get(key, "black"), matched))
        for colour, matched in lines:
            points = sorted((position[hashable(r[param])], float(r[metric])) for r in matched)
            xs, ys = zip(*points, strict=True)
            axes.plot(xs, ys, linestyle="--", marker=marker, color=colour, alpha=0.8)
        if lines:  # one legend entry per reference, whatever the colours
            axes.plot([], [], linestyle="--", marker=marker, color="black",
                      label=textwrap.shorten(reference.label, 70, placeholder=" ..."))  # fmt: skip


def _draw_threshold(
    axes: Axes, threshold: Threshold | None, param: str, metric: str, position: dict[Any, float]
) -> None:
    if threshold is None or threshold.param != param or threshold.metric != metric:
        return
    answers = {"report's rule": threshold.answer, "noise-aware": threshold.noise_aware}
    marked: dict[Any, list[str]] = {}
    for name, level in answers.items():
        if level is not None and hashable(level.value) in position:
            marked.setdefault(hashable(level.value), []).append(name)
    for (value, names), style in zip(marked.items(), ("--", ":"), strict=False):
        label = f"threshold ({', '.join(names)}): {param} {value_text(value)}"
        axes.axvline(position[value], color="tab:red", linestyle=style, alpha=0.8, label=label)


def learning_curves(
    trials: pd.DataFrame,
    epochs: pd.DataFrame,
    by: str | None,
    *,
    order: Sequence[Any] | None = None,
    title: str = "",
) -> Figure:
    """Every trial's accuracy and loss per epoch, training beside validation, on one
    figure, each trial coloured by its value of `by` (None: all one colour)."""
    if "trial_id" not in epochs.columns or epochs.empty:
        raise RunDataError("the epochs frame is empty: no learning curves to draw")
    # A frame made by hand may carry the trainer's own names (`loss`, `accuracy`).
    epochs = epochs.rename(columns={n: f"train_{n}" for n in ("loss", "accuracy")
                                    if f"train_{n}" not in epochs.columns})  # fmt: skip
    panels = [(column, name) for column, name in EPOCH_PANELS if column in epochs.columns]
    if not panels:
        raise RunDataError("the epochs frame has none of " + ", ".join(c for c, _ in EPOCH_PANELS))
    if by is not None and by not in trials.columns:
        raise RunDataError(f"no column {by!r}; columns: {', '.join(trials.columns)}")
    drawn = trials[trials["trial_id"].isin(set(epochs["trial_id"]))]
    values = ordered(drawn[by], order) if by is not None else [None]
    palette = colours(values) if by is not None else {None: colormaps["tab10"](0)}

    figure = Figure(figsize=(11, 7.5), layout="constrained")
    grid = figure.subplots(2, 2, sharex=True, squeeze=False)
    by_column = {column: grid.ravel()[i] for i, (column, _) in enumerate(EPOCH_PANELS)}
    for _, trial in drawn.sort_values("trial_id").iterrows():
        rows = epochs[epochs["trial_id"] == trial["trial_id"]].sort_values("epoch")
        colour = palette[hashable(trial[by]) if by is not None else None]
        for column, _ in panels:
            by_column[column].plot(rows["epoch"], rows[column], color=colour, alpha=0.8,
                                   linewidth=1.4, marker="o", markersize=2.5)  # fmt: skip
    for column, name in EPOCH_PANELS:
        axes = by_column[column]
        if column not in epochs.columns:
            axes.set_visible(False)
            continue
        axes.set_title(name)
        if column.endswith("loss"):  # the bottom row's; the top row shares its x axis
            axes.set_xlabel("epoch")
        axes.set_ylabel(name.split()[-1])
        axes.grid(alpha=0.3)
        axes.xaxis.get_major_locator().set_params(integer=True)
        if column.endswith("loss"):
            _log_if_spread(axes, epochs[[c for c, _ in panels if c.endswith("loss")]])
    _share_y(grid)
    if by is not None:
        handles = [Line2D([], [], color=palette[v], linewidth=2) for v in values]
        figure.legend(handles, [value_text(v) for v in values], title=by, loc="outside right upper")
    what = f"learning curves, {len(drawn)} trials" + (f", coloured by {by}" if by else "")
    heading(figure, title, what)
    return figure


def _log_if_spread(axes: Axes, losses: pd.DataFrame) -> None:
    """A log scale where the losses span orders of magnitude (a diverging trial, MSE beside
    cross-entropy), which on a linear one would flatten every other curve; decided on both
    loss panels at once, so that they share a scale."""
    values = losses.to_numpy(dtype=float).ravel()
    finite = values[np.isfinite(values) & (values > 0)]
    if len(finite) and finite.max() / finite.min() > 100:
        axes.set_yscale("log")


def _share_y(grid: np.ndarray) -> None:
    """Training and validation on one scale per row, so that the gap between them reads."""
    for row in grid:
        visible = [axes for axes in row if axes.get_visible()]
        if len(visible) == 2 and visible[0].get_yscale() == visible[1].get_yscale():
            low = min(axes.get_ylim()[0] for axes in visible)
            high = max(axes.get_ylim()[1] for axes in visible)
            for axes in visible:
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
