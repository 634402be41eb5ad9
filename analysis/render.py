"""Frames and results -> rich tables, Markdown, CSV or JSON; shared by the CLI and notebooks."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from analysis.numbers import metric_decimals, metric_text, value_texts
from analysis.threshold import Level, Threshold

FORMATS = ("table", "markdown", "csv", "json")
UNBOUNDED = 1_000_000  # a width no table reaches: measures its natural width


def missing(value: Any) -> bool:
    """No value: None, pandas' NA, NaN."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def cell(value: Any, column: str = "") -> str:
    """A value as a table shows it: 4 decimals, seconds with 1, counts with separators."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if missing(value):
        return "-"
    if isinstance(value, bool):
        return str(value)
    if column == "params" and isinstance(value, int | float):
        return f"{int(value):,}"
    if isinstance(value, float):
        if column.endswith("_s") or column.endswith("_s_std"):
            return f"{value:.1f}"
        if column.startswith("diff"):
            return f"{value:+.4f}"
        return f"{value:.4f}"
    if isinstance(value, tuple):
        return str(list(value))
    return str(value)


def display_frame(
    frame: pd.DataFrame, keys: Sequence[str] = (), metrics: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Strings for display: `<m>` and `<m>_std` become "mean ± std" where repeats exist.
    The columns in `keys`, swept values, print with the digits that tell them apart; those
    in `metrics` (column -> its mode, "max" or "min") with the decimals their best and
    runner-up need, their std alike (analysis.numbers); any other as `cell` has it."""
    metrics = metrics or {}
    shown = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        if column.endswith("_std") and column.removesuffix("_std") in frame.columns:
            continue
        std = f"{column}_std"
        if column in keys:
            text = _key_texts(frame[column])
        elif column in metrics:
            decimals = metric_decimals(frame[column], metrics[column])
            text = frame[column].map(lambda v, d=decimals: _metric_cell(v, d))
        else:
            text = frame[column].map(lambda v, c=column: cell(v, c))
        if std in frame.columns and frame[std].notna().any():
            if column in metrics:
                spread = frame[std].map(lambda v, d=decimals: _metric_cell(v, d))
            else:
                spread = frame[std].map(lambda v, c=std: cell(v, c))
            text = text.where(spread == "-", text + " ± " + spread)
        shown[column] = text
    return shown


def _key_texts(column: pd.Series) -> pd.Series:
    values = [v.tolist() if hasattr(v, "tolist") else v for v in column]
    texts = ["-" if missing(v) else text for v, text in zip(values, value_texts(values),
                                                             strict=True)]  # fmt: skip
    return pd.Series(texts, index=column.index, dtype=object)


def _metric_cell(value: Any, decimals: int) -> str:
    if hasattr(value, "tolist"):
        value = value.tolist()
    return "-" if missing(value) else metric_text(value, decimals)


def rich_table(
    frame: pd.DataFrame,
    title: str = "",
    sources: list[str] | None = None,
    *,
    keys: Sequence[str] = (),
    metrics: Mapping[str, str] | None = None,
) -> Table:
    """The frame as a rich table; `keys` and `metrics` as display_frame takes them."""
    shown = display_frame(frame, keys, metrics)
    # Text, not markup: a source's "[other settings: ...]" or a cell's "[64]" is shown as it is.
    caption = "  ".join(f"ref{i}: {s}" for i, s in enumerate(sources or [], 1))
    table = Table(title=Text(title) if title else None, title_justify="left",
                  caption=Text(caption) if caption else None, caption_justify="left")  # fmt: skip
    for position, column in enumerate(shown.columns):
        numeric = position > 0 and pd.api.types.is_numeric_dtype(frame[column])
        # Folded, a cell too wide for a narrow terminal keeps every digit ("…" would drop some).
        table.add_column(Text(str(column)), justify="right" if numeric else "left",
                         overflow="fold")  # fmt: skip
    for row in shown.itertuples(index=False):
        table.add_row(*(Text(value) for value in row))
    return table


class Whole:
    """A table printed without cutting a cell. Off a terminal (a pipe, a file) it keeps its
    natural width past the console's: a program or a reader there needs each number and id on
    one line, and nothing wraps the lines anyway. On a terminal it fits, its cells folding.
    Print it with `crop=False`, or the console cuts the longer lines at its width."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not options.is_terminal:
            natural = Measurement.get(console, options.update_width(UNBOUNDED), self.table)
            options = options.update_width(max(options.max_width, natural.maximum))
        yield from console.render(self.table, options)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)


def markdown(
    frame: pd.DataFrame,
    sources: list[str] | None = None,
    *,
    keys: Sequence[str] = (),
    metrics: Mapping[str, str] | None = None,
) -> str:
    shown = display_frame(frame, keys, metrics)
    lines = ["| " + " | ".join(map(str, shown.columns)) + " |",
             "|" + "|".join("---" for _ in shown.columns) + "|"]  # fmt: skip
    lines += ["| " + " | ".join(row) + " |" for row in shown.itertuples(index=False)]
    lines += [f"\nref{i}: {source}" for i, source in enumerate(sources or [], 1)]
    return "\n".join(lines) + "\n"


def csv(frame: pd.DataFrame) -> str:
    return frame.map(lambda v: list(v) if isinstance(v, tuple) else v).to_csv(index=False)


def plain(value: Any) -> Any:
    """A value as JSON holds it: numpy's as Python's, tuples and arrays as lists, NaN as null."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    if value is None or value is pd.NA or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a frame as JSON objects, column -> plain value."""
    return [
        {str(column): plain(value) for column, value in zip(frame.columns, row, strict=True)}
        for row in frame.itertuples(index=False)
    ]


def json_text(document: dict[str, Any]) -> str:
    # allow_nan=False: a NaN that slipped past plain() fails here, not in the reader's parser.
    return json.dumps(document, indent=2, allow_nan=False, default=str)


def threshold_frame(result: Threshold) -> pd.DataFrame:
    """Per level: runs, mean, std and 95% interval; the change to it; which answer it is."""
    changes = {c.smaller: c for c in result.changes}
    rows = []
    for level in result.levels:
        change = changes.get(level.value)
        rows.append({
            result.param: level.value,
            "runs": level.count,
            result.metric: level.mean,
            "std": level.std,
            "ci95": level.half_width,
            "change": change.change if change else math.nan,
            "noise": change.noise if change else math.nan,
            "answer": _marks(result, level),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _marks(result: Threshold, level: Level) -> str:
    marks = []
    if result.answer is not None and result.answer.value == level.value:
        marks.append("report's rule")
    if result.noise_aware is not None and result.noise_aware.value == level.value:
        marks.append("noise-aware")
    return ", ".join(marks)


def threshold_block(result: Threshold) -> Group:
    """The report's printed lines, then both answers side by side with the levels."""
    better = "higher" if result.mode == "max" else "lower"
    parts: list[Any] = [
        Text(f"Direction: {better} {result.metric} is better (mode {result.mode})", style="dim"),
        *(Text(line) for line in result.lines()),
    ]
    if result.has_repeats:
        noise = result.noise_aware
        verdict = (
            "no threshold within the noise either" if noise is None
            else f"{result.param} {noise.value} with {result.metric} {noise.mean:.4f}"
        )  # fmt: skip
        parts.append(Text(f"Noise-aware answer (a change inside the 95% seed-to-seed noise "
                          f"counts as insignificant): {verdict}"))  # fmt: skip
        if noise is not None and result.answer is not None and noise.value != result.answer.value:
            parts.append(Text("The report's single-run rule and the noise disagree: the "
                              "difference between them is within seed-to-seed noise.",
                              style="yellow"))  # fmt: skip
    unmeasured = result.dropped - result.diverged
    if unmeasured:
        parts.append(Text(f"{unmeasured} trial(s) without {result.metric} left out",
                          style="dim"))  # fmt: skip
    if result.diverged:
        parts.append(Text(f"{result.diverged} diverged trial(s) left out: their"
                          f" {result.metric} measures nothing", style="dim"))  # fmt: skip
    levels = rich_table(threshold_frame(result), keys=[result.param],
                        metrics={result.metric: result.mode})  # fmt: skip
    parts.append(Whole(levels))
    return Group(*parts)
