"""`report`, `threshold`, `compare` and the analysis frames on real sweeps (digits, one or
two epochs): answers that cannot mislead."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import analysis
from analysis import RunDataError
from tests.helpers.runs import sleepy_spec
from tests.sweeps.conftest import plugin_env, run_cli

pytestmark = pytest.mark.slow

RUNS = {
    "losses": ["quickstart", "--epochs", "1", "--set", "batch_size=64,128",
               "--set", "hidden=[16],[32]", "--set", "loss=categorical_crossentropy,mse"],
    "two_epochs": ["quickstart", "--epochs", "2", "--set", "batch_size=64,128"],
    "one_epoch": ["quickstart", "--epochs", "1", "--set", "batch_size=64,128,256",
                  "--repeats", "2"],
    "lrs": ["quickstart", "--epochs", "1", "--set", "batch_size=64,128", "--set", "lr=0.1,0.5"],
    "reference": ["report-a-batch-size", "--set", "dataset=digits", "--epochs", "1",
                  "--set", "batch_size=64,128"],
}  # fmt: skip


def test_report_on_a_run_in_progress_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real run, reported on while its trials land (first in the file: before this
    module's own Ray starts, the run has the CPUs to itself)."""
    spec = sleepy_spec(tmp_path / "slow.yaml", [1, 2, 3, 4, 5, 6], name="slow")
    results = tmp_path / "results"
    process = subprocess.Popen(
        [sys.executable, "-m", "sweeps", "run", str(spec), "--results", str(results)],
        env=plugin_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not list(results.glob("slow/*/trials/*.parquet")):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.2)
        (run_dir,) = (results / "slow").iterdir()
        assert run_cli("report", str(run_dir), "--no-plots", "--format", "json") == 0
        captured = capsys.readouterr()
        document = json.loads(captured.out)
        assert document["run"]["in_progress"] is True and document["run"]["planned"] == 6
        written = document["run"]["trials"]
        assert 1 <= written < 6
        assert f"{written} of 6 trials so far" in captured.err
        assert "the run has not ended" in captured.err
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=60)
    assert run_cli("report", str(run_dir), "--no-plots") == 0
    out = capsys.readouterr().out
    assert "slow run" in out and ": 6 trials, 6 finished, 0 failed\n" in out
    assert "so far" not in out


@pytest.fixture(scope="module")
def runs(local_ray: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    results = tmp_path_factory.mktemp("results")
    made = {}
    for name, args in RUNS.items():
        before = set(results.glob("*/*"))
        assert run_cli("run", *args, "--results", str(results)) == 0, name
        (made[name],) = set(results.glob("*/*")) - before
    return made


def test_compare_refuses_runs_that_differ_in_epochs(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = run_cli("compare", str(runs["two_epochs"]), str(runs["one_epoch"]))
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    assert captured.err.startswith("error: nothing to compare: no configuration of a (")
    assert "they differ in epochs (a: 2; b: 1); --force" in captured.err
    assert "--force compares them anyway" in captured.err


def test_forced_compare_prints_the_differences_first(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run_cli("compare", str(runs["two_epochs"]), str(runs["one_epoch"]), "--force") == 0
    out = capsys.readouterr().out
    assert out.startswith("configurations differ")
    differences, table = out.split("val_accuracy: a = ", 1)
    assert "│ batch_size │ 64, 128   │ 64, 128, 256 │" in differences
    assert "│ epochs     │ 2         │ 1            │" in differences
    assert "│ seed       │ (not set) │ 0, 1         │" in differences
    rows = {line.split("│")[1].strip(): line for line in table.splitlines() if "│" in line}
    header = [cell.strip() for cell in table.splitlines()[2].split("┃")]
    a, b = header.index("runs_a"), header.index("runs_b")
    cells = {key: [cell.strip() for cell in line.split("│")] for key, line in rows.items()}
    assert [cells["256"][a], cells["256"][b]] == ["-", "2"]  # a gap, a count: not 2.0000
    assert [cells["64"][a], cells["64"][b]] == ["1", "2"]


def test_compare_pairs_on_every_config_key(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Run b sweeps lr, run a does not: a's trials pair with b's at a's lr only, never with
    a mean over b's learning rates."""
    capsys.readouterr()
    args = ("compare", str(runs["one_epoch"]), str(runs["lrs"]), "--format", "json")
    assert run_cli(*args) == 0
    document = json.loads(capsys.readouterr().out)
    rows = {(row["batch_size"], row["lr"]): row for row in document["tables"]["compare"]}
    assert set(rows) == {(64, 0.1), (64, 0.5), (128, 0.1), (128, 0.5), (256, 0.5)}
    assert rows[(64, 0.5)]["runs_a"] == 2 and rows[(64, 0.5)]["runs_b"] == 1
    assert rows[(64, 0.1)]["runs_a"] is None and rows[(256, 0.5)]["runs_b"] is None
    assert {"dataset", "epochs", "lr", "batch_size"} <= set(document["matched_on"])
    assert {"key": "lr", "a": "0.5", "b": "0.1, 0.5"} in document["differences"]
    trials = analysis.load_run(runs["lrs"]).trials
    paired = trials[(trials["batch_size"] == 64) & (trials["lr"] == 0.5)]["val_accuracy"]
    assert rows[(64, 0.5)]["val_accuracy_b"] == pytest.approx(float(paired.iloc[0]))


def test_report_marks_references_measured_under_other_settings(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run_cli("report", str(runs["reference"]), "--no-plots", "--format", "json") == 0
    sources = json.loads(capsys.readouterr().out)["sources"]
    mark = ("[other settings: measured with dataset=mnist, epochs=20;"
            " this run has dataset=digits, epochs=1]")  # fmt: skip
    assert len(sources) == 2 and all(source.endswith(mark) for source in sources)
    assert sources[0].startswith("Report A, table A1")
    assert run_cli("report", str(runs["reference"]), "--no-plots") == 0  # a table's caption
    caption = " ".join(capsys.readouterr().out.split("ref1: ", 1)[1].split())
    assert caption.count("[other settings: measured with dataset=mnist, epochs=20;") == 2
    # The runs' own settings, as the reference of a run made as the preset is would see
    # them: nothing to mark.
    spec = analysis.load_run(runs["reference"]).spec
    same = {**spec, "dataset": "mnist", "base": {**spec["base"], "epochs": 20}}
    table = analysis.report_table(analysis.load_run(runs["reference"]).trials, same,
                                  ["batch_size"])  # fmt: skip
    assert [s.endswith("]") for s in table[2]] == [False, False]


def test_analysis_commands_take_uris(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    one, lrs = (f"file://{runs[name]}" for name in ("one_epoch", "lrs"))
    assert run_cli("report", one, "--no-plots", "--format", "json") == 0
    document = json.loads(capsys.readouterr().out)
    assert document["run"]["trials"] == 6 and document["run"]["id"] == runs["one_epoch"].name
    assert run_cli("threshold", one) == 0
    assert "Change in accuracy from 128 to 256:" in capsys.readouterr().out
    assert run_cli("compare", one, lrs, "--format", "csv") == 0
    assert capsys.readouterr().out.startswith("batch_size,lr,runs_a,")
    trials, _ = analysis.load(one)
    assert sorted(set(trials["batch_size"])) == [64, 128, 256]


def test_load_runs_reads_several_runs_with_a_sweep_column(runs: dict[str, Path]) -> None:
    results = runs["losses"].parent.parent
    trials, epochs = analysis.load_runs(str(results / "*" / "*"))
    assert list(trials.columns[:2]) == ["sweep", "run_id"]
    assert trials.groupby("sweep")["run_id"].nunique().to_dict() == {
        "quickstart": 4, "report-a-batch-size": 1,
    }  # fmt: skip
    assert len(trials) == 8 + 2 + 6 + 4 + 2 and trials["trial_id"].is_unique
    assert len(epochs) == 8 + 2 * 2 + 6 + 4 + 2 and set(epochs["sweep"]) == set(trials["sweep"])
    quick, _ = analysis.load_runs(str(results / "quick*" / "*"))
    assert set(quick["sweep"]) == {"quickstart"} and len(quick) == 20
    with pytest.raises(RunDataError, match=r"no run directory matches '.*/nothing-\*/\*'"):
        analysis.load_runs(str(results / "nothing-*" / "*"))


def test_frames_work_in_pandas_and_pyarrow(runs: dict[str, Path]) -> None:
    run = analysis.load_run(runs["losses"])
    trials, epochs = run.trials, run.epochs
    by_width = trials.groupby("hidden")["val_accuracy"].size()
    assert by_width.to_dict() == {(16,): 4, (32,): 4}
    assert set(trials["loss"]) == {"categorical_crossentropy", "mse"}
    assert "loss" not in epochs.columns and epochs["train_loss"].dtype == "float64"
    merged = epochs.merge(trials[["trial_id", *run.config_columns]], on="trial_id")
    assert {"loss", "train_loss", "hidden", "batch_size"} <= set(merged.columns)
    assert not [c for c in merged.columns if c.endswith(("_x", "_y"))]
    files = [*runs["losses"].glob("trials/*.parquet"), *runs["losses"].glob("epochs/*.parquet")]
    schema = pa.unify_schemas([pq.read_schema(file) for file in files])
    assert schema.field("loss").type == pa.string()
    assert ds.dataset(files, schema=schema).to_table().num_rows == 8 + 8
