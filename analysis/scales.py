"""A value on a figure: where it sits, its colour, its label; the same in every figure of a
run (analysis.plots, analysis.crowds, analysis.parallel).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap

from analysis.load import hashable
from analysis.numbers import is_number, value_text

# viridis short of its pale yellow end, which vanishes on white.
SEQUENTIAL = ListedColormap(colormaps["viridis"](np.linspace(0.0, 0.85, 256)), "viridis_short")


def ordered(values: Sequence[Any], order: Sequence[Any] | None = None) -> list[Any]:
    """Distinct values in the order a figure shows them: numbers ascending, anything else
    in the spec's grid order, then as text."""
    distinct = list(dict.fromkeys(hashable(v) for v in values))
    if all(is_number(v) for v in distinct):
        return sorted(distinct)
    position = {hashable(v): i for i, v in enumerate(order or [])}
    return sorted(distinct, key=lambda v: (position.get(v, len(position)), str(v)))


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


def config_label(
    row: Mapping[str, Any], keys: Sequence[str], among: Mapping[str, Sequence[Any]] | None = None
) -> str:
    """ "batch_size=64, activation=relu"; "all trials" when nothing is swept. A value has
    the digits that tell it from the other values of its key in `among`."""
    among = among or {}
    return ", ".join(f"{key}={value_text(hashable(row[key]), among.get(key))}"
                     for key in keys) or "all trials"  # fmt: skip
