"""Results locations: local paths, file:// and s3:// (a local moto S3 server)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

import analysis
from analysis.place import Place, StorageError
from tests.helpers.s3 import CREDENTIALS


def test_local_place_writes_whole_files(tmp_path: Path) -> None:
    place = Place.of(tmp_path / "run")
    assert place.local and place.uri == str(tmp_path / "run") and not place.exists()
    (place / "trials" / "a.parquet").write_parquet(pa.table({"x": [1, 2]}))
    (place / "spec.yaml").write_text("name: x\n")
    assert place.is_dir() and (place / "spec.yaml").read_text() == "name: x\n"
    assert sorted(os.listdir(tmp_path / "run" / "trials")) == ["a.parquet"]  # no temp left
    assert list((place / "trials").read_parquet()["x"]) == [1, 2]
    assert (place / "epochs").read_parquet().empty


def test_uris_keep_their_options_when_joined() -> None:
    place = Place.of("s3://bucket/results?endpoint_override=127.0.0.1:9&scheme=http")
    child = place / "quickstart" / "run-1"
    assert child.path == "bucket/results/quickstart/run-1"
    assert (
        child.uri
        == "s3://bucket/results/quickstart/run-1?endpoint_override=127.0.0.1:9&scheme=http"
    )
    assert Place.of(f"file://{os.sep}tmp/x").local
    with pytest.raises(StorageError, match="results location 'nosuch://x'"):
        Place.of("nosuch://x")


@pytest.mark.slow
def test_a_sweep_writes_its_results_to_s3(s3_server: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "sweeps", "run", "quickstart", "--epochs", "1",
         "--set", "batch_size=64,128", "--results", s3_server],
        capture_output=True, text=True, timeout=300, env={**os.environ, **CREDENTIALS},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    results = Place.of(s3_server) / "quickstart"
    (run_info,) = results.fs.get_file_info(pafs.FileSelector(results.path))
    run_dir = results / run_info.base_name
    trials = (run_dir / "trials").read_parquet()
    assert sorted(trials["batch_size"]) == [64, 128] and set(trials["status"]) == {"TERMINATED"}
    assert len((run_dir / "epochs").read_parquet()) == 2
    assert "name: quickstart" in (run_dir / "spec.yaml").read_text()
    assert (run_dir / "tune").is_dir()  # Tune's own state went to the bucket too
    assert run_dir.uri in completed.stdout.replace("\n", "")

    # Reported from the bucket (the table: the format that draws), its figures written there.
    report = subprocess.run(
        [sys.executable, "-m", "sweeps", "report", run_dir.uri, "--html"],
        capture_output=True, text=True, timeout=120, env={**os.environ, **CREDENTIALS},
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert f"run {run_info.base_name}: 2 trials, 2 finished, 0 failed" in report.stdout
    plots = (run_dir / "plots").fs.get_file_info(pafs.FileSelector((run_dir / "plots").path))
    names = {p.base_name for p in plots}
    assert len(plots) == 2 + 2 + 1 and "val_accuracy-vs-batch_size.png" in names
    assert f"plots: 5 PNG files in {(run_dir / 'plots').uri}" in report.stdout
    page = (run_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3  # the confusion close-ups stay in plots/
    assert f"html: {(run_dir / 'report.html').uri}" in report.stdout
    # And here: every run of the sweep, read from the bucket with the URI's options.
    base, _, query = s3_server.partition("?")
    trials, epochs = analysis.load_runs(f"{base}/quickstart/*?{query}")
    assert sorted(trials["batch_size"]) == [64, 128] and set(trials["sweep"]) == {"quickstart"}
    assert len(epochs) == 2 and set(epochs["run_id"]) == {run_info.base_name}
