"""analysis.importance_plot: the parameters' importance as bars, the most important on top."""

from __future__ import annotations

import pandas as pd

from analysis.importance_plot import importance_bars
from analysis.plots import png
from tests.helpers.plots import assert_drawn


def test_a_bar_a_parameter_the_most_important_on_top() -> None:
    frame = pd.DataFrame({"parameter": ["lr", "width", "activation"],
                          "importance": [0.7, 0.2, 0.1]})  # fmt: skip
    figure = importance_bars(frame, "val_accuracy", title="sweep run r")
    axes = figure.axes[0]
    assert figure.get_suptitle() == "sweep run r\nimportance of each parameter for val_accuracy"
    # Bottom to top, as the y axis counts.
    assert [t.get_text() for t in axes.get_yticklabels()] == ["activation", "width", "lr"]
    assert [round(bar.get_width(), 2) for bar in axes.patches] == [0.1, 0.2, 0.7]
    assert [text.get_text() for text in axes.texts] == ["0.10", "0.20", "0.70"]
    assert_drawn(png(figure))
