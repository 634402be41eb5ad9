"""The report page on a run made here: self-contained, escaped, everything in it. A real
browser opens a real run's page in tests/sweeps/cli/test_report_html.py."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd

from analysis import load_run
from analysis.html import Table, report_page, table_html
from analysis.plots import metric_vs_param, png
from tests.helpers.runs import trial_row, write_run


class Page(HTMLParser):
    """What a page holds: its tags with their attributes, and its text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def test_the_page_holds_everything_and_fetches_nothing(tmp_path: Path) -> None:
    trials = pd.DataFrame([trial_row(f"t{i}", 0.9 + i / 100, batch_size=b, seed=0)
                           for i, b in enumerate([16, 64])])  # fmt: skip
    run = load_run(write_run(tmp_path, trials, {"batch_size": [16, 64]}))
    figure = png(metric_vs_param(run.trials, "batch_size", "val_accuracy"))
    report = pd.DataFrame({"batch_size": [16, 64], "val_accuracy": [0.9, 0.91],
                           "val_accuracy_std": [0.001, None]})  # fmt: skip
    tables = [Table("val_accuracy by batch size", report, ["Report <A> & co"], ["line one"])]
    page = report_page(run, status="sweep run r1: 2 trials", tables=tables,
                       notes=["best: t1"], figures=[("a.png", figure)])  # fmt: skip
    parsed = Page(page)
    (image,) = parsed.all("img")
    source = image["src"] or ""
    assert source.startswith("data:image/png;base64,")
    assert base64.b64decode(source.split(",", 1)[1]) == figure
    # Nothing from elsewhere: no http(s) address in any src or href, no script, no link.
    addresses = [a[k] or "" for _, a in parsed.tags for k in ("src", "href") if k in a]
    assert not [a for a in addresses if not a.startswith(("data:", "#"))]
    assert not parsed.all("script") and not parsed.all("link")
    text = "".join(parsed.text)
    assert "0.9000 ± 0.0010" in text and "0.9100" in text  # as the terminal shows them
    assert "ref1: Report <A> & co" in text and "Report &lt;A&gt; &amp; co" in page
    assert [t for t in parsed.text if "2 trials" in t] == ["2 trials"]  # not the title again
    for expected in ("sweep run r1", "line one", "best: t1", "name: sweep",
                     '"run_id": "r1"', "t0", "t1", "TERMINATED"):  # fmt: skip
        assert expected in text, expected
    assert [a["href"] for a in parsed.all("a")] == ["#tables", "#figures", "#trials", "#spec",
                                                    "#manifest"]  # fmt: skip
    assert {a.get("id") for a in parsed.all("h2")} == {"tables", "figures", "trials", "spec",
                                                       "manifest"}  # fmt: skip


def test_table_cells_escaped_and_numbers_right_aligned() -> None:
    frame = pd.DataFrame({"activation": ["<b>relu</b>"], "val_accuracy": [0.97],
                          "error": ["ValueError: x < 0"]})  # fmt: skip
    html = table_html(Table("t", frame))
    assert "&lt;b&gt;relu&lt;/b&gt;" in html and "<b>" not in html
    assert re.search(r'<td class="number">0\.9700</td>', html)
    assert '<td class="error">ValueError: x &lt; 0</td>' in html
