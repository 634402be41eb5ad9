"""The figures of analysis.plots, on frames made here: what each draws (its artists'
data), not only that a PNG appears. test_confusion.py and test_figures.py have the
confusion matrices and which figures a run gets; tests/sweeps/cli/test_report_html.py draws
them from real runs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from analysis import RunDataError
from analysis.confusion import confusion_matrix
from analysis.plots import learning_curves, metric_vs_param, png
from tests.helpers.plots import assert_drawn, error_bars
from tests.helpers.runs import EPOCHS, epochs_for


def test_metric_vs_param_means_and_spread_over_repeats(batch_trials: pd.DataFrame) -> None:
    figure = metric_vs_param(batch_trials, "batch_size", "val_accuracy", title="s run r1")
    (points,) = error_bars(figure).values()
    assert [x for x, _, _ in points] == [16, 64, 256]  # the failed trial counts nowhere
    assert [y for _, y, _ in points] == pytest.approx([0.9725, 0.96, 0.94])
    spread = np.std([0.965, 0.955], ddof=1)
    assert [h for _, _, h in points] == pytest.approx([np.std([0.97, 0.975], ddof=1), spread, 0])
    assert (
        figure.get_suptitle() == "s run r1\nval_accuracy vs batch_size (mean ± std over 2 repeats)"
    )
    assert figure.axes[0].get_xscale() == "log"
    assert figure.axes[0].get_ylabel() == "val_accuracy (higher is better)"
    best = [line for line in figure.axes[0].get_lines() if line.get_label() == "best"]
    assert best[0].get_xydata().tolist() == [[16, pytest.approx(0.9725)]]
    assert_drawn(png(figure))


def test_metric_vs_param_one_run_each_has_no_bars(batch_trials: pd.DataFrame) -> None:
    one_seed = batch_trials[batch_trials["seed"] == 0]
    figure = metric_vs_param(one_seed, "batch_size", "val_loss", mode="min")
    (points,) = error_bars(figure).values()
    assert all(h == 0 for _, _, h in points)
    assert "one run each" in figure.get_suptitle() and "±" not in figure.get_suptitle()
    best = [line for line in figure.axes[0].get_lines() if line.get_label() == "best"]
    assert best[0].get_xydata().tolist()[0][0] == 16  # the lowest loss


def test_metric_vs_param_a_line_per_other_axis(grid_trials: pd.DataFrame) -> None:
    orders = {"activation": ["tanh", "relu"]}
    figure = metric_vs_param(grid_trials, "activation", "val_accuracy", series=["lr"],
                             orders=orders)  # fmt: skip
    series = error_bars(figure)
    assert set(series) == {"lr=0.01", "lr=0.1"}
    # Categories in the spec's order, the lines side by side around each tick.
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["tanh", "relu"]
    assert [round(y, 4) for _, y, _ in series["lr=0.1"]] == [0.92, 0.93]
    assert [x for x, _, _ in series["lr=0.01"]] == pytest.approx([-0.04, 0.96])


@pytest.mark.parametrize(("param", "metric"), [("optimizer", "val_accuracy"), ("batch_size", "x")])
def test_metric_vs_param_missing_column(
    batch_trials: pd.DataFrame, param: str, metric: str
) -> None:
    with pytest.raises(RunDataError, match=param if param == "optimizer" else metric):
        metric_vs_param(batch_trials, param, metric)


def test_metric_vs_param_non_numeric_metric(batch_trials: pd.DataFrame) -> None:
    with pytest.raises(RunDataError, match="'status' is not numeric"):
        metric_vs_param(batch_trials, "batch_size", "status")


def test_learning_curves_overlaid_and_coloured_by_value(batch_trials: pd.DataFrame) -> None:
    epochs = epochs_for(batch_trials)
    figure = learning_curves(batch_trials, epochs, "batch_size", title="s run r1")
    panels = {axes.get_title(): axes for axes in figure.axes if axes.get_title()}
    assert set(panels) == {"training accuracy", "validation accuracy", "training loss",
                           "validation loss"}  # fmt: skip
    lines = panels["validation accuracy"].get_lines()
    assert len(lines) == 5  # every finished trial, the failed one has no epochs
    colour = {tuple(line.get_ydata()): to_rgba(line.get_color()) for line in lines}
    by_trial = dict(zip(batch_trials["trial_id"], batch_trials["batch_size"], strict=True))
    finals = epochs[epochs["epoch"] == EPOCHS].set_index("trial_id")["val_accuracy"]
    size_colours: dict[int, set] = {}
    for trial_id, ys in epochs.groupby("trial_id")["val_accuracy"]:
        size_colours.setdefault(by_trial[trial_id], set()).add(colour[tuple(ys)])
        assert ys.iloc[-1] == finals[trial_id]
    assert all(len(c) == 1 for c in size_colours.values())  # seeds share their value's colour
    assert len(set.union(*size_colours.values())) == 3  # and values differ
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["16", "64", "256"]
    assert figure.get_suptitle().startswith("s run r1\nlearning curves, 5 trials")
    assert_drawn(png(figure))


def test_a_value_has_one_colour_in_every_figure(batch_trials: pd.DataFrame) -> None:
    """batch_size's lines against another axis take the colours its learning curves do."""
    against = metric_vs_param(batch_trials, "seed", "val_accuracy", series=["batch_size"])
    lines = {label: to_rgba(c.lines[0].get_color()) for label, c in
             ((c.get_label(), c) for c in against.axes[0].containers)}  # fmt: skip
    curves = learning_curves(batch_trials, epochs_for(batch_trials), "batch_size")
    (legend,) = curves.legends
    legend_colours = {f"batch_size={text.get_text()}": to_rgba(handle.get_color())
                      for text, handle in zip(legend.get_texts(), legend.legend_handles,
                                              strict=True)}  # fmt: skip
    assert lines == legend_colours and len(set(lines.values())) == 3


def test_learning_curves_of_trainer_named_columns(batch_trials: pd.DataFrame) -> None:
    """A frame made by hand may carry the trainer's names: `loss`, `accuracy`."""
    epochs = epochs_for(batch_trials, names=("loss", "accuracy"))
    figure = learning_curves(batch_trials, epochs, None)
    training = [axes for axes in figure.axes if axes.get_title() == "training loss"]
    assert len(training[0].get_lines()) == 5 and not figure.legends


def test_learning_curves_without_epochs(batch_trials: pd.DataFrame) -> None:
    with pytest.raises(RunDataError, match="epochs frame is empty"):
        learning_curves(batch_trials, pd.DataFrame(), "batch_size")
    bare = epochs_for(batch_trials)[["trial_id", "epoch"]]
    with pytest.raises(RunDataError, match="none of train_accuracy"):
        learning_curves(batch_trials, bare, "batch_size")


def test_imports_neither_torch_nor_ray() -> None:
    # In a fresh interpreter: this one has torch loaded already by the shared conftest. The
    # confusion figure imports scikit-learn, which must not bring either in.
    code = ("import sys, numpy, analysis.figures, analysis.html, analysis.confusion as c;"
            "c.confusion_matrix(numpy.eye(3, dtype=int), 'x');"
            "print(sorted({'torch', 'ray', 'sweeps'} & set(sys.modules)))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_figures_are_figures_not_pyplot(batch_trials: pd.DataFrame) -> None:
    """Nothing lands in pyplot's registry, which would keep every figure of a sweep alive."""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    figure = metric_vs_param(batch_trials, "batch_size", "val_accuracy")
    confusion_matrix(np.eye(3, dtype=int), "x")
    assert isinstance(figure, Figure) and plt.get_fignums() == before
