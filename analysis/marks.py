"""What a figure marks beside its data: published figures (references), the threshold's
answers, and the legend that names them."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analysis.load import hashable
from analysis.numbers import value_text
from analysis.threshold import Threshold

REFERENCE_MARKERS = ("X", "P", "D", "v", "^")


@dataclasses.dataclass(frozen=True)
class Reference:
    """Published figures to draw beside ours: a legend label and the rows that give them."""

    label: str
    rows: tuple[Mapping[str, Any], ...]


def in_panel(reference: Reference, facet: str | None, key: tuple[Any, ...]) -> Reference:
    """The reference's rows a panel shows: those that name its facet's value or none."""
    if facet is None:
        return reference
    rows = tuple(r for r in reference.rows if facet not in r or hashable(r[facet]) == key[0])
    return Reference(reference.label, rows)


def legend(figure: Figure, axes: Axes | None) -> None:
    """One panel's legend in it; several panels' once, beside them, each label once."""
    if axes is not None:
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small")
        return
    entries: dict[str, Any] = {}
    for panel in figure.axes:
        for handle, label in zip(*panel.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if entries:
        figure.legend(list(entries.values()), list(entries), fontsize="small",
                      loc="outside right upper")  # fmt: skip


def draw_references(
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


def draw_threshold(
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
