"""The parameters' importance (analysis.importance) as bars, the most important on top."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from analysis.plots import heading


def importance_bars(frame: pd.DataFrame, metric: str, *, title: str = "") -> Figure:
    """A horizontal bar a parameter of `frame` (parameter, importance), its share written
    beside it."""
    ranked = frame.iloc[::-1]  # barh draws the first row at the bottom
    figure = Figure(figsize=(7, 0.5 * len(ranked) + 2), layout="constrained")
    axes = figure.subplots()
    bars = axes.barh(ranked["parameter"].astype(str), ranked["importance"], color="tab:blue")
    axes.bar_label(bars, labels=[f"{share:.2f}" for share in ranked["importance"]], padding=3)
    axes.set_xlim(0, 1.1)
    axes.set_xlabel(f"share of {metric}'s variance (fANOVA)")
    heading(figure, title, f"importance of each parameter for {metric}")
    return figure
