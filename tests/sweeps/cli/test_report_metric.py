"""`sweeps report/threshold/compare --metric NAME --where KEY=VALUE`, and the tidy CSV, run
as a user runs them (the console script, stdout a pipe) on a run of a model with metrics
of its own: lr x width, repeats 2, `metric: val_macro_f1` in the spec, `val_top2` too."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import analysis
from tests.helpers.metric_runs import write_custom_run

STATUS = "cnn run cnn-1: 12 trials, 12 finished, 0 failed"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_custom_run(tmp_path_factory.mktemp("results"))


def sweeps(*args: str) -> subprocess.CompletedProcess[str]:
    """`sweeps ARGS` in a subprocess, stdout a pipe at 100 columns."""
    env = {**os.environ, "COLUMNS": "100"}
    for forced in ("FORCE_COLOR", "TTY_COMPATIBLE"):  # a pipe, whatever the runner sets
        env.pop(forced, None)
    return subprocess.run([sys.executable, "-m", "sweeps", *args], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip


def test_the_report_is_of_the_specs_metric_and_the_custom_ones(run_dir: Path) -> None:
    done = sweeps("report", str(run_dir), "--no-plots")
    assert done.returncode == 0, done.stderr
    lines = [line.rstrip() for line in done.stdout.splitlines()]
    assert lines[0] == STATUS and lines[1] == "configurations"
    header = [cell.strip() for cell in lines[3].split("┃")[1:-1]]
    assert header == ["lr", "width", "runs", "failed", "val_macro_f1", "val_top2",
                      "val_accuracy", "val_loss", "train_time_s"]  # fmt: skip
    assert lines[6] == (
        "│ 0.001 │    64 │    2 │      0 │ 0.8710 ± 0.0014 │ 0.9210 ± 0.0014 │ 0.8610 ± 0.0014 │"
        " 0.2290 ± 0.0014 │    2.5 ± 0.0 │"
    )
    assert lines[-1] == "best: c_00009  lr=0.01  width=64  seed=1  val_macro_f1 0.9220"
    assert "test_accuracy" not in done.stdout  # a column with no value is no column
    # lr moves val_macro_f1 by 0.05 a step, width by 0.02, the seed (no parameter) by 0.002.
    at = lines.index("importance (fANOVA)")
    assert lines[at + 2] == "┃ parameter ┃ importance ┃"
    rows = [line.split("│")[1:-1] for line in lines[at + 4 : at + 6]]
    assert [name.strip() for name, _ in rows] == ["lr", "width"] and lines[at + 6].startswith("└")
    shares = [float(share) for _, share in rows]
    assert shares[0] > shares[1] and sum(shares) == pytest.approx(1, abs=1e-4)


def test_metric_and_where_choose_what_the_report_is_of(run_dir: Path) -> None:
    done = sweeps("report", str(run_dir), "--no-plots", "--metric", "val_top2",
                  "--where", "lr=1e-2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line.rstrip() for line in done.stdout.splitlines()]
    assert lines[0] == "cnn run cnn-1, where lr=0.01: 4 trials, 4 finished, 0 failed"
    header = [cell.strip() for cell in lines[3].split("┃")[1:-1]]
    assert header[:5] == ["width", "runs", "failed", "val_top2", "val_macro_f1"]
    assert [line.split("│")[1].strip() for line in lines[5:7]] == ["32", "64"]
    assert lines[-1] == "best: c_00009  width=64  seed=1  val_top2 0.9720"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metric", "val_f1"], "error: no column 'val_f1' in the run; its metrics: train_loss,"
                                 " train_accuracy, val_loss, val_accuracy, val_macro_f1, val_top2"),
        (["--where", "depth=3"],
         "error: --where depth=3: the run sweeps no 'depth' (it sweeps lr, width, seed)"),
        (["--where", "lr=0.5"], "error: --where lr=0.5: the run has no lr 0.5"
                                " (lr: 0.001, 0.01, 0.1)"),
        (["--where", "lr"], "error: --where expects KEY=VALUE, got 'lr'"),
        (["--aggregate"],
         "error: --aggregate shapes the csv rows: use it with --format csv, not table"),
    ],
)  # fmt: skip
def test_a_metric_key_or_value_not_in_the_run_is_one_line(
    run_dir: Path, args: list[str], message: str
) -> None:
    done = sweeps("report", str(run_dir), "--no-plots", *args)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", message + "\n")


def test_without_optuna_the_report_says_how_to_get_the_importance(run_dir: Path) -> None:
    blocked = "import sys; sys.modules['optuna'] = None; from sweeps.cli.app import main; main()"
    done = subprocess.run([sys.executable, "-c", blocked, "report", str(run_dir), "--no-plots"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-2:] == [
        "importance: optuna is not installed: pip install 'sweeps[search]'",
        "best: c_00009  lr=0.01  width=64  seed=1  val_macro_f1 0.9220",
    ]


def test_csv_is_tidy_a_row_per_configuration(run_dir: Path) -> None:
    done = sweeps("report", str(run_dir), "--no-plots", "--format", "csv")
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(io.StringIO(done.stdout))
    trials = analysis.load_run(run_dir).trials
    built = trials[["trial_id", "lr", "width", "seed", "status", "val_macro_f1", "val_top2"]]
    pd.testing.assert_frame_equal(table[built.columns], built, check_dtype=False)
    assert "test_accuracy" not in table.columns and len(table) == 12
    assert STATUS in done.stderr
    assert "importance and best tables not in csv: use --format json or markdown" in done.stderr


def test_csv_aggregated_a_row_per_combination_of_swept_values(run_dir: Path) -> None:
    done = sweeps("report", str(run_dir), "--no-plots", "--format", "csv", "--aggregate",
                  "--where", "width=64")  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(io.StringIO(done.stdout))
    assert list(table.columns[:6]) == ["width", "lr", "runs", "failed", "val_macro_f1",
                                       "val_macro_f1_std"]  # fmt: skip
    assert table["lr"].tolist() == [0.001, 0.01, 0.1] and set(table["width"]) == {64}
    assert table["val_macro_f1"].tolist() == pytest.approx([0.871, 0.921, 0.871])
    assert table["runs"].tolist() == [2, 2, 2]


def test_the_threshold_of_one_axis_where_another_is_fixed(run_dir: Path) -> None:
    refused = sweeps("threshold", str(run_dir), "--param", "width")
    assert refused.returncode == 2 and refused.stderr == (
        "error: the run also sweeps lr: the threshold compares width levels of one"
        " configuration, and would pool different ones as repeats; --where lr=VALUE keeps one"
        " (lr: 0.001, 0.01, 0.1)\n"
    )
    done = sweeps("threshold", str(run_dir), "--param", "width", "--where", "lr=0.01")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [
        "Direction: higher val_macro_f1 is better (mode max)",
        "Change in macro f1 from 32 to 64: -0.0200",
    ]
    assert "│ 64    │    2 │       0.9210 │ 0.0014 │" in done.stdout


def test_compare_is_of_the_specs_metric_by_default(run_dir: Path) -> None:
    done = sweeps("compare", str(run_dir), str(run_dir), "--format", "json", "--where", "width=64")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["metric"] == "val_macro_f1"
    rows = document["tables"]["compare"]
    assert [row["lr"] for row in rows] == [0.001, 0.01, 0.1]
    assert rows[1]["val_macro_f1_a"] == pytest.approx(0.921) and rows[1]["diff"] == 0
    top2 = sweeps("compare", str(run_dir), str(run_dir), "--metric", "val_top2")
    assert "val_top2: a = cnn-1, b = cnn-1" in top2.stdout


def test_the_page_and_figures_cover_every_metric(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    run_dir = write_custom_run(tmp_path_factory.mktemp("page"))
    done = sweeps("report", str(run_dir), "--html", "--format", "json")
    assert done.returncode == 0, done.stderr
    # A data format writes no plots/; --html's page has every figure all the same.
    assert not (run_dir / "plots").exists()
    page = (run_dir / "report.html").read_text()
    assert set(re.findall(r'id="([^"]+\.png)"', page)) == {
        "val_macro_f1-vs-lr.png", "val_macro_f1-vs-width.png", "parallel-coordinates.png",
        "val_top2-vs-lr.png", "val_top2-vs-width.png", "learning-curves-by-lr.png",
        "learning-curves-by-width.png", "importance.png",
    }  # fmt: skip
    for shown in ('id="val_top2-vs-width.png"', "<th>val_macro_f1</th>", "<th>val_top2</th>",
                  'id="importance.png"', "<h3>importance (fANOVA)</h3>"):  # fmt: skip
        assert shown in page, shown
    ranked = json.loads(done.stdout)["tables"]["importance"]
    assert [row["parameter"] for row in ranked] == ["lr", "width"]
