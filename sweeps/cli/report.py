"""`sweeps report`, `sweeps threshold`, `sweeps compare`: the analysis package at the CLI.

Joined to the `sweeps` app by sweeps.cli.app; what they compute lives in analysis/ and, for
the report, analysis.report.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Annotated, Any

import pandas as pd
import typer

from analysis import Comparison, Run, compare_runs, find_threshold, load_run
from analysis.html import REPORT_HTML
from analysis.metrics import metric_mode, run_metric
from analysis.numbers import value_texts
from analysis.place import Place
from analysis.render import (
    FORMATS,
    Whole,
    csv,
    json_text,
    markdown,
    records,
    rich_table,
    threshold_block,
)
from analysis.report import Report, build_report, figures, html_page
from analysis.rundir import DEFAULT_METRIC, PLOTS
from analysis.select import select, select_runs, sorted_values
from analysis.tables import config_keys
from analysis.threshold import DEFAULT_THRESHOLD
from sweeps.cli.console import console, say

app = typer.Typer()
RunArgument = Annotated[
    str,
    typer.Argument(help="A run directory, <results>/<sweep>/<run id>: a path or a URI."),
]
FormatOption = Annotated[
    str, typer.Option("--format", help="table, markdown, csv or json (see above).")
]
MetricOption = Annotated[
    str | None,
    typer.Option(
        "--metric", metavar="NAME",
        help="The metric: a built-in one or the trainer's own (val_macro_f1)."
        " \\[default: the spec's metric]",
    ),
]  # fmt: skip
WhereOption = Annotated[
    list[str] | None,
    typer.Option(
        "--where", metavar="KEY=VALUE",
        help="Only the configurations whose swept KEY is VALUE (as the spec or a table gives"
        " it); repeatable.",
    ),
]  # fmt: skip


class BadInput(ValueError):
    """A bad flag value: one line and exit 2 (sweeps.cli.app.main)."""


class WriteFailed(Exception):
    """The figures or the page could not be written after all (an object store refused):
    one line and exit 1 (sweeps.cli.main)."""


def _format(value: str) -> str:
    if value not in FORMATS:
        raise BadInput(f"--format must be one of {', '.join(FORMATS)}, got {value!r}")
    return value


def _emit(
    frame: pd.DataFrame,
    fmt: str,
    title: str = "",
    sources: list[str] | None = None,
    layout: dict[str, Any] | None = None,
) -> None:
    """A table in the format asked for; `layout` (keys, metrics) as render.display_frame
    takes it: how its swept values and metrics print."""
    layout = layout or {}
    if fmt == "csv":
        _data(csv(frame))
    elif fmt == "markdown":
        _data((f"### {title}\n\n" if title else "") + markdown(frame, sources, **layout))
    else:
        console.print(Whole(rich_table(frame, title, sources, **layout)), crop=False)


def _data(text: str) -> None:
    """Data on stdout as it is: no markup, highlighting, wrapping or cropping."""
    console.out(text.rstrip("\n"), highlight=False)


def _prose(text: str, fmt: str) -> None:
    """A line for people: on stdout beside a table, on stderr beside data, which it would spoil."""
    if fmt == "table":
        # Text, not markup: "pip install 'sweeps[search]'" keeps its brackets.
        console.print(text, highlight=False, soft_wrap=True, markup=False)
    else:
        say(text)


MAX_TABLE_ROWS = 50  # configurations a terminal table shows; the data formats have all


def _write_table(report: Report) -> None:
    console.print(report.status(), highlight=False, soft_wrap=True)
    table, metric = report.table, report.metric
    if len(table) > MAX_TABLE_ROWS and metric in table.columns:
        # A thousand rows scroll past unread (and take a second to lay out): the best.
        ranked = table[metric].rank(ascending=report.mode == "min", method="first")
        table = table[ranked <= MAX_TABLE_ROWS]
    _emit(table, "table", report.title, report.sources, report.layout())
    if len(table) < len(report.table):
        _prose(f"the {len(table)} best of {len(report.table)} configurations by {metric};"
               " --format csv, markdown or json has every one", "table")  # fmt: skip
    if report.threshold is not None:
        console.print(threshold_block(report.threshold), crop=False)
    if "importance" in (tables := report.tables()):
        heading, frame, _ = tables["importance"]
        _emit(frame, "table", heading)
    for line in report.notes():
        _prose(line, "table")


def _write_markdown(report: Report) -> None:
    say(report.status())
    layout = report.layout()
    _data("\n".join(f"### {heading}\n\n{markdown(frame, sources, **layout)}"
                    for heading, frame, sources in report.tables().values()))  # fmt: skip
    _say_notes(report)


def _write_csv(report: Report, aggregate: bool = False) -> None:
    say(report.status())
    frame, sources = report.tidy(aggregate)
    _data(csv(frame))
    for index, source in enumerate(sources, 1):  # what markdown puts under the table
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


WRITERS: dict[str, Callable[[Report], None]] = {
    "table": _write_table, "markdown": _write_markdown, "csv": _write_csv, "json": _write_json,
}  # fmt: skip


@app.command("report")
def report(
    run_dir: RunArgument,
    fmt: FormatOption = "table",
    metric: MetricOption = None,
    where: WhereOption = None,
    aggregate: Annotated[
        bool,
        typer.Option(
            "--aggregate",
            help="With --format csv: a row per combination of swept values, its repeats'"
            " mean and <metric>_std, not a row per configuration.",
        ),
    ] = False,
    plots: Annotated[
        bool, typer.Option(help="Write PNG figures to <run>/plots/ (with --format table).")
    ] = True,
    html: Annotated[
        bool,
        typer.Option("--html", help="Also write <run>/report.html: one self-contained page."),
    ] = False,
) -> None:
    r"""Tables as the reports printed them, the threshold, the best trial, and plots.

    The tables show the metric (--metric, by default the spec's) and every metric of the
    trainer's own. The batch-size threshold appears when the sweep varies batch size
    alone; where 2+ parameters vary, each one's importance (fANOVA, with optuna: pip
    install 'sweeps\[search]'). Past 50 configurations the table shows the 50 best.
    Figures go to <run>/plots/: each metric against each swept parameter (of a random or
    TPE search, or sampled values: a point a configuration), every trial's learning curves
    on one figure, parallel coordinates and the importance (2+ axes), confusion matrices;
    past 12 configurations, coloured through a colour bar, the best and the worst 3 drawn
    out. --where KEY=VALUE reports on the configurations with that value only.

    --html also writes <run>/report.html, one page that opens offline in a browser: the
    tables, the figures embedded, every trial, the spec and the manifest (with --no-plots,
    the figures are in the page only).

    Formats: table (the default) is for reading. With markdown, csv and json, stdout holds
    only data, for a file or a program, and no figure is drawn (but for --html's page); the
    status line, the threshold's answer and the best trial go to stderr.

    markdown: every table, each under a ### heading.

    json: one object: "run" (sweep, id, path, trials, finished, failed), "title" and
    "sources" of the report table, and "tables": "report", "threshold" (when the sweep varies
    batch size), "importance" (parameter, importance) and "best", each a list of rows as
    objects, a missing value as null.

    csv: tidy data, pd.read_csv's frame: a row per configuration (trial_id, each swept key,
    status, each metric), or with --aggregate per combination of swept values (runs,
    failed, each metric and <metric>_std, the references' figures); stderr names the
    tables left out, which json and markdown hold.

    Examples:

        sweeps report results/report-a-batch-size/20261122-004609-8bb2

        sweeps report RUN_DIR --format markdown > report.md

        sweeps report RUN_DIR --format json | jq '.tables.threshold'

        sweeps report RUN_DIR --html

        sweeps report RUN_DIR --metric val_macro_f1 --where lr=0.01 --no-plots

        sweeps report RUN_DIR --format csv --aggregate > configurations.csv
    """
    fmt = _format(fmt)
    if aggregate and fmt != "csv":
        raise BadInput(f"--aggregate shapes the csv rows: use it with --format csv, not {fmt}")
    run = select(load_run(run_dir), where or [])
    # Data formats are for programs, which the figures would only slow (tens of seconds on
    # a large run): only the table draws them, and --html, whose page embeds them.
    plots = plots and fmt == "table"
    # A run read from where it cannot be written (another user's, a read-only mount): said
    # before any of the report is printed, with the way to read it there.
    if plots:
        _check_writable(run.dir / PLOTS, "the plots", "--no-plots reports without them")
    if html:
        _check_writable(run.dir.place, REPORT_HTML, "without --html the report is printed only")
    built = build_report(run, metric)
    if fmt == "csv":
        _write_csv(built, aggregate)
    else:
        WRITERS[fmt](built)
    if not (plots or html):
        return
    drawn = figures(built)
    if plots:
        for name, png, _ in drawn:  # there or in a bucket
            _write(run.dir / PLOTS / name, png)
        _prose(f"plots: {len(drawn)} PNG files in {run.dir.show(PLOTS)}", fmt)
    if html:
        _write(run.dir / REPORT_HTML, html_page(built, drawn).encode())
        _prose(f"html: {run.dir.show(REPORT_HTML)}", fmt)


def _check_writable(place: Place, what: str, instead: str) -> None:
    reason = place.unwritable()
    if reason is not None:
        raise BadInput(f"cannot write {what}: {reason}; {instead}")


def _write(place: Place, data: bytes) -> None:
    try:
        place.write_bytes(data)
    except OSError as error:
        why = os.strerror(error.errno) if error.errno else str(error).strip().splitlines()[0]
        raise WriteFailed(f"cannot write {place.uri}: {why}") from None


@app.command("threshold")
def threshold(
    run_dir: RunArgument,
    param: Annotated[str, typer.Option(help="The parameter, ordered large to small.")] = (
        "batch_size"
    ),
    metric: MetricOption = None,
    where: WhereOption = None,
    threshold: Annotated[
        float, typer.Option(help="A change at or below this is insignificant.")
    ] = DEFAULT_THRESHOLD,
) -> None:
    """Report A's batch-size threshold (A2), and the noise-aware answer with repeats.

    The levels are of one configuration: where the run sweeps another parameter too,
    --where KEY=VALUE keeps one of its values.

    Examples:

        sweeps threshold RUN_DIR --param batch_size --metric val_accuracy --threshold 0.001

        sweeps threshold RUN_DIR --param width --where lr=0.01
    """
    _check_threshold(threshold)
    run = select(load_run(run_dir), where or [])
    others = [key for key in config_keys(run.swept) if key != param]
    if param in run.swept and others:
        values = ", ".join(value_texts(sorted_values(run.trials[others[0]])))
        raise BadInput(
            f"the run also sweeps {', '.join(others)}: the threshold compares {param} levels"
            f" of one configuration, and would pool different ones as repeats; --where"
            f" {others[0]}=VALUE keeps one ({others[0]}: {values})"
        )
    metric = run_metric(run, metric)
    result = find_threshold(run.trials, param, metric, threshold, metric_mode(run.spec, metric))
    console.print(threshold_block(result), crop=False)


def _check_threshold(value: float) -> None:
    # Below 0 (or NaN) no change is insignificant, at inf every one is: no answer either way.
    if not math.isfinite(value):
        raise BadInput(f"--threshold must be a finite number, got {value}")
    if value < 0:
        raise BadInput(f"--threshold must be >= 0, got {value}")


@app.command("compare")
def compare(
    run_a: RunArgument,
    run_b: RunArgument,
    metric: MetricOption = None,
    where: WhereOption = None,
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
    overlap, averaged over the rest. --metric defaults to the first run's spec's metric;
    --where KEY=VALUE keeps the configurations with that value in each run that sweeps
    KEY.

    Formats: table, markdown, csv, or json: one object, "runs" ("a" and "b": sweep, id,
    path), "metric", "title", "differences" (key, a, b), "matched_on", and "tables":
    "compare", a list of rows as objects, a missing value as null. With csv the
    differences go to stderr.

    Example:

        sweeps compare results/quickstart/RUN_1 results/quickstart/RUN_2
    """
    fmt = _format(fmt)
    first, second = select_runs([load_run(run_a), load_run(run_b)], where or [])
    metric = metric or str(first.spec.get("metric") or DEFAULT_METRIC)
    result = compare_runs(first, second, metric, force)
    mode = metric_mode(first.spec, metric)
    layout = {"keys": result.matched_on, "metrics": {f"{metric}_a": mode, f"{metric}_b": mode}}
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
    _emit(result.table, fmt, title, layout=layout)


def _difference_frame(result: Comparison) -> pd.DataFrame:
    return pd.DataFrame([{"key": d.key, "a": d.a, "b": d.b} for d in result.differences])


def _difference_lines(result: Comparison) -> list[str]:
    return [f"differs: {d.text()}" for d in result.differences]


def _identity(run: Run) -> dict[str, str]:
    return {"sweep": run.name, "id": run.id, "path": run.path}
