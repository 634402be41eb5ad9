"""Figures of many configurations (a large grid, a random search): a crowd.

Past CROWD series, a legend entry a series names nothing a reader can find, and an artist a
series is what makes a figure of a thousand slow to draw. A crowd is drawn instead: every
series thin and light in one LineCollection, coloured through a colour bar by a swept value
(a number), through a legend of its values (at most CROWD categories), or else by the rank
of the run's metric; over them the best and the worst HIGHLIGHTED configurations by the
metric, thick and named in a small legend (the best solid, the worst dashed).

analysis.plots and analysis.parallel draw their crowds with these functions, which take
what the figure has computed (lines, values, scores) and know nothing of runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patheffects import withStroke

from analysis.load import hashable
from analysis.numbers import is_number, value_texts
from analysis.scales import SEQUENTIAL, colours, log_base, ordered

CROWD = 12  # series a legend can name; past it a figure is a crowd
HIGHLIGHTED = 3  # the best and the worst configurations drawn out of a crowd, each
RGBA = tuple[float, float, float, float]


@dataclasses.dataclass(frozen=True)
class Palette:
    """A crowd's colours, one a series, and their key: a colour bar or a legend."""

    colours: list[RGBA]
    title: str  # of the colour bar or the legend
    mappable: ScalarMappable | None = None  # the colour bar's
    categories: dict[str, RGBA] = dataclasses.field(default_factory=dict)  # the legend's

    def key(self, figure: Figure, axes: Sequence[Axes]) -> None:
        """The colour bar beside `axes`, or the legend of the categories beside the figure."""
        if self.mappable is not None:
            figure.colorbar(self.mappable, ax=list(axes), label=self.title)
        elif self.categories:
            handles = [Line2D([], [], color=c, linewidth=2) for c in self.categories.values()]
            figure.legend(handles, list(self.categories), title=self.title,
                          loc="outside right upper")  # fmt: skip


def palette(
    values: Sequence[Any],
    key: str,
    scores: Sequence[float],
    metric: str,
    mode: str,
    order: Sequence[Any] | None = None,
) -> Palette:
    """A colour for each series, whose `key` is `values` and whose `metric` is `scores`:
    numbers on a sequential map (log where they read best), a hue a category up to CROWD of
    them, else (more, or one value) the series' rank by the metric (1 the best)."""
    distinct = ordered(values, order)
    if len(distinct) > 1 and all(is_number(v) for v in distinct):
        low, high = float(distinct[0]), float(distinct[-1])
        norm = LogNorm(low, high) if log_base(distinct) else Normalize(low, high)
        mappable = ScalarMappable(norm, SEQUENTIAL)
        rgba = np.asarray(mappable.to_rgba(np.asarray(values, dtype=float))).tolist()
        return Palette([tuple(c) for c in rgba], key, mappable)
    if 1 < len(distinct) <= CROWD:
        by = colours(distinct)
        legend = dict(zip(value_texts(distinct), by.values(), strict=True))
        return Palette([by[hashable(v)] for v in values], key, categories=legend)
    ranks = pd.Series(scores, dtype=float).rank(ascending=mode != "max", method="first",
                                                na_option="bottom").to_numpy()  # fmt: skip
    norm = Normalize(1, max(len(ranks), 2))
    mappable = ScalarMappable(norm, SEQUENTIAL.reversed())  # the best light, as numbers go
    rgba = mappable.to_rgba(ranks).tolist()
    return Palette([tuple(c) for c in rgba], f"rank by {metric} (1 = the best)", mappable)


def extremes(
    scores: Sequence[float], mode: str, count: int = HIGHLIGHTED
) -> tuple[list[int], list[int]]:
    """The positions of the best `count` finite scores, the best first, and of the worst
    `count` of the others, the worst last."""
    values = np.asarray(scores, dtype=float)
    finite = np.flatnonzero(np.isfinite(values))
    ranked = finite[np.argsort(values[finite], kind="stable")]
    if mode == "max":
        ranked = ranked[::-1]
    best = ranked[:count].tolist()
    return best, ranked[count:][-count:].tolist()


def curves(
    frame: pd.DataFrame, by: list[str], x: str, ys: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, list[np.ndarray]]]:
    """The rows of `frame` as a line per combination of `by`, in the order they first
    come: the first row of each line, and for each of `ys` the lines' (x, y) points in x
    order. One sort, however many lines: no frame filtered a line at a time."""
    line = frame.groupby(by, sort=False, dropna=False).ngroup().to_numpy()
    rows = frame.assign(_line=line).sort_values(["_line", x], kind="stable")
    cuts = np.flatnonzero(np.diff(rows["_line"].to_numpy())) + 1
    xs = rows[x].to_numpy(dtype=float)
    points = {y: np.split(np.column_stack([xs, rows[y].to_numpy(dtype=float)]), cuts)
              for y in ys}  # fmt: skip
    return rows.iloc[np.r_[0, cuts]].drop(columns="_line"), points


def draw(
    axes: Axes,
    lines: Sequence[np.ndarray],
    colours: Sequence[RGBA],
    best: Sequence[int],
    worst: Sequence[int],
    names: Callable[[int], str],
) -> dict[str, Line2D]:
    """Each line (rows of x, y) thin and light, one artist for them all; over them the
    lines at `best` (the best first) solid and at `worst` (the worst last) dashed, thick,
    each named by `names` (a line's position -> what it is) for the legend: name -> line."""
    rest = sorted(set(range(len(lines))) - {*best, *worst})
    axes.add_collection(LineCollection([lines[i] for i in rest], colors=[colours[i] for i in rest],
                                       linewidths=0.7, alpha=0.35))  # fmt: skip
    alone = [i for i in rest if len(lines[i]) == 1]  # a line of one point draws nothing
    if alone:
        dots = np.concatenate([lines[i] for i in alone])
        axes.scatter(dots[:, 0], dots[:, 1], s=8, color=[colours[i] for i in alone],
                     alpha=0.5, linewidths=0)  # fmt: skip
    outline = [withStroke(linewidth=3.4, foreground="black")]
    named: dict[str, Line2D] = {}
    ranked = [("best", "-", i, place) for place, i in enumerate(best, 1)] + [
        ("worst", "--", i, len(worst) - place) for place, i in enumerate(worst)]  # fmt: skip
    for word, style, i, place in ranked:
        (line,) = axes.plot(lines[i][:, 0], lines[i][:, 1], color=colours[i], linewidth=2.4,
                            linestyle=style, marker="o" if len(lines[i]) == 1 else None,
                            path_effects=outline, zorder=4)  # fmt: skip
        named[f"{word} {place}: {names(i)}"] = line
    axes.autoscale_view()
    return named


def name_extremes(figure: Figure, named: Mapping[str, Line2D], metric: str) -> None:
    """The legend of the lines `draw` drew out, under the figure's panels."""
    if named:
        title = f"the best and the worst {HIGHLIGHTED} by {metric}"
        columns = 2 if figure.get_figwidth() >= 10 else 1  # long names: two fit a wide one
        figure.legend(list(named.values()), list(named), loc="outside lower center",
                      ncols=columns, fontsize="small", title=title)  # fmt: skip


def namer(
    frame: pd.DataFrame,
    keys: Sequence[str],
    metric: str,
    rows: Sequence[int],
    orders: Mapping[str, Sequence[Any]] | None = None,
) -> dict[int, str]:
    """The rows of `frame` at positions `rows` named as lines drawn out of a crowd: their
    values of `keys` (as analysis.scales' config_label prints them among the column's
    others, worked out once a key), and of `metric`."""
    texts = {}
    for key in keys:
        distinct = ordered(frame[key], (orders or {}).get(key))
        texts[key] = dict(zip(distinct, value_texts(distinct), strict=True))
    names = {}
    for i in rows:
        row = frame.iloc[i]
        values = ", ".join(f"{key}={texts[key][hashable(row[key])]}" for key in keys)
        names[i] = f"{values or 'all trials'} ({metric} {float(row[metric]):.4g})"
    return names


def configurations(trials: pd.DataFrame, by: str | None) -> int:
    """How many configurations the trials are, their repeats (seeds) one."""
    keys = [key for key in dict.fromkeys([*trials.attrs.get("swept", ()), *([by] if by else [])])
            if key != "seed" and key in trials.columns]  # fmt: skip
    if not keys:
        return 1
    return len(trials[keys].apply(lambda column: column.map(hashable)).drop_duplicates())


def learning_curves(
    panels: dict[str, Axes],
    drawn: pd.DataFrame,
    epochs: pd.DataFrame,
    by: str | None,
    order: Sequence[Any] | None,
    metric: str,
    mode: str,
) -> tuple[Palette, dict[str, Line2D]]:
    """The curves of each trial `drawn` in its epochs, a crowd in each panel (analysis.plots'
    learning_curves, past CROWD configurations), coloured by `by` (else by rank): the key to its
    colours, and the lines drawn out by name."""
    epochs = epochs[epochs["trial_id"].isin(set(drawn["trial_id"]))]
    first, lines = curves(epochs, ["trial_id"], "epoch", list(panels))
    trials = drawn.drop_duplicates("trial_id").set_index("trial_id").loc[first["trial_id"]]
    numeric = metric in trials.columns and pd.api.types.is_numeric_dtype(trials[metric])
    scores = trials[metric].to_numpy(dtype=float) if numeric else np.full(len(trials), np.nan)
    values = trials[by].map(hashable).tolist() if by is not None else [None] * len(trials)
    key = palette(values, by or "", scores, metric, mode, order)
    swept = [k for k in dict.fromkeys([*drawn.attrs.get("swept", ()), *([by] if by else [])])
             if k in trials.columns]  # fmt: skip
    best, worst = extremes(scores, mode)
    names = namer(trials.reset_index(), swept, metric, [*best, *worst])
    named = [draw(axes, lines[column], key.colours, best, worst, names.__getitem__)
             for column, axes in panels.items()]  # fmt: skip
    return key, named[0]


@dataclasses.dataclass(frozen=True)
class SeriesCrowd:
    """A crowd of metric_vs_param's lines (analysis.plots): a line per combination of the
    `series` keys, the same colour and the same lines drawn out in every panel."""

    series: list[str]
    param: str
    metric: str
    position: dict[Any, float]  # a value of param -> its x
    palette: Palette
    colours: dict[tuple[Any, ...], RGBA]  # a line's key -> its colour
    best: list[tuple[Any, ...]]  # the keys of the lines drawn out, the best first
    worst: list[tuple[Any, ...]]  # the worst last
    names: dict[tuple[Any, ...], str]  # of the lines drawn out

    @classmethod
    def of(
        cls,
        scored: pd.DataFrame,
        series: list[str],
        param: str,
        metric: str,
        mode: str,
        position: dict[Any, float],
        orders: Mapping[str, Sequence[Any]],
    ) -> SeriesCrowd:
        """Coloured by the series key of most values, each line ranked by its best mean."""
        means = scored.groupby([*series, param], sort=False)[metric].mean()
        by_line = means.groupby(level=series, sort=False)
        tops = by_line.max() if mode == "max" else by_line.min()
        keys = [key if isinstance(key, tuple) else (key,) for key in tops.index]
        best = tops.to_numpy()
        index = max(range(len(series)), key=lambda i: scored[series[i]].nunique())
        values = [key[index] for key in keys]
        colours = palette(values, series[index], best, metric, mode, orders.get(series[index]))
        top, bottom = extremes(best, mode)
        lines = pd.DataFrame(keys, columns=series).assign(**{metric: best})
        names = namer(lines, series, metric, [*top, *bottom], orders)
        return cls(series, param, metric, position, colours,
                   dict(zip(keys, colours.colours, strict=True)), [keys[i] for i in top],
                   [keys[i] for i in bottom], {keys[i]: names[i] for i in names})  # fmt: skip

    def draw(
        self, axes: Axes, panel: pd.DataFrame
    ) -> tuple[list[tuple[float, float]], dict[str, Line2D]]:
        """A panel's lines of means, (x, mean) for each point, and the lines drawn out."""
        means = panel.groupby([*self.series, self.param], sort=False)[self.metric].mean()
        means = means.reset_index().assign(_x=lambda f: f[self.param].map(self.position))
        first, lines = curves(means, self.series, "_x", [self.metric])
        keys = list(first[self.series].itertuples(index=False, name=None))
        at = {key: i for i, key in enumerate(keys)}
        best = [at[key] for key in self.best if key in at]
        worst = [at[key] for key in self.worst if key in at]
        named = draw(axes, lines[self.metric], [self.colours[key] for key in keys], best, worst,
                     lambda i: self.names[keys[i]])  # fmt: skip
        return list(zip(means["_x"], means[self.metric], strict=True)), named
