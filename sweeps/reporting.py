"""`sweeps report`, `sweeps threshold`, `sweeps compare`: the analysis package at the CLI.

Registered on the app by sweeps.cli; everything they compute lives in analysis/.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from analysis import RunDataError, compare_table, find_threshold, load_run, report_table
from analysis.render import FORMATS, csv, markdown, rich_table, threshold_block
from analysis.threshold import DEFAULT_THRESHOLD
from sweeps.options import console

RunArgument = Annotated[Path, typer.Argument(help="A run directory: <results>/<sweep>/<run id>.")]
FormatOption = Annotated[str, typer.Option("--format", help="table, markdown or csv.")]


class BadInput(ValueError):
    """Turned into a one-line error and exit 2 by the CLI."""


def _format(value: str) -> str:
    if value not in FORMATS:
        raise BadInput(f"--format must be one of {', '.join(FORMATS)}, got {value!r}")
    return value


def _emit(frame: pd.DataFrame, fmt: str, title: str = "", sources: list[str] | None = None):
    if fmt == "csv":
        console.out(csv(frame), end="")
    elif fmt == "markdown":
        console.out((f"### {title}\n\n" if title else "") + markdown(frame, sources))
    else:
        console.print(rich_table(frame, title, sources))


def report(
    run_dir: RunArgument,
    fmt: FormatOption = "table",
    plots: Annotated[bool, typer.Option(help="Write PNG figures to <run>/plots/.")] = True,
) -> None:
    """Tables as the reports printed them, the threshold, the best trial, and plots.

    The batch-size threshold appears when the sweep varies batch size; figures go to
    <run>/plots/.

    Examples:

        sweeps report results/report-a-batch-size/20261122-004609-8bb2

        sweeps report RUN_DIR --format markdown --no-plots > report.md
    """
    fmt = _format(fmt)
    run = load_run(run_dir)
    trials = run.trials
    counts = trials["status"].value_counts()
    console.print(
        f"{run.name} run {run.path.name}: {len(trials)} trials,"
        f" {counts.get('TERMINATED', 0)} finished, {counts.get('ERROR', 0)} failed",
        highlight=False, soft_wrap=True,
    )  # fmt: skip
    title, table, sources = report_table(trials, run.spec, run.swept)
    _emit(table, fmt, title, sources)
    if fmt != "csv" and "batch_size" in run.swept:
        result = find_threshold(trials)
        if fmt == "markdown":
            console.out("```\n" + "\n".join(result.lines()) + "\n```")
        else:
            console.print(threshold_block(result))
        for index, answer in _reference_thresholds(run.references):
            console.print(f"the same rule on ref{index}'s figures: {answer}", highlight=False,
                          soft_wrap=True)  # fmt: skip
    metric, mode = run.spec.get("metric", "val_accuracy"), run.spec.get("mode", "max")
    scored = trials.dropna(subset=[metric])
    if len(scored) and fmt != "csv":
        best = scored.loc[scored[metric].idxmax() if mode == "max" else scored[metric].idxmin()]
        config = "  ".join(f"{key}={best[key]}" for key in run.swept)
        console.print(f"best: {best['trial_id']}  {config}  {metric} {best[metric]:.4f}",
                      highlight=False, soft_wrap=True)  # fmt: skip
    if plots:
        from analysis.plots import write_plots

        written = write_plots(trials, run.epochs, run.swept, run.path / "plots")
        if fmt != "csv":
            console.print(f"plots: {len(written)} PNG files in {run.path / 'plots'}",
                          highlight=False, soft_wrap=True)  # fmt: skip


def _reference_thresholds(references: list[dict]) -> list[tuple[int, str]]:
    """The threshold rule applied to each reference's own batch-size figures."""
    answers = []
    for index, reference in enumerate(references, 1):
        rows = [r for r in reference.get("rows", []) if {"batch_size", "val_accuracy"} <= set(r)]
        if len(rows) > 1:
            answers.append((index, find_threshold(pd.DataFrame(rows)).lines()[-1]))
    return answers


def threshold(
    run_dir: RunArgument,
    param: Annotated[str, typer.Option(help="The parameter, ordered large to small.")] = (
        "batch_size"
    ),
    metric: Annotated[str, typer.Option(help="The metric whose changes are compared.")] = (
        "val_accuracy"
    ),
    threshold: Annotated[
        float, typer.Option(help="A change at or below this is insignificant.")
    ] = DEFAULT_THRESHOLD,
) -> None:
    """Report A's batch-size threshold (A2), and the noise-aware answer with repeats.

    Example:

        sweeps threshold RUN_DIR --param batch_size --metric val_accuracy --threshold 0.001
    """
    _check_threshold(threshold)
    run = load_run(run_dir)
    mode = run.spec.get("mode") if metric == run.spec.get("metric") else None
    console.print(threshold_block(find_threshold(run.trials, param, metric, threshold, mode)))


def _check_threshold(value: float) -> None:
    # Below 0 (or NaN) no change is insignificant, at inf every one is: no answer either way.
    if not math.isfinite(value):
        raise BadInput(f"--threshold must be a finite number, got {value}")
    if value < 0:
        raise BadInput(f"--threshold must be >= 0, got {value}")


def compare(
    run_a: RunArgument,
    run_b: RunArgument,
    metric: Annotated[str, typer.Option(help="The metric to compare.")] = "val_accuracy",
    fmt: FormatOption = "table",
) -> None:
    """Two runs' configurations side by side: the metric in each, and b - a.

    Example:

        sweeps compare results/quickstart/RUN_1 results/quickstart/RUN_2
    """
    fmt = _format(fmt)
    first, second = load_run(run_a), load_run(run_b)
    table = compare_table(first.trials, second.trials, first.swept, metric)
    _emit(table, fmt, f"{metric}: a = {first.path.name}, b = {second.path.name}")


ERRORS = (RunDataError, BadInput)
