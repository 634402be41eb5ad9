"""analysis.heatmap: a metric over two swept parameters, a cell per configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis import RunDataError, load_run
from analysis.heatmap import heatmap
from analysis.plots import png
from tests.helpers.metric_runs import write_custom_run
from tests.helpers.plots import assert_drawn


def test_a_cell_per_configuration_its_mean_over_repeats(tmp_path: Path) -> None:
    run = load_run(write_custom_run(tmp_path))
    figure = heatmap(run.trials, "lr", "width", title=run.title)
    axes = figure.axes[0]
    assert figure.get_suptitle() == (
        "cnn run cnn-1\nval_macro_f1 by lr and width (mean ± std over 2 repeats)"
    )
    assert [t.get_text() for t in axes.get_xticklabels()] == ["0.001", "0.01", "0.1"]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["32", "64"]
    means = np.asarray(axes.get_images()[0].get_array())
    assert means.round(4).tolist() == [[0.851, 0.901, 0.851], [0.871, 0.921, 0.871]]
    assert "0.9210\n± 0.0014" in [text.get_text() for text in axes.texts]
    (best,) = axes.patches
    assert best.get_xy() == (0.5, 0.5)  # lr 0.01, width 64
    assert_drawn(png(figure))


def test_a_third_axis_is_never_pooled_in_a_cell(tmp_path: Path) -> None:
    trials = load_run(write_custom_run(tmp_path)).trials
    three = trials.assign(depth=trials["seed"] % 2 + 1)
    three.attrs = {**trials.attrs, "swept": ["lr", "width", "depth", "seed"]}
    with pytest.raises(RunDataError, match="the trials also sweep depth: a cell of lr and width"):
        heatmap(three, "lr", "width")
