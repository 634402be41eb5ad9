"""Parallel coordinates: a line per configuration across an axis per swept parameter."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import RunDataError
from analysis.parallel import parallel_coordinates


def test_parallel_coordinates(grid_trials: pd.DataFrame) -> None:
    figure = parallel_coordinates(grid_trials, ["lr", "activation"], "val_accuracy",
                                  orders={"activation": ["tanh", "relu"]})  # fmt: skip
    axes = figure.axes[0]
    lines = [line for line in axes.get_lines() if line.get_marker() == "o"]  # not the axes
    assert len(lines) == 4  # one per configuration
    assert [t.get_text() for t in axes.get_xticklabels()] == ["lr", "activation", "val_accuracy"]
    # The best drawn last, on top, at the top of the metric's axis; lr 0.1 at the top of lr's.
    assert lines[-1].get_ydata().tolist() == [1.0, 1.0, 1.0]
    assert lines[0].get_ydata().tolist() == [0.0, 0.0, 0.0]
    assert "4 configurations" in figure.get_suptitle()
    with pytest.raises(RunDataError, match="optimizer"):
        parallel_coordinates(grid_trials, ["lr", "optimizer"], "val_accuracy")
