"""`sweeps report`, `sweeps threshold`, `sweeps compare`: the analysis package at the CLI.

Registered on the app by sweeps.cli; everything they compute lives in analysis/.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Any

import pandas as pd
import typer
from rich.text import Text

from analysis import (
    Comparison,
    Run,
    RunDataError,
    Threshold,
    compare_runs,
    find_threshold,
    load_run,
    report_table,
)
from analysis.html import REPORT_HTML
from analysis.render import (
    FORMATS,
    Whole,
    csv,
    json_text,
    markdown,
    records,
    rich_table,
    threshold_block,
    threshold_frame,
)
from analysis.rundir import PLOTS
from analysis.threshold import DEFAULT_THRESHOLD
from sweeps.options import console, say

RunArgument = Annotated[
    str,
    typer.Argument(help="A run directory, <results>/<sweep>/<run id>: a path or a URI."),
]
FormatOption = Annotated[
    str, typer.Option("--format", help="table, markdown, csv or json (see above).")
]


class BadInput(ValueError):
    """Turned into a one-line error and exit 2 by the CLI."""


def _format(value: str) -> str:
    if value not in FORMATS:
        raise BadInput(f"--format must be one of {', '.join(FORMATS)}, got {value!r}")
    return value


def _emit(frame: pd.DataFrame, fmt: str, title: str = "", sources: list[str] | None = None):
    if fmt == "csv":
        _data(csv(frame))
    elif fmt == "markdown":
        _data((f"### {title}\n\n" if title else "") + markdown(frame, sources))
    else:
        console.print(Whole(rich_table(frame, title, sources)), crop=False)


def _data(text: str) -> None:
    """Data on stdout as it is: no markup, highlighting, wrapping or cropping."""
    console.out(text.rstrip("\n"), highlight=False)


def _prose(text: str, fmt: str) -> None:
    """A line for people: on stdout beside a table, on stderr beside data, which it would spoil."""
    if fmt == "table":
        console.print(text, highlight=False, soft_wrap=True)
    else:
        say(text)


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything `sweeps report` shows, computed before any of it is written."""

    run: Run
    title: str
    table: pd.DataFrame
    sources: list[str]
    threshold: Threshold | None  # when the sweep varies batch_size
    best: pd.DataFrame  # the best trial's row; empty when no trial has the metric
    metric: str

    def summary(self) -> dict[str, Any]:
        counts = self.run.trials["status"].value_counts()
        return {"sweep": self.run.name, "id": self.run.id, "path": self.run.path,
                "trials": len(self.run.trials), "finished": int(counts.get("TERMINATED", 0)),
                "failed": int(counts.get("ERROR", 0)), "planned": self.run.planned,
                "in_progress": self.run.in_progress}  # fmt: skip

    def status(self) -> str:
        s = self.summary()
        head = f"{s['sweep']} run {s['id']}: "
        counts = f"{s['finished']} finished, {s['failed']} failed"
        planned, written = s["planned"], s["trials"]
        if self.run.in_progress:
            # No finished_at in its manifest: the run is still going, or its driver died.
            of = f" of {planned}" if planned else ""
            return (f"{head}{written}{of} trials so far ({counts}): the run has not ended"
                    " (still running, or stopped without ending)")  # fmt: skip
        if planned and written < planned:
            return (f"{head}{written} of {planned} trials ({counts}); the rest never ran:"
                    f" `sweeps resume {s['path']}`")  # fmt: skip
        return f"{head}{written} trials, {counts}"

    def tables(self) -> dict[str, tuple[str, pd.DataFrame, list[str]]]:
        """Each table the report has, by its name in JSON: (heading, frame, sources)."""
        tables = {"report": (self.title, self.table, self.sources)}
        if self.threshold is not None:
            heading = f"{self.threshold.param} threshold ({self.threshold.metric})"
            tables["threshold"] = (heading, threshold_frame(self.threshold), [])
        if not self.best.empty:
            tables["best"] = ("best trial", self.best, [])
        return tables

    def notes(self) -> list[str]:
        """The lines after the tables: the rule on each reference's figures, the best trial."""
        lines = []
        if self.threshold is not None:
            lines += [f"the same rule on ref{index}'s figures: {answer}"
                      for index, answer in _reference_thresholds(self.run.references)]  # fmt: skip
        if not self.best.empty:
            best = self.best.iloc[0]
            config = "  ".join(f"{key}={best[key]}" for key in self.run.swept)
            score = f"{self.metric} {best[self.metric]:.4f}"
            lines.append(f"best: {best['trial_id']}  {config}  {score}")
        return lines


def build_report(run: Run) -> Report:
    trials = run.trials
    title, table, sources = report_table(trials, run.spec, run.swept)
    threshold = find_threshold(trials) if "batch_size" in run.swept else None
    metric = run.spec.get("metric", "val_accuracy")
    best = _best_trial(trials, run.swept, metric, run.spec.get("mode", "max"))
    return Report(run, title, table, sources, threshold, best, metric)


def _best_trial(trials: pd.DataFrame, swept: list[str], metric: str, mode: str) -> pd.DataFrame:
    """The best trial as one row: trial_id, the swept parameters, the metric."""
    columns = ["trial_id", *swept, metric]
    if metric not in trials.columns:
        return pd.DataFrame(columns=columns)
    scored = trials.dropna(subset=[metric])
    if scored.empty:
        return pd.DataFrame(columns=columns)
    best = scored[metric].idxmax() if mode == "max" else scored[metric].idxmin()
    return scored.loc[[best], columns].reset_index(drop=True)


def _write_table(report: Report) -> None:
    console.print(report.status(), highlight=False, soft_wrap=True)
    _emit(report.table, "table", report.title, report.sources)
    if report.threshold is not None:
        console.print(threshold_block(report.threshold), crop=False)
    for line in report.notes():
        _prose(line, "table")


def _write_markdown(report: Report) -> None:
    say(report.status())
    _data("\n".join(f"### {heading}\n\n{markdown(frame, sources)}"
                    for heading, frame, sources in report.tables().values()))  # fmt: skip
    _say_notes(report)


def _write_csv(report: Report) -> None:
    say(report.status())
    _data(csv(report.table))
    for index, source in enumerate(report.sources, 1):  # what markdown puts under the table
        say(f"ref{index}: {source}")
    others = [name for name in report.tables() if name != "report"]
    if others:
        # One CSV holds one table; a second would be read as more rows of the first.
        say(f"{' and '.join(others)} table{'s' * (len(others) > 1)} not in csv:"
            " use --format json or markdown")  # fmt: skip
    _say_notes(report)


def _write_json(report: Report) -> None:
    say(report.status())
    tables = {name: records(frame) for name, (_, frame, _) in report.tables().items()}
    _data(json_text({"run": report.summary(), "title": report.title, "sources": report.sources,
                     "tables": tables}))  # fmt: skip
    _say_notes(report)


def _say_notes(report: Report) -> None:
    if report.threshold is not None:
        for line in report.threshold.lines():
            say(line)
    for line in report.notes():
        say(line)


WRITERS = {"table": _write_table, "markdown": _write_markdown, "csv": _write_csv,
           "json": _write_json}  # fmt: skip


def report(
    run_dir: RunArgument,
    fmt: FormatOption = "table",
    plots: Annotated[bool, typer.Option(help="Write PNG figures to <run>/plots/.")] = True,
    html: Annotated[
        bool,
        typer.Option("--html", help="Also write <run>/report.html: one self-contained page."),
    ] = False,
) -> None:
    """Tables as the reports printed them, the threshold, the best trial, and plots.

    The batch-size threshold appears when the sweep varies batch size; figures go to
    <run>/plots/: the spec's metric against each swept parameter, every trial's learning
    curves on one figure, parallel coordinates (2+ axes), confusion matrices.

    --html also writes <run>/report.html, one page that opens offline in a browser: the
    tables, the figures embedded, every trial, the spec and the manifest (with --no-plots,
    the figures are in the page only).

    Formats: table (the default) is for reading. With markdown, csv and json, stdout holds
    only data, for a file or a program; the status line, the threshold's answer, the best
    trial and where the plots went go to stderr.

    markdown: every table, each under a ### heading.

    json: one object: "run" (sweep, id, path, trials, finished, failed), "title" and
    "sources" of the report table, and "tables": "report", "threshold" (when the sweep varies
    batch size) and "best", each a list of rows as objects, a missing value as null.

    csv: the report table only, its header the first line, since one CSV holds one table;
    stderr names the tables left out, which json and markdown hold.

    Examples:

        sweeps report results/report-a-batch-size/20261122-004609-8bb2

        sweeps report RUN_DIR --format markdown --no-plots > report.md

        sweeps report RUN_DIR --format json --no-plots | jq '.tables.threshold'

        sweeps report RUN_DIR --html
    """
    fmt = _format(fmt)
    run = load_run(run_dir)
    built = build_report(run)
    WRITERS[fmt](built)
    if not (plots or html):
        return
    figures = _figures(built)
    if plots:
        for name, png, _ in figures:  # there or in a bucket
            (run.dir / PLOTS / name).write_bytes(png)
        _prose(f"plots: {len(figures)} PNG files in {run.dir.show(PLOTS)}", fmt)
    if html:
        (run.dir / REPORT_HTML).write_text(_html_page(built, figures))
        _prose(f"html: {run.dir.show(REPORT_HTML)}", fmt)


def _figures(report: Report) -> list[tuple[str, bytes, bool]]:
    """Each figure of the run as (file name, PNG, whether it is a close-up), drawn once
    for both the plots/ folder and the page."""
    from analysis.figures import run_figures  # matplotlib: only when figures are wanted
    from analysis.plots import png

    return [(plot.name, png(plot.figure), plot.detail)
            for plot in run_figures(report.run, report.threshold)]  # fmt: skip


def _html_page(report: Report, figures: list[tuple[str, bytes, bool]]) -> str:
    """The report as one HTML page: its tables (the threshold with its lines), its notes,
    the figures less the close-ups the overview figures already show."""
    from analysis.html import Table, report_page

    lines = {}
    if report.threshold is not None:
        block = threshold_block(report.threshold).renderables
        lines["threshold"] = [part.plain for part in block if isinstance(part, Text)]
    tables = [Table(heading, frame, sources, lines.get(name, ()))
              for name, (heading, frame, sources) in report.tables().items()]  # fmt: skip
    shown = [(name, png) for name, png, detail in figures if not detail]
    return report_page(report.run, status=report.status(), tables=tables, notes=report.notes(),
                       figures=shown)  # fmt: skip


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
    result = find_threshold(run.trials, param, metric, threshold, mode)
    console.print(threshold_block(result), crop=False)


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
    force: Annotated[
        bool,
        typer.Option("--force", help="Compare runs whose configurations differ anyway."),
    ] = False,
) -> None:
    """Two runs' matching configurations side by side: the metric in each, and b - a.

    A configuration of one run pairs with the same configuration of the other: the same
    value of every config key (dataset, epochs, every other base value, each swept
    parameter), the seeds of its repeats averaged. Where the runs' configurations differ,
    the differences are printed first; when no configuration pairs, it is an error naming
    them, exit 2, unless --force: then configurations pair on the keys whose values
    overlap, averaged over the rest.

    Formats: table, markdown, csv, or json: one object, "runs" ("a" and "b": sweep, id,
    path), "metric", "title", "differences" (key, a, b), "matched_on", and "tables":
    "compare", a list of rows as objects, a missing value as null. With csv the
    differences go to stderr.

    Example:

        sweeps compare results/quickstart/RUN_1 results/quickstart/RUN_2
    """
    fmt = _format(fmt)
    first, second = load_run(run_a), load_run(run_b)
    result = compare_runs(first, second, metric, force)
    title = f"{metric}: a = {first.id}, b = {second.id}"
    if fmt == "json":
        runs = {"a": _identity(first), "b": _identity(second)}
        differences = [{"key": d.key, "a": d.a, "b": d.b} for d in result.differences]
        _data(json_text({"runs": runs, "metric": metric, "title": title,
                         "differences": differences, "matched_on": result.matched_on,
                         "tables": {"compare": records(result.table)}}))  # fmt: skip
        return
    if result.differences:
        if fmt == "csv":  # one CSV holds one table
            for line in _difference_lines(result):
                say(line)
        else:
            _emit(_difference_frame(result), fmt, "configurations differ")
    _emit(result.table, fmt, title)


def _difference_frame(result: Comparison) -> pd.DataFrame:
    return pd.DataFrame([{"key": d.key, "a": d.a, "b": d.b} for d in result.differences])


def _difference_lines(result: Comparison) -> list[str]:
    return [f"differs: {d.text()}" for d in result.differences]


def _identity(run: Run) -> dict[str, str]:
    return {"sweep": run.name, "id": run.id, "path": run.path}


ERRORS = (RunDataError, BadInput)
