"""Figures and the HTML report of a real run: a 2 x 2 grid on real MNIST with two seeds,
made and reported by the console script, its page opened in a real browser (headless
Chromium, reading the file from disk with the network shut off)."""

from __future__ import annotations

import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from PIL import Image

from analysis import find_threshold, load_run
from analysis.figures import Plot, run_figures
from tests.helpers.plots import assert_drawn, error_bars, legend_labels

pytestmark = pytest.mark.slow

SWEEPS = [sys.executable, "-m", "sweeps"]
# Two epochs, so that a learning curve is a line; seeds fuse into one trial per batch size.
GRID = ["report-a-batch-size", "--epochs", "2", "--set", "batch_size=128,512",
        "--set", "activation=sigmoid,relu", "--repeats", "2"]  # fmt: skip
CONFIGURATIONS = [f"batch_size={b},activation={a}" for b in (128, 512) for a in ("sigmoid", "relu")]
OVERVIEW = ["val_accuracy-vs-batch_size.png", "val_accuracy-vs-activation.png",
            "parallel-coordinates.png", "learning-curves-by-batch_size.png",
            "learning-curves-by-activation.png", "confusion-grid.png"]  # fmt: skip
PAGE = [*OVERVIEW, "importance.png"]  # two parameters vary: they are ranked too
WINDOW = (1200, 1600)

# Run on load: what the browser made of the page, written into the DOM for --dump-dom.
PROBE = """<script>
addEventListener("load", () => {
  const heading = (node) => {
    for (let at = node.closest(".scroll"); at; at = at.previousElementSibling) {
      if (at.tagName === "H3" || at.tagName === "H2") return at.textContent;
    }
    return "";
  };
  const images = [...document.images].map((img) => ({
    name: img.alt, loaded: img.complete && img.naturalWidth > 0, width: img.naturalWidth,
    shown: img.getBoundingClientRect().width,
  }));
  const tables = [...document.querySelectorAll("table")].map((table) => ({
    heading: heading(table),
    columns: table.tHead ? table.tHead.rows[0].cells.length : 0,
    rows: [...table.querySelectorAll("tbody tr")]
      .filter((row) => row.getBoundingClientRect().height > 0).length,
  }));
  const fetched = performance.getEntriesByType("resource").map((entry) => entry.name)
    .filter((name) => !name.startsWith("data:"));
  const probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({images, tables, fetched});
  document.body.append(probe);
});
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "no chromium binary on PATH (.ci/run installs Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def browse(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on a file, offline: every host name fails to resolve and any
    request would go to a proxy nobody listens on."""
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--disable-extensions", "--hide-scrollbars",
        f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=http://127.0.0.1:9", f"--window-size={WINDOW[0]},{WINDOW[1]}",
        *args, page.as_uri(),
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed


def probe(report: Path, tmp_path: Path, corrupt: bool = False) -> dict[str, Any]:
    """The page as the browser rendered it: a copy of it with PROBE before </body> (and,
    with `corrupt`, its first image's data spoiled), loaded and dumped."""
    text = report.read_text()
    if corrupt:
        text = re.sub(r"(data:image/png;base64,)(.{200})", r"\1AAAA\2", text, count=1)
    page = tmp_path / "probe.html"
    page.write_text(text.replace("</body>", PROBE + "</body>", 1))
    dom = browse(page, tmp_path / "profile", "--dump-dom").stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.DOTALL)
    assert found, "the probe did not run: " + dom[-500:]
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def run_dir(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The grid, run and then reported with --html, both by the console script."""
    results = tmp_path_factory.mktemp("results")
    made = subprocess.run([*SWEEPS, "run", *GRID, "--results", str(results),
                           "--data-dir", str(mnist_dir)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert made.returncode == 0, made.stderr[-3000:]
    (run,) = (results / "report-a-batch-size").iterdir()
    reported = subprocess.run([*SWEEPS, "report", str(run), "--html"], capture_output=True,
                              text=True, timeout=300)  # fmt: skip
    assert reported.returncode == 0, reported.stderr[-3000:]
    assert f"html: {run / 'report.html'}" in reported.stdout
    return run


@pytest.fixture(scope="module")
def plots(run_dir: Path) -> dict[str, Plot]:
    """The run's figures as a notebook gets them, with report A's rule at a threshold any
    change passes, so that it has an answer to mark: the first smaller batch size."""
    run = load_run(run_dir)
    threshold = find_threshold(run.trials, threshold=1.0)
    assert threshold.answer is not None and threshold.answer.value == 128
    return {plot.name: plot for plot in run_figures(run, threshold)}


def test_report_writes_every_figure_named_by_configuration(run_dir: Path) -> None:
    written = {path.name for path in (run_dir / "plots").glob("*.png")}
    closeups = {f"confusion-{label}.png" for label in CONFIGURATIONS}
    assert written == set(PAGE) | closeups
    for name in written:
        assert_drawn(run_dir / "plots" / name)


def test_every_figure_is_titled_with_the_sweep_and_run(
    run_dir: Path, plots: dict[str, Plot]
) -> None:
    assert list(plots)[: len(OVERVIEW)] == OVERVIEW
    title = f"report-a-batch-size run {run_dir.name}\n"
    for name, plot in plots.items():
        assert isinstance(plot.figure, Figure), name
        assert plot.figure.get_suptitle().startswith(title), name


def test_metric_against_each_parameter_with_spread_references_and_threshold(
    run_dir: Path, plots: dict[str, Plot]
) -> None:
    figure = plots["val_accuracy-vs-batch_size.png"].figure
    series = error_bars(figure)
    assert set(series) == {"activation=sigmoid", "activation=relu"}
    trials = load_run(run_dir).trials
    for label, points in series.items():
        chosen = trials[trials["activation"] == label.removeprefix("activation=")]
        stats = chosen.groupby("batch_size")["val_accuracy"].agg(["mean", "std"])
        assert [x for x, _, _ in points] == [128, 512]
        assert [y for _, y, _ in points] == pytest.approx(stats["mean"].tolist())
        assert [h for _, _, h in points] == pytest.approx(stats["std"].tolist())
        assert all(h > 0 for _, _, h in points)  # two seeds: a spread to show
    assert "mean ± std over 2 repeats" in figure.get_suptitle()
    # The spec's references, marked as measured under other settings (20 epochs), and the
    # threshold's answer.
    labels = legend_labels(figure)
    # The report's table leaves them out (they give no activation): so say their labels.
    head = "not in the table (other settings): "
    assert [label.removeprefix(head)[:2] for label in labels if label.startswith(head)] == [
        "Re", "Ke"]  # fmt: skip
    (marker,) = [line for line in figure.axes[0].get_lines()
                 if line.get_label().startswith("threshold")]  # fmt: skip
    assert marker.get_xdata()[0] == 128
    by_activation = error_bars(plots["val_accuracy-vs-activation.png"].figure)
    assert set(by_activation) == {"batch_size=128", "batch_size=512"}
    assert all(len(points) == 2 for points in by_activation.values())


def test_learning_curves_overlay_every_trial_coloured_by_value(
    run_dir: Path, plots: dict[str, Plot]
) -> None:
    run = load_run(run_dir)
    assert len(run.trials) == 8  # 2 x 2 configurations x 2 seeds
    # A trial known by its curve: its validation accuracy at epochs 1 and 2.
    curves = run.epochs.sort_values("epoch").groupby("trial_id")["val_accuracy"].agg(tuple)
    assert curves.map(len).eq(2).all() and curves.is_unique
    for param in ("batch_size", "activation"):
        figure = plots[f"learning-curves-by-{param}.png"].figure
        panels = {axes.get_title(): axes for axes in figure.axes if axes.get_title()}
        lines = panels["validation accuracy"].get_lines()
        assert sorted(tuple(line.get_ydata()) for line in lines) == sorted(curves)
        value = dict(zip(run.trials["trial_id"], run.trials[param], strict=True))
        trial_of = {curve: trial for trial, curve in curves.items()}
        by_value: dict[Any, set[tuple[float, ...]]] = {}
        for line in lines:
            trial = trial_of[tuple(line.get_ydata())]
            by_value.setdefault(value[trial], set()).add(to_rgba(line.get_color()))
        assert all(len(colours) == 1 for colours in by_value.values())  # a value, a colour
        assert len(set.union(*by_value.values())) == 2
        assert f"8 trials, coloured by {param}" in figure.get_suptitle()


def test_parallel_coordinates_a_line_per_configuration(plots: dict[str, Plot]) -> None:
    figure = plots["parallel-coordinates.png"].figure
    axes = figure.axes[0]
    lines = [line for line in axes.get_lines() if line.get_marker() == "o"]
    assert len(lines) == 4
    ticks = [label.get_text() for label in axes.get_xticklabels()]
    assert ticks == ["batch_size", "activation", "val_accuracy"]
    assert "4 configurations, mean over 2 repeats" in figure.get_suptitle()


def test_confusion_matrices_row_normalised_on_one_scale(plots: dict[str, Plot]) -> None:
    grid = plots["confusion-grid.png"].figure
    images = [axes.get_images()[0] for axes in grid.axes if axes.get_images()]
    assert len(images) == 4 and {image.get_clim() for image in images} == {(0.0, 1.0)}
    for image in images:
        assert np.asarray(image.get_array()).sum(axis=1) == pytest.approx(np.ones(10))
    titles = [axes.get_title() for axes in grid.axes if axes.get_images()]
    assert [title.split("\n")[0] for title in titles] == [
        label.replace(",", ", ") for label in CONFIGURATIONS]  # fmt: skip
    assert all("(20,000 examples, 2 seeds pooled)" in title for title in titles)
    closeups = [plots[f"confusion-{label}.png"] for label in CONFIGURATIONS]
    assert all(plot.detail for plot in closeups)


def test_the_page_renders_its_tables_and_images_offline(run_dir: Path, tmp_path: Path) -> None:
    rendered = probe(run_dir / "report.html", tmp_path)
    assert rendered["fetched"] == []
    # Every overview figure, decoded; the close-ups are in plots/ only.
    assert [image["name"] for image in rendered["images"]] == PAGE
    for image in rendered["images"]:
        assert image["loaded"] and image["width"] > 300 and image["shown"] > 300, image
    # Every table of the page, every row of it laid out (a threshold table only where the
    # report has one); each table's header row is one <tr> more than it has rows.
    source = (run_dir / "report.html").read_text()
    rows = {table["heading"]: table["rows"] for table in rendered["tables"]}
    assert len(rendered["tables"]) == source.count("<table>") == len(rows)
    assert sum(rows.values()) == source.count("<tr>") - source.count("<table>")
    assert {"configurations": 4, "best trial": 1, "Trials": 8}.items() <= rows.items()
    columns = {table["heading"]: table["columns"] for table in rendered["tables"]}
    assert columns.pop("importance (fANOVA)") == 2  # parameter, importance
    assert all(count >= 4 for count in columns.values()), columns


def test_a_broken_image_is_caught(run_dir: Path, tmp_path: Path) -> None:
    """The probe can fail: the same page with one image's data spoiled."""
    images = probe(run_dir / "report.html", tmp_path, corrupt=True)["images"]
    assert [image["loaded"] for image in images] == [False] + [True] * (len(PAGE) - 1)


def test_a_screenshot_shows_the_page(run_dir: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    browse(run_dir / "report.html", tmp_path / "profile", f"--screenshot={shot}")
    image = Image.open(io.BytesIO(shot.read_bytes()))
    assert image.format == "PNG" and image.size == WINDOW
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    distinct = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert distinct > 500, distinct  # text, tables, figures: not a blank page
    # Coloured pixels (text and table borders are grey): the first figure, in view.
    colourful = (pixels.max(axis=-1) - pixels.min(axis=-1)) > 80
    assert colourful.mean() > 0.002, colourful.mean()
