"""Which figures a run gets, and their file names: the same for any grid.

    <metric>-vs-<param>.png         the spec's metric (or the one asked for), then each
                                    custom metric, against each swept parameter
    parallel-coordinates.png        grids of two or more axes
    learning-curves-by-<param>.png  every trial's curves, coloured by that parameter
                                    (learning-curves.png when nothing is swept)
    confusion-grid.png              every configuration's matrix, one colour scale
    confusion-<configuration>.png   one per configuration, its repeats pooled:
                                    confusion-batch_size=64,activation=relu.png

Past CROWD (12) configurations, the metric, parallel-coordinates and learning-curve figures
draw a crowd (analysis.crowds): no legend entry a configuration, colours through a colour
bar, the best and the worst 3 by the metric drawn out.

`run_figures` yields them one at a time (a sweep of hundreds of configurations need not
hold hundreds of figures); `sweeps report` writes them to <run>/plots/ and its HTML, with
importance.png beside them where two or more parameters vary (analysis.report draws it from
the importance its table shows: analysis.importance_plot).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from analysis import crowds
from analysis.confusion import confusion_grid, confusion_matrix, pooled_counts
from analysis.load import Run, hashable
from analysis.metrics import epoch_metrics, metric_mode, shown_metrics
from analysis.parallel import parallel_coordinates
from analysis.plots import (
    Reference,
    config_label,
    learning_curves,
    metric_vs_param,
    split_by,
)
from analysis.rundir import DEFAULT_METRIC
from analysis.scatter import metric_by_param
from analysis.settings import reference_differences, value_text
from analysis.tables import config_keys, numbered_references
from analysis.threshold import Threshold

UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]+")


@dataclasses.dataclass(frozen=True)
class Plot:
    name: str  # its file name
    figure: Figure
    detail: bool = False  # a close-up of what an overview figure already shows


def file_label(
    row: Mapping[str, Any], keys: list[str], among: Mapping[str, Sequence[Any]] | None = None
) -> str:
    """A configuration as a file name's part: "batch_size=64,hidden=64-32"; a value with
    the digits that tell it from the others of its key in `among`."""
    parts = []
    for key in keys:
        value = hashable(row[key])
        text = ("-".join(map(value_text, value)) if isinstance(value, tuple)
                else value_text(value, (among or {}).get(key)))  # fmt: skip
        parts.append(f"{key}={text}")
    return UNSAFE.sub("_", ",".join(parts)) or "all"


def references(run: Run, metric: str) -> list[Reference]:
    """The spec's references that give `metric`, labelled as the report's table numbers
    them (tables.numbered_references): "ref1: <source>", "ref1 (other settings): <source>"
    where measured under settings this run does not share (the tables and the HTML say
    which). One the table leaves out, its rows lacking a swept key, is still drawn (in
    black, beside every line) but under no number: "not in the table: <source>"."""
    labelled: list[Reference] = []
    for reference, rows, number in numbered_references(
        run.references, config_keys(run.swept), metric
    ):
        head = "not in the table" if number is None else f"ref{number}"
        other = " (other settings)" if reference_differences(reference, run.spec) else ""
        label = f"{head}{other}: {reference.get('source', 'reference')}"
        labelled.append(Reference(label, tuple(rows)))
    return labelled


def run_figures(
    run: Run, threshold: Threshold | None = None, metric: str | None = None
) -> Iterator[Plot]:
    """Every figure the run supports, titled with its sweep and run id: of `metric` (the
    spec's by default) and of each custom metric; `threshold` (report A's batch-size
    answer) is marked on the figure of its parameter and metric."""
    trials, title = run.trials, run.title
    keys = config_keys(run.swept)
    metric = metric or str(run.spec.get("metric", DEFAULT_METRIC))
    orders = {key: list(values) for key, values in (run.spec.get("grid") or {}).items()}
    # Values drawn (sampled, or a random or TPE search) are each a configuration's own.
    drawn = run.spec.get("search", "grid") != "grid" or bool(run.spec.get("sample"))
    for index, name in enumerate(shown_metrics(run, metric)):
        scored = (name in trials.columns and pd.api.types.is_numeric_dtype(trials[name])
                  and trials[name].notna().any())  # fmt: skip
        if not scored:
            continue
        mode = metric_mode(run.spec, name)
        if drawn:  # no grid points to join: where each configuration lies
            figure = metric_by_param(trials, keys, name, mode=mode, orders=orders, title=title)
            yield Plot(f"{name}-by-param.png", figure)
        for param in [] if drawn else keys:
            figure = metric_vs_param(trials, param, name, mode=mode, series=keys, orders=orders,
                                     references=references(run, name), threshold=threshold,
                                     title=title)  # fmt: skip
            yield Plot(f"{name}-vs-{param}.png", figure)
        if index == 0 and len(keys) >= 2:  # of the run's metric only
            figure = parallel_coordinates(trials, keys, name, mode=mode, orders=orders,
                                          title=title)  # fmt: skip
            yield Plot("parallel-coordinates.png", figure)
    yield from _learning_curves(run, keys, orders, title, metric)
    yield from _confusions(trials, keys, orders, title)


def _learning_curves(
    run: Run, keys: list[str], orders: dict[str, list[Any]], title: str, metric: str
) -> Iterator[Plot]:
    """A figure of every trial's curves for each swept key, coloured by it; past CROWD
    configurations (analysis.crowds) its best and worst by `metric` drawn out."""
    epochs = run.epochs
    if epochs.empty or "trial_id" not in epochs.columns:
        return
    trainers = {"loss", "accuracy"}  # the trainer's names, in a frame made by hand
    if not (epoch_metrics(epochs, run.config_columns) or trainers & set(epochs.columns)):
        return
    by = keys or (["seed"] if "seed" in run.swept else [None])
    if keys and crowds.configurations(run.trials, None) > crowds.CROWD:
        # A crowd's curves are the same whatever colours them, its best and worst drawn
        # out: one figure, not one a key, coloured by the key of most values.
        by = [max(keys, key=lambda key: run.trials[key].map(hashable).nunique())]
    for key in by:
        name = f"learning-curves-by-{key}.png" if keys else "learning-curves.png"
        order = orders.get(key) if key else None
        figure = learning_curves(run.trials, epochs, key, order=order, metric=metric,
                                 mode=metric_mode(run.spec, metric), title=title)  # fmt: skip
        yield Plot(name, figure)


def _confusions(
    trials: pd.DataFrame, keys: list[str], orders: dict[str, list[Any]], title: str
) -> Iterator[Plot]:
    """The grid of every configuration's matrix, then each one alone (a close-up)."""
    # A column of nulls where no trainer returned a matrix (`dataset: null`, say): split a
    # configuration at a time, a run of thousands would look for them for seconds.
    if "confusion" not in trials.columns or not trials["confusion"].notna().any():
        return
    keyed = trials.assign(**{key: trials[key].map(hashable) for key in keys})
    among = {key: list(dict.fromkeys(keyed[key])) for key in keys}
    panels = []
    for key, group in split_by(keyed, keys, orders):
        counts = pooled_counts(group)
        if counts is not None:
            row = dict(zip(keys, key, strict=True))
            panels.append((row, counts, int(group["confusion"].notna().sum())))
    if len(panels) > 1:
        grid = [(config_label(row, keys, among), counts, runs) for row, counts, runs in panels]
        yield Plot("confusion-grid.png", confusion_grid(grid, title=title))
    for row, counts, runs in panels:
        figure = confusion_matrix(counts, config_label(row, keys, among), runs=runs, title=title)
        name = f"confusion-{file_label(row, keys, among)}.png"
        yield Plot(name, figure, detail=len(panels) > 1)
