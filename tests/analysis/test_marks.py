"""analysis.marks: what a figure marks beside its data, read off matplotlib's artists:
the references' dashed lines and their legend entries, the threshold's vertical lines, the
panel a reference's row belongs to, the legend of one panel or of several."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis import find_threshold
from analysis.marks import (
    REFERENCE_MARKERS,
    Reference,
    draw_references,
    draw_threshold,
    in_panel,
    legend,
)
from analysis.plots import metric_vs_param
from analysis.threshold import Level, Threshold
from tests.helpers.plots import legend_labels

POSITION = {16: 16.0, 64: 64.0, 256: 256.0}  # batch sizes on a numeric axis
SERIES = ["lr"]
GROUPS: list[tuple[tuple[Any, ...], pd.DataFrame]] = [((0.01,), pd.DataFrame()),
                                                      ((0.1,), pd.DataFrame())]  # fmt: skip
PALETTE = {(0.01,): "tab:blue", (0.1,): "tab:orange"}


def axes_of() -> Axes:
    return Figure().subplots()


def drawn(axes: Axes) -> list[Line2D]:
    """The lines with points on them (a legend entry is a line with none)."""
    return [line for line in axes.get_lines() if len(line.get_xdata())]


def entries(axes: Axes) -> list[Line2D]:
    """The lines that only make a legend entry."""
    return [line for line in axes.get_lines() if not len(line.get_xdata())]


def level(value: Any) -> Level:
    return Level(value, 0.9, float("nan"), 1, float("nan"))


def threshold(answer: Any, noise_aware: Any, param: str = "batch_size") -> Threshold:
    """A threshold whose answers are these values (None: no answer)."""
    return Threshold(param, "val_accuracy", "max", 0.001, [], [],
                     None if answer is None else level(answer),
                     None if noise_aware is None else level(noise_aware), 0, 0)  # fmt: skip


def test_metric_vs_param_marks_references_and_the_threshold(batch_trials: pd.DataFrame) -> None:
    rows = [(16, 0.98), (256, 0.95), (999, 0.5)]
    reference = Reference("ref1: Report A", tuple({"batch_size": b, "val_accuracy": a}
                                                  for b, a in rows))  # fmt: skip
    threshold = find_threshold(batch_trials, threshold=0.015)  # 64 -> 16 gains 0.0125
    assert threshold.answer is not None and threshold.answer.value == 16
    figure = metric_vs_param(batch_trials, "batch_size", "val_accuracy",
                             references=[reference], threshold=threshold)  # fmt: skip
    axes = figure.axes[0]
    dashed = [line for line in axes.get_lines() if line.get_linestyle() == "--"]
    drawn = [line.get_xydata().tolist() for line in dashed if len(line.get_xdata())]
    assert [[16, 0.98], [256, 0.95]] in drawn  # 999 is no batch size of the run
    (marker,) = [line for line in dashed if line.get_label().startswith("threshold")]
    assert marker.get_xdata()[0] == 16
    assert "threshold (report's rule, noise-aware): batch_size 16" in legend_labels(figure)
    assert "ref1: Report A" in legend_labels(figure)
    # A threshold on another parameter or metric is not this figure's.
    other = metric_vs_param(batch_trials, "batch_size", "val_loss", threshold=threshold)
    assert not any("threshold" in label for label in legend_labels(other))


def test_references_take_the_colour_of_their_series(grid_trials: pd.DataFrame) -> None:
    rows = tuple({"lr": 0.1, "activation": a, "val_accuracy": v}
                 for a, v in (("relu", 0.95), ("tanh", 0.94)))  # fmt: skip
    orders = {"activation": ["tanh", "relu"]}
    reference = Reference("ref1: paper", rows)
    figure = metric_vs_param(grid_trials, "activation", "val_accuracy", series=["lr"],
                             orders=orders, references=[reference])  # fmt: skip
    series = {c.get_label(): c.lines[0] for c in figure.axes[0].containers}
    (line,) = [ln for ln in figure.axes[0].get_lines()
               if ln.get_linestyle() == "--" and len(ln.get_xdata())]  # fmt: skip
    assert to_rgba(line.get_color()) == to_rgba(series["lr=0.1"].get_color())
    assert line.get_ydata().tolist() == [0.94, 0.95]


def test_in_panel_keeps_the_rows_naming_the_panels_value_or_none() -> None:
    rows = ({"width": [64], "val_accuracy": 0.9}, {"width": [32], "val_accuracy": 0.8},
            {"val_accuracy": 0.7})  # fmt: skip
    reference = Reference("ref1: paper", rows)
    # A list as the spec gives it matches the tuple a panel is keyed by.
    assert in_panel(reference, "width", ((64,),)) == Reference("ref1: paper", (rows[0], rows[2]))
    assert in_panel(reference, "width", ((128,),)).rows == (rows[2],)
    assert in_panel(reference, None, ()) is reference


def test_a_reference_is_black_where_it_names_no_series_and_coloured_where_it_does() -> None:
    rows = (
        {"batch_size": 64, "val_accuracy": 0.90}, {"batch_size": 16, "val_accuracy": 0.95},
        {"batch_size": 256, "lr": 0.1, "val_accuracy": 0.70},
        {"batch_size": 64, "lr": 0.1, "val_accuracy": 0.80},
        {"batch_size": 64, "lr": 0.5, "val_accuracy": 0.1},  # no line of the figure's
        {"batch_size": 999, "val_accuracy": 0.2},  # no batch size of the figure's
        {"batch_size": 64, "val_loss": 0.3},  # not the figure's metric
    )  # fmt: skip
    axes = axes_of()
    draw_references(axes, [Reference("ref1: paper", rows)], "batch_size", "val_accuracy",
                    SERIES, GROUPS, PALETTE, POSITION)  # fmt: skip
    black, orange = drawn(axes)
    # Each line's points in the axis' order, whatever the rows' order.
    assert black.get_xydata().tolist() == [[16, 0.95], [64, 0.9]]
    assert to_rgba(black.get_color()) == to_rgba("black")
    assert orange.get_xydata().tolist() == [[64, 0.8], [256, 0.7]]
    assert to_rgba(orange.get_color()) == to_rgba("tab:orange")
    assert {line.get_linestyle() for line in (black, orange)} == {"--"}
    assert {line.get_marker() for line in (black, orange)} == {REFERENCE_MARKERS[0]}
    # One legend entry for the reference, in black, whatever colours its lines have.
    (entry,) = entries(axes)
    assert entry.get_label() == "ref1: paper" and to_rgba(entry.get_color()) == to_rgba("black")


def test_each_reference_has_a_marker_of_its_own_and_none_drawn_has_no_entry() -> None:
    row = {"batch_size": 64, "val_accuracy": 0.9}
    references = [Reference(f"ref{i}: paper", (row,)) for i in range(1, 7)]
    references.insert(1, Reference("no figure of ours", ({"batch_size": 64, "val_loss": 0.3},)))
    axes = axes_of()
    draw_references(axes, references, "batch_size", "val_accuracy", [], [((), pd.DataFrame())],
                    {}, POSITION)  # fmt: skip
    assert [line.get_label() for line in entries(axes)] == [f"ref{i}: paper" for i in range(1, 7)]
    markers = [line.get_marker() for line in drawn(axes)]
    # The one with nothing to draw takes a marker all the same: the sixth reuses the first's.
    assert markers == ["X", "D", "v", "^", "X", "P"]


def test_a_long_reference_label_is_shortened_in_the_legend() -> None:
    source = "Report A, table A1 (Keras; 128 and 64 came from warm-started models, see A3)"
    reference = Reference(f"ref1: {source}", ({"batch_size": 64, "val_accuracy": 0.9},))
    axes = axes_of()
    draw_references(axes, [reference], "batch_size", "val_accuracy", [], [((), pd.DataFrame())],
                    {}, POSITION)  # fmt: skip
    (entry,) = entries(axes)
    # Cut at a word, within 70 characters.
    assert entry.get_label() == (
        "ref1: Report A, table A1 (Keras; 128 and 64 came from warm-started ...")  # fmt: skip


def test_two_threshold_answers_are_two_lines_each_named() -> None:
    axes = axes_of()
    draw_threshold(axes, threshold(64, 16), "batch_size", "val_accuracy", POSITION)
    lines = [(line.get_label(), line.get_xdata()[0], line.get_linestyle())
             for line in axes.get_lines()]  # fmt: skip
    assert lines == [("threshold (report's rule): batch_size 64", 64.0, "--"),
                     ("threshold (noise-aware): batch_size 16", 16.0, ":")]  # fmt: skip
    assert all(to_rgba(line.get_color()) == to_rgba("tab:red") for line in axes.get_lines())


def test_one_answer_alone_is_the_dashed_line() -> None:
    axes = axes_of()
    draw_threshold(axes, threshold(None, 256), "batch_size", "val_accuracy", POSITION)
    (line,) = axes.get_lines()
    assert line.get_label() == "threshold (noise-aware): batch_size 256"
    assert line.get_linestyle() == "--" and line.get_xdata()[0] == 256.0


def test_a_threshold_on_a_categorical_axis_is_at_its_values_place() -> None:
    axes = axes_of()
    position = {"tanh": 0.0, "relu": 1.0}
    draw_threshold(axes, threshold("relu", "relu", "activation"), "activation",
                   "val_accuracy", position)  # fmt: skip
    (line,) = axes.get_lines()
    assert line.get_xdata()[0] == 1.0
    assert line.get_label() == "threshold (report's rule, noise-aware): activation relu"


@pytest.mark.parametrize(
    ("given", "param", "metric"),
    [
        (None, "batch_size", "val_accuracy"),
        (threshold(64, 64), "lr", "val_accuracy"),  # another parameter's
        (threshold(64, 64), "batch_size", "val_loss"),  # another metric's
        (threshold(512, 512), "batch_size", "val_accuracy"),  # no batch size of the figure's
    ],
)
def test_a_threshold_not_of_this_figure_draws_nothing(
    given: Threshold | None, param: str, metric: str
) -> None:
    axes = axes_of()
    draw_threshold(axes, given, param, metric, POSITION)
    assert axes.get_lines() == []


def test_one_panels_legend_is_in_it_and_only_when_something_is_labelled() -> None:
    figure = Figure()
    axes = figure.subplots()
    axes.plot([1], [1])  # unlabelled: no legend for it
    legend(figure, axes)
    assert axes.get_legend() is None
    axes.plot([2], [2], label="best")
    legend(figure, axes)
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["best"]
    assert figure.legends == []


def test_panels_share_one_legend_beside_them_each_label_once() -> None:
    figure = Figure(layout="constrained")
    left, right = figure.subplots(1, 2)
    left.plot([1], [1], label="ref1: paper", color="tab:green")
    right.plot([1], [1], label="ref1: paper", color="tab:purple")
    right.plot([2], [2], label="best")
    legend(figure, None)
    (shared,) = figure.legends
    assert [text.get_text() for text in shared.get_texts()] == ["ref1: paper", "best"]
    # The first panel's handle stands for the label.
    assert to_rgba(shared.legend_handles[0].get_color()) == to_rgba("tab:green")
    assert left.get_legend() is None and right.get_legend() is None


def test_panels_with_nothing_labelled_get_no_legend() -> None:
    figure = Figure()
    for axes in figure.subplots(1, 2):
        axes.plot([1], [1])
    legend(figure, None)
    assert figure.legends == []
