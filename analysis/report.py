"""What `sweeps report` shows of a run, computed once for every format: its tables, the
threshold, the best trial, its figures, its HTML page. No printing: sweeps.cli.report
writes it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
from rich.text import Text

from analysis import Run, Threshold, find_threshold, report_table
from analysis.importance import importance
from analysis.load import hashable
from analysis.metrics import BUILT_IN, metric_mode, run_metric, shown_metrics
from analysis.numbers import count, metric_decimals, metric_text, value_text
from analysis.render import threshold_block, threshold_frame
from analysis.rundir import DEFAULT_METRIC, Status
from analysis.settings import mark_reference
from analysis.tables import config_keys, numbered_references, present, tidy_table
from analysis.threshold import measured


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything `sweeps report` shows, computed before any of it is written."""

    run: Run
    title: str
    table: pd.DataFrame
    sources: list[str]
    threshold: Threshold | None  # when the sweep varies batch_size
    best: pd.DataFrame  # the best trial's row; empty when no finished trial has the metric
    metric: str
    mode: str = "max"  # the metric's direction
    custom: tuple[str, ...] = ()  # the run's own metrics, beside `metric` in every table
    importance: pd.DataFrame | str = ""  # each parameter's share (fANOVA), or why none

    def layout(self) -> dict[str, Any]:
        """How the tables print (render.display_frame): the swept values told apart, each
        metric to the decimals its best and runner-up need."""
        metrics = [self.metric, *BUILT_IN, "test_loss", "test_accuracy", *self.custom]
        modes = {m: metric_mode(self.run.spec, m) for m in metrics}
        return {
            "keys": self.run.swept,
            "metrics": {**modes, self.metric: self.mode},
        }

    def tidy(self, aggregate: bool = False) -> tuple[pd.DataFrame, list[str]]:
        """The report's data as the frame a user would build (tables.tidy_table): a row per
        configuration, or with `aggregate` per combination of swept values; a column per
        swept key (a `--where` key too) and metric; also the references' sources."""
        run = self.run
        keys = [*(key for key, _ in run.where), *run.swept]
        standard = [*BUILT_IN, "test_loss", "test_accuracy", "train_time_s"]
        metrics = present(run.trials, [self.metric, *self.custom, *standard], keep=self.metric)
        references = [mark_reference(ref, run.spec) for ref in run.references]
        return tidy_table(run.trials, keys, metrics, references, aggregate)

    def summary(self) -> dict[str, Any]:
        counts = self.run.trials["status"].value_counts()
        return {"sweep": self.run.name, "id": self.run.id, "path": self.run.path,
                "trials": len(self.run.trials), "finished": int(counts.get(Status.DONE, 0)),
                "failed": int(counts.get(Status.FAILED, 0)), "planned": self.run.planned,
                "in_progress": self.run.in_progress,
                **({"where": dict(self.run.where)} if self.run.where else {})}  # fmt: skip

    def status(self) -> str:
        s = self.summary()
        where = f", where {self.run.selection}" if self.run.where else ""
        head = f"{s['sweep']} run {s['id']}{where}: "
        statuses = self.run.trials["status"]
        diverged = int(statuses.eq(Status.DIVERGED).sum())
        stopped = int(statuses.eq(Status.STOPPED).sum())
        # The old line where none diverged or stopped.
        shown = (f" {stopped} stopped early," if stopped else "") + (
            f" {diverged} diverged," if diverged else ""
        )
        counts = f"{s['finished']} finished,{shown} {s['failed']} failed"
        planned, written = s["planned"], s["trials"]
        if self.run.in_progress:
            # No finished_at in its manifest: the run is still going, or its driver died.
            of = f" of {planned}" if planned else ""
            return (f"{head}{written}{of} trials so far ({counts}): the run has not ended"
                    " (still running, or stopped without ending)")  # fmt: skip
        if planned and written < planned:
            return (f"{head}{written} of {planned} trials ({counts}); the rest never ran:"
                    f" `sweeps resume {s['path']}`")  # fmt: skip
        return f"{head}{count(written, 'trial')}, {counts}"

    def tables(self) -> dict[str, tuple[str, pd.DataFrame, list[str]]]:
        """Each table the report has, by its name in JSON: (heading, frame, sources)."""
        tables = {"report": (self.title, self.table, self.sources)}
        if self.threshold is not None:
            heading = f"{self.threshold.param} threshold ({self.threshold.metric})"
            tables["threshold"] = (heading, threshold_frame(self.threshold), [])
        if isinstance(self.importance, pd.DataFrame):
            tables["importance"] = ("importance (fANOVA)", self.importance, [])
        if not self.best.empty:
            tables["best"] = ("best trial", self.best, [])
        return tables

    def notes(self) -> list[str]:
        """The lines after the tables: the rule on each reference's figures, the best trial
        or why there is none."""
        lines = []
        if self.threshold is not None:
            answers = _reference_thresholds(self.run, self.metric, self.mode)
            lines += [f"the same rule on ref{index}'s figures: {answer}"
                      for index, answer in answers]  # fmt: skip
        if isinstance(self.importance, str) and self.importance:
            lines.append(self.importance)
        if not self.best.empty:
            best, trials = self.best.iloc[0], self.run.trials
            config = "  ".join(f"{key}={value_text(best[key], trials[key].map(hashable))}"
                               for key in self.run.swept)  # fmt: skip
            # Enough decimals to tell the best from the runner-up.
            decimals = metric_decimals(measured(trials, self.metric)[self.metric], self.mode)
            score = f"{self.metric} {metric_text(best[self.metric], decimals)}"
            lines.append(f"best: {best['trial_id']}  {config}  {score}")
        else:
            lines.append(_no_best(self.run.trials, self.metric))
        return lines


def build_report(run: Run, metric: str | None = None) -> Report:
    """The report of `run` on `metric` and its custom metrics. A metric asked for that the
    trials lack is a RunDataError naming it and the run's metrics; the spec's, which no
    trial may have reported (every one failed first), leaves the best trial to say so."""
    trials = run.trials
    metric = run_metric(run, metric) if metric else str(run.spec.get("metric") or DEFAULT_METRIC)
    mode = metric_mode(run.spec, metric)
    custom = tuple(m for m in shown_metrics(run, metric) if m != metric)
    title, table, sources = report_table(trials, run.spec, run.swept, metric, custom)
    # Report A's rule compares batch sizes of one model: with another axis swept, its
    # levels would pool different models as if they were repeats.
    alone = config_keys(run.swept) == ["batch_size"]
    # Where trials diverged and none finished there is nothing to find a threshold in, and
    # the notes say why; a run whose trials all failed keeps find_threshold's error.
    nothing_measured = measured(trials, metric).empty
    diverged = trials["status"].eq(Status.DIVERGED).any()
    threshold = None
    if alone and metric in trials.columns and not (nothing_measured and diverged):
        threshold = find_threshold(trials, metric=metric, mode=mode)
    best = _best_trial(trials, run.swept, metric, mode)
    # One parameter swept, there is nothing to rank: no importance, and no line saying so.
    ranked = importance(trials, run.swept, metric, mode) if len(config_keys(run.swept)) > 1 else ""
    return Report(run, title, table, sources, threshold, best, metric, mode, custom, ranked)


def _best_trial(trials: pd.DataFrame, swept: list[str], metric: str, mode: str) -> pd.DataFrame:
    """The best trial as one row: trial_id, the swept parameters, the metric; among the
    finished trials only (a diverged one's metric measures nothing)."""
    columns = ["trial_id", *swept, metric]
    scored = measured(trials, metric)
    if scored.empty:
        return pd.DataFrame(columns=columns)
    best = scored[metric].idxmax() if mode == "max" else scored[metric].idxmin()
    return scored.loc[[best], columns].reset_index(drop=True)


def _no_best(trials: pd.DataFrame, metric: str) -> str:
    """Why no trial is the best: every configuration diverged, or how many diverged or
    failed where no configuration finished with the metric."""
    counts = trials["status"].value_counts()
    if counts.get(Status.DIVERGED, 0) == len(trials):
        return f"no best trial: all {len(trials)} configurations diverged"
    outcomes = [f"{int(counts[status])} {word}"
                for status, word in ((Status.DIVERGED, "diverged"), (Status.FAILED, "failed"))
                if counts.get(status, 0)]  # fmt: skip
    why = f": {', '.join(outcomes)}" if outcomes else ""
    return f"no best trial: no configuration finished with a finite {metric}{why}"


def figures(report: Report) -> list[tuple[str, bytes, bool]]:
    """Each figure of the run as (file name, PNG, whether it is a close-up), drawn once
    for both the plots/ folder and the page."""
    from analysis.figures import run_figures  # matplotlib: only when figures are wanted
    from analysis.importance_plot import importance_bars
    from analysis.plots import png

    drawn = [(plot.name, png(plot.figure), plot.detail)
             for plot in run_figures(report.run, report.threshold, report.metric)]  # fmt: skip
    if isinstance(report.importance, pd.DataFrame):
        bars = importance_bars(report.importance, report.metric, title=report.run.title)
        drawn.append(("importance.png", png(bars), False))
    return drawn


def html_page(report: Report, drawn: list[tuple[str, bytes, bool]]) -> str:
    """The report as one HTML page: its tables (the threshold with its lines), its notes,
    the figures less the close-ups the overview figures already show."""
    from analysis.html import Table, report_page

    lines = {}
    if report.threshold is not None:
        block = threshold_block(report.threshold).renderables
        lines["threshold"] = [part.plain for part in block if isinstance(part, Text)]
    tables = [Table(heading, frame, sources, lines.get(name, ()), **report.layout())
              for name, (heading, frame, sources) in report.tables().items()]  # fmt: skip
    shown = [(name, png) for name, png, detail in drawn if not detail]
    return report_page(report.run, status=report.status(), tables=tables, notes=report.notes(),
                       figures=shown, metric=report.metric)  # fmt: skip


def _reference_thresholds(run: Run, metric: str, mode: str) -> list[tuple[int, str]]:
    """The threshold rule on `metric` applied to each reference's own batch-size figures,
    by the number the report's table gives the reference (one it leaves out has none)."""
    answers = []
    for _, rows, number in numbered_references(run.references, config_keys(run.swept), metric):
        if number is not None and len(rows) > 1:
            threshold = find_threshold(pd.DataFrame(rows), metric=metric, mode=mode)
            answers.append((number, threshold.lines()[-1]))
    return answers
