"""sweeps.cli.report: `sweeps report --format ...` run as a user runs it (stdout is data, pipes
cut nothing), `threshold` and `compare` on bad columns."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.helpers.runs import write_pandas_run, write_run
from tests.sweeps.conftest import run_cli

BATCH_SIZES = [1024, 512, 256, 128, 64, 32, 16, 8]
SEEDS = [0, 1, 2]
STATUS = "run-3: 24 trials, 24 finished, 0 failed"


def accuracy(batch_size: int) -> float:
    """Four decimals that a cut cell would lose: 0.9123 at 1024, rising as batches shrink."""
    return round(0.9123 + 0.0111 * BATCH_SIZES.index(batch_size), 4)


def write_wide_run(root: Path) -> Path:
    """A run with Ray-like trial ids and enough batch sizes and seeds that the report table
    is far wider than 80 columns."""
    trials = pd.DataFrame([
        {"run_id": "run-3", "trial_id": f"28653_{index:05d}", "status": "TERMINATED",
         "batch_size": batch_size, "seed": seed,
         "val_accuracy": accuracy(batch_size) + (seed - 1) / 1000,
         "val_loss": 0.3, "train_time_s": 12.5}
        for index, (batch_size, seed) in enumerate((b, s) for b in BATCH_SIZES for s in SEEDS)
    ])  # fmt: skip
    return write_run(root, trials, {"batch_size": BATCH_SIZES}, epochs=1,
                     name="report-a-batch-size", repeats=len(SEEDS))  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wide_run(tmp_path_factory.mktemp("results"))


def sweeps(*args: str) -> subprocess.CompletedProcess[str]:
    """`sweeps ARGS` in a subprocess, stdout a pipe at 80 columns, as `... | cat` has it."""
    env = {**os.environ, "COLUMNS": "80"}
    for forced in ("FORCE_COLOR", "TTY_COMPATIBLE"):  # a pipe, whatever the runner sets
        env.pop(forced, None)
    done = subprocess.run([sys.executable, "-m", "sweeps", *args], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def report(run_dir: Path, fmt: str) -> subprocess.CompletedProcess[str]:
    """The data formats as a program runs them, without --no-plots: they draw no figure."""
    if fmt == "table":
        return sweeps("report", str(run_dir), "--format", fmt, "--no-plots")
    done = sweeps("report", str(run_dir), "--format", fmt)
    assert not (run_dir / "plots").exists() and "plots" not in done.stderr
    return done


def test_csv_is_the_report_table_with_its_header_first(run_dir: Path) -> None:
    done = report(run_dir, "csv")
    table = pd.read_csv(io.StringIO(done.stdout))
    # Tidy: a row per configuration, a column per swept key and metric.
    assert list(table.columns[:5]) == ["trial_id", "batch_size", "seed", "status", "val_accuracy"]
    assert len(table) == 24 and table.iloc[0]["batch_size"] == 1024
    assert table.iloc[0]["val_accuracy"] == pytest.approx(0.9123 - 0.001)
    assert STATUS in done.stderr and "best: 28653_" in done.stderr
    assert "threshold and best tables not in csv: use --format json or markdown" in done.stderr


def test_json_holds_every_table(run_dir: Path) -> None:
    done = report(run_dir, "json")
    document = json.loads(done.stdout)
    assert document["run"] == {"sweep": "report-a-batch-size", "id": "run-3",
                               "path": str(run_dir), "trials": 24, "finished": 24,
                               "failed": 0, "planned": 24, "in_progress": False}  # fmt: skip
    assert document["title"] == "val_accuracy by batch size" and document["sources"] == []
    tables = document["tables"]
    assert set(tables) == {"report", "threshold", "best"}
    assert tables["report"][0]["batch_size"] == "val_accuracy"
    assert tables["report"][0]["1024"] == pytest.approx(0.9123)
    assert [row["batch_size"] for row in tables["threshold"]] == BATCH_SIZES
    assert tables["threshold"][0]["change"] is None  # NaN: nothing larger to change from
    assert tables["best"] == [{"trial_id": "28653_00023", "batch_size": 8, "seed": 2,
                               "val_accuracy": pytest.approx(accuracy(8) + 0.001)}]  # fmt: skip
    assert STATUS in done.stderr and "Change in accuracy from 512 to 1024" in done.stderr


def test_markdown_is_every_table_and_no_status(run_dir: Path) -> None:
    done = report(run_dir, "markdown")
    headings = [line for line in done.stdout.splitlines() if line.startswith("### ")]
    assert headings == ["### val_accuracy by batch size",
                        "### batch_size threshold (val_accuracy)", "### best trial"]  # fmt: skip
    assert done.stdout.startswith("### val_accuracy by batch size\n")
    assert "| 28653_00023 | 8 | 2 |" in done.stdout
    for prose in (STATUS, "best: ", "Change in accuracy", "Direction"):
        assert prose not in done.stdout and (prose == "Direction" or prose in done.stderr)


def test_table_through_a_pipe_at_80_columns_cuts_nothing(run_dir: Path) -> None:
    out = report(run_dir, "table").stdout
    assert "…" not in out
    means = " │ ".join(f"{accuracy(batch_size):.4f}" for batch_size in BATCH_SIZES)
    assert f"│ val_accuracy     │ {means} │\n" in out  # every column, on one line
    assert "│ 1024       │    3 │       0.9123 │ 0.0010 │ 0.0025 │" in out  # the threshold table
    assert f"{STATUS}\n" in out and "best: 28653_00023  batch_size=8  seed=2" in out
    widest = max(len(line) for line in out.splitlines())
    assert widest > 80  # a table's natural width, not the console's


def test_compare_json_and_csv(tmp_path: Path) -> None:
    first = write_run(tmp_path / "a")
    done = sweeps("compare", str(first), str(first), "--format", "json")
    document = json.loads(done.stdout)
    assert document["runs"]["a"] == {"sweep": "sweep", "id": "run-2", "path": str(first)}
    assert document["metric"] == "val_accuracy" and set(document["tables"]) == {"compare"}
    assert document["tables"]["compare"][1] == {
        "batch_size": 64, "runs_a": 1, "val_accuracy_a": 0.9, "val_accuracy_std_a": None,
        "runs_b": 1, "val_accuracy_b": 0.9, "val_accuracy_std_b": None, "diff": 0.0,
    }  # fmt: skip
    done = sweeps("compare", str(first), str(first), "--format", "csv")
    table = pd.read_csv(io.StringIO(done.stdout))
    assert list(table["batch_size"]) == [32, 64]


def test_status_counts_the_trials_a_run_lacks(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path)  # 2 trials written
    manifest = {"run_id": "run-2", "started_at": "2026-11-22T00:00:00+00:00", "trials": 5}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    done = report(run_dir, "json")
    assert json.loads(done.stdout)["run"]["in_progress"] is True
    assert ("sweep run run-2: 2 of 5 trials so far (2 finished, 0 failed): the run has not"
            " ended (still running, or stopped without ending)") in done.stderr  # fmt: skip
    manifest["finished_at"] = "2026-11-22T00:01:00+00:00"  # ended, interrupted
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    done = report(run_dir, "table")
    assert (f"sweep run run-2: 2 of 5 trials (2 finished, 0 failed); the rest never ran:"
            f" `sweeps resume {run_dir}`") in done.stdout  # fmt: skip


def test_analysis_commands_name_bad_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = str(write_pandas_run(tmp_path))
    cases = [
        (["threshold", run_dir, "--param", "learning_rate"], "no column 'learning_rate'"),
        (["threshold", run_dir, "--metric", "status"], "column 'status' is not numeric"),
        (["compare", run_dir, run_dir, "--metric", "test_loss"], "no column 'test_loss'"),
    ]
    for args, message in cases:
        assert run_cli(*args) == 2, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert run_cli("threshold", run_dir) == 0
    out = capsys.readouterr().out
    assert "Change in accuracy from 32 to 64: 0.0100" in out
    assert "No threshold within the data: no change <= 0.001 going from 64 down to 32" in out


def test_the_threshold_never_pools_another_swept_axis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two activations at each batch size are two models, not two repeats of one.
    run_dir = tmp_path / "grid" / "run-4"
    (run_dir / "trials").mkdir(parents=True)
    grid = {"batch_size": [64, 32], "activation": ["relu", "sigmoid"]}
    for index, (batch_size, activation) in enumerate(
        (b, a) for b in grid["batch_size"] for a in grid["activation"]
    ):  # fmt: skip
        trial = {"run_id": "run-4", "trial_id": f"t_{index}", "status": "TERMINATED",
                 "batch_size": batch_size, "activation": activation, "seed": 0,
                 "val_accuracy": 0.9 + index / 100}  # fmt: skip
        pq.write_table(pa.Table.from_pylist([trial]), run_dir / "trials" / f"t_{index}.parquet")
    (run_dir / "spec.yaml").write_text(yaml.safe_dump({"name": "grid", "grid": grid}))
    (run_dir / "manifest.json").write_text(json.dumps({"run_id": "run-4"}))

    assert run_cli("threshold", str(run_dir)) == 2
    err = capsys.readouterr().err
    assert "the run also sweeps activation" in err and len(err.strip().splitlines()) == 1, err
    assert run_cli("report", str(run_dir), "--format", "json", "--no-plots") == 0
    assert "threshold" not in json.loads(capsys.readouterr().out)["tables"]


def test_a_large_run_s_table_shows_its_best_and_the_data_formats_every_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trials = pd.DataFrame([
        {"run_id": "big", "trial_id": f"t{index:02d}", "status": "TERMINATED",
         "lr": 0.001 * (index + 1), "val_accuracy": 0.5 + index / 200, "val_loss": 0.3}
        for index in range(60)
    ])  # fmt: skip
    run_dir = write_run(tmp_path, trials, grid={"lr": list(trials["lr"])})
    assert run_cli("report", str(run_dir), "--no-plots") == 0
    out = capsys.readouterr()
    shown = [line for line in out.out.splitlines() if line.startswith("│ 0.")]
    assert len(shown) == 50
    assert "│ 0.001 " not in out.out and "│ 0.011 " in out.out  # the 10 worst left out
    assert ("the 50 best of 60 configurations by val_accuracy; --format csv, markdown or json"
            " has every one") in out.out + out.err  # fmt: skip
    assert run_cli("report", str(run_dir), "--format", "csv") == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 61
