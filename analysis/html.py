"""A run's report as one self-contained HTML page: its tables, its figures (PNG embedded
as data: URIs), every trial, the spec and the manifest.

Nothing is fetched (no script, stylesheet, font or image from elsewhere), so the file
opens offline, copied out of a bucket or sent as an attachment. Every text is escaped.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import yaml

from analysis.load import Run
from analysis.metrics import metric_mode, shown_metrics
from analysis.render import display_frame
from analysis.rundir import DEFAULT_METRIC

REPORT_HTML = "report.html"  # in the run directory, beside plots/
TRIAL_COLUMNS = ("status", "val_accuracy", "val_loss", "test_accuracy", "epochs_completed",
                 "train_time_s", "error")  # fmt: skip

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1b1b;
       max-width: 1240px; margin: 1.5rem auto; padding: 0 1rem; line-height: 1.4; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
h3 { font-size: 1rem; margin-bottom: .3rem; }
nav a { margin-right: 1rem; }
.status { color: #444; margin-top: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .85rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: .2rem .55rem; white-space: nowrap; }
th { background: #eef2f7; text-align: left; }
td.number { text-align: right; }
td.error { white-space: normal; max-width: 32rem; }
p.sources, p.lines { font-size: .8rem; color: #444; margin: .3rem 0; white-space: pre-wrap; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e3e3; }
figcaption { font-size: .8rem; color: #555; }
pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; font-size: .8rem; }
"""


@dataclasses.dataclass(frozen=True)
class Table:
    heading: str
    frame: pd.DataFrame
    sources: Sequence[str] = ()
    lines: Sequence[str] = ()  # read before the table: the threshold's own lines
    keys: Sequence[str] = ()  # its swept values' columns, as render.display_frame takes them
    metrics: Mapping[str, str] | None = None  # its metrics' columns -> their modes


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def table_html(table: Table) -> str:
    """The frame as the terminal shows it ("mean ± std", the digits that tell values
    apart), numbers right-aligned."""
    shown = display_frame(table.frame, table.keys, table.metrics)
    numeric = [pd.api.types.is_numeric_dtype(table.frame[c]) for c in shown.columns]
    head = "".join(f"<th>{_e(column)}</th>" for column in shown.columns)
    body = []
    for row in shown.itertuples(index=False):
        cells = []
        for value, is_number, column in zip(row, numeric, shown.columns, strict=True):
            kind = "number" if is_number else "error" if column == "error" else ""
            attribute = f' class="{kind}"' if kind else ""
            cells.append(f"<td{attribute}>{_e(value)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    lines = "\n".join(table.lines)
    sources = "\n".join(f"ref{i}: {source}" for i, source in enumerate(table.sources, 1))
    return "".join([
        f"<h3>{_e(table.heading)}</h3>" if table.heading else "",
        f'<p class="lines">{_e(lines)}</p>' if lines else "",
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>',
        f"<tbody>{''.join(body)}</tbody></table></div>",
        f'<p class="sources">{_e(sources)}</p>' if sources else "",
    ])  # fmt: skip


def figure_html(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure id="{_e(name)}"><img src="data:image/png;base64,{data}" alt="{_e(name)}">'
            f"<figcaption>{_e(name)}</figcaption></figure>")  # fmt: skip


def trials_frame(run: Run, metric: str | None = None) -> pd.DataFrame:
    """Every trial: its id, its swept values, how it ended, `metric` (the spec's by
    default), its custom metrics and its main figures; no column without a value."""
    metric = metric or str(run.spec.get("metric", DEFAULT_METRIC))
    wanted = ["trial_id", *run.swept, *dict.fromkeys([*shown_metrics(run, metric),
                                                      *TRIAL_COLUMNS])]  # fmt: skip
    trials = run.trials
    return trials[
        [
            c
            for c in wanted
            if c in trials.columns
            and (c in ("trial_id", "status", metric) or trials[c].notna().any())
        ]
    ]


def _trials_table(run: Run, metric: str | None) -> Table:
    frame = trials_frame(run, metric)
    # The metrics to their decimals; times keep one, counts none.
    measures = [c for c in frame.columns if c not in run.swept and not c.endswith("_s")
                and pd.api.types.is_float_dtype(frame[c])]  # fmt: skip
    return Table("", frame, keys=run.swept,
                 metrics={m: metric_mode(run.spec, m) for m in measures})  # fmt: skip


def report_page(
    run: Run,
    *,
    status: str,
    tables: Sequence[Table],
    notes: Sequence[str] = (),
    figures: Sequence[tuple[str, bytes]] = (),
    metric: str | None = None,
) -> str:
    """The page: the status line, the tables and notes, the figures, every trial (with
    `metric`, by default the spec's, and the custom metrics), the spec, the manifest."""
    title = run.title
    # The status line opens with the title the heading above it already shows.
    status = status.removeprefix(f"{title}: ")
    spec = yaml.safe_dump(run.spec, sort_keys=False, allow_unicode=True)
    manifest = json.dumps(run.manifest, indent=2, default=str, ensure_ascii=False)
    sections = [
        ("tables", "Tables", "".join(map(table_html, tables))
         + (f'<p class="lines">{_e(chr(10).join(notes))}</p>' if notes else "")),
        ("figures", "Figures", "".join(figure_html(n, png) for n, png in figures)
         or "<p>No figures: no trial has results to draw.</p>"),
        ("trials", "Trials", table_html(_trials_table(run, metric))),
        ("spec", "Spec", f"<pre>{_e(spec)}</pre>"),
        ("manifest", "Manifest", f"<pre>{_e(manifest)}</pre>"),
    ]  # fmt: skip
    nav = "".join(f'<a href="#{key}">{name}</a>' for key, name, _ in sections)
    body = "".join(f'<h2 id="{key}">{name}</h2>{content}' for key, name, content in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} - sweeps report</title><style>{STYLE}</style></head>"
        f'<body><h1>{_e(title)}</h1><p class="status">{_e(status)}</p><nav>{nav}</nav>'
        f"{body}</body></html>\n"
    )
