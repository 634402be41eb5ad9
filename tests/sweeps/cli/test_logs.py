"""Debugging a trainer: what its trials print and warn, and a failure's traceback, kept in
the run directory (`sweeps logs RUN [CONFIG]` shows them). One configuration trained in
this process with `sweeps train --trainer`: test_train.py."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from analysis.place import Place
from analysis.rundir import Status
from sweeps.record.fanout import Fanout
from sweeps.record.protocol import EPOCH, attach_output, encode
from sweeps.record.results import RunWriter, read_trials

SWEEPS = str(Path(sys.executable).with_name("sweeps"))  # the venv's console script
MODULE = """\
import sys
import warnings


def train(config, dataset, report):
    print(f"starting x={config['x']}")
    print(f"on stderr x={config['x']}", file=sys.stderr)
    for epoch in range(1, config["epochs"] + 1):
        report({"epoch": epoch, "loss": 1 / epoch, "val_accuracy": 0.5,
                "my_metric": 10.0 * config["x"]})
    warnings.warn(f"x={config['x']} looks odd")
    if config["x"] == 2:
        print("about to fail")
        raise ValueError("x=2 is not allowed")
    return {"val_accuracy": 0.5, "my_tag": "fine"}
"""


def sweeps(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`sweeps ARGS` in `cwd` as a user runs it: its stdout and stderr one pipe."""
    environ = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([SWEEPS, *args], cwd=cwd, env={**environ, **env}, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=300)  # fmt: skip


@pytest.fixture
def chatty(tmp_path: Path) -> Path:
    """A folder with chatty.py (prints, warns; x=2 then raises) and spec.yaml of x=1, 2."""
    (tmp_path / "chatty.py").write_text(MODULE)
    spec = {"name": "chatty", "trainer": "chatty:train", "dataset": None, "fuse": "off",
            "base": {"epochs": 2}, "grid": {"x": [1, 2]}, "callbacks": []}  # fmt: skip
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path


@pytest.mark.slow
def test_a_failed_trial_keeps_its_output_and_traceback_and_logs_shows_them(
    chatty: Path,
) -> None:
    ran = sweeps("run", "spec.yaml", cwd=chatty)
    assert ran.returncode == 1, ran.stdout
    (run_dir,) = (chatty / "results" / "chatty").iterdir()
    trials = pd.read_parquet(run_dir / "trials").set_index("x")
    failed, fine = trials.loc[2, "trial_id"], trials.loc[1, "trial_id"]
    log = run_dir / "logs" / f"{failed}.txt"
    error = f"ValueError: x=2 is not allowed (traceback in {log})"
    assert trials.loc[2, "error"] == error and pd.isna(trials.loc[1, "error"])
    assert f"trial {failed} failed: {error}\n" in ran.stdout  # the line at the end
    assert f"note: UserWarning: x=2 looks odd (trial {failed})" in ran.stdout  # as it came
    assert f"note: UserWarning: x=1 looks odd (trial {fine})" in ran.stdout

    text = log.read_text()
    assert text.startswith(f"# Tune trial {failed} trained configuration {failed} (config_index 1)")
    for line in ("starting x=2", "on stderr x=2", "about to fail",
                 f"{chatty}/chatty.py:11: UserWarning: x=2 looks odd",
                 f'  File "{chatty}/chatty.py", line 14, in train',
                 '    raise ValueError("x=2 is not allowed")'):  # fmt: skip
        assert f"\n{line}\n" in text, line
    assert "\n# --- the trial failed: ---\nray::ImplicitFunc.train() (pid=" in text
    assert text.endswith("\nValueError: x=2 is not allowed\n") and "\x1b" not in text

    shown = sweeps("logs", str(run_dir), cwd=chatty)
    assert shown.returncode == 0, shown.stdout
    for line in ("starting x=1", "on stderr x=1", "UserWarning: x=1 looks odd", "starting x=2",
                 "UserWarning: x=2 looks odd", "ValueError: x=2 is not allowed"):  # fmt: skip
        assert line in shown.stdout, line
    one = sweeps("logs", str(run_dir), "0", cwd=chatty)  # by config_index
    assert one.returncode == 0 and "starting x=1" in one.stdout and "x=2" not in one.stdout
    by_id = sweeps("logs", str(run_dir), failed, cwd=chatty)
    assert by_id.stdout == text
    unknown = sweeps("logs", str(run_dir), "7", cwd=chatty)
    assert unknown.returncode == 2 and unknown.stdout.count("\n") == 1
    assert unknown.stdout.startswith(f"error: run '{run_dir}' has no configuration '7'")


def test_a_fused_trials_log_is_all_its_configurations_on_an_object_store(
    s3_server: str, tmp_path: Path
) -> None:
    """Tune's side played here: a trial of two configurations prints, then fails; its log
    is written through the store's filesystem, named by both errors, read by `logs`."""
    run_dir = Place.of(s3_server) / "fused" / "run-1"
    (run_dir / "manifest.json").write_text("{}")
    writer = RunWriter(run_dir, "run-1", [{"x": 1}, {"x": 2}], 0.0)
    fanout = Fanout([{"x": 1}, {"x": 2}], [[0, 1]], writer, [])
    fanout.start("t_00000", [0, 1])
    fanout.report("t_00000", encode(EPOCH, [{"epoch": 1}, {"epoch": 1}], output="epoch one\n"))
    error = ValueError("both fail")
    attach_output(error, notes=[], output="last words\n")
    (tmp_path / "error.pkl").write_bytes(pickle.dumps(error))
    trial = SimpleNamespace(trial_id="t_00000", pickled_error_file=str(tmp_path / "error.pkl"),
                            error_file=None)  # fmt: skip
    fanout.on_trial_error(0, [], trial)

    log = (run_dir / "logs" / "t_00000.txt").uri
    trials = read_trials(run_dir)
    assert set(trials["status"]) == {Status.FAILED}
    assert set(trials["error"]) == {f"ValueError: both fail (traceback in {log})"}
    shown = sweeps("logs", run_dir.uri, "t_00000-1", cwd=tmp_path)
    assert shown.returncode == 0, shown.stdout
    assert shown.stdout == (
        "# Tune trial t_00000 trained configurations t_00000-0 (config_index 0), t_00000-1"
        " (config_index 1) in one process: what follows is all of theirs\n"
        "epoch one\nlast words\n# --- the trial failed: ---\nValueError: both fail\n"
    )
