"""`sweeps resume` after failures of the environment, not of the trainer: a trainer gone from
the path is refused before Ray starts, and configurations whose workers could not import
the trainer, or died, are trained again; `--retry-failed` trains every failed one again.
The console script in processes of its own, with a user trainer in a folder of the test's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers.processes import wait_for_rows
from tests.sweeps.conftest import plugin_env

pytestmark = pytest.mark.slow
SWEEPS = str(Path(sys.executable).with_name("sweeps"))  # the console script

LAB_TRAINERS = textwrap.dedent("""
    import os
    import signal
    import time
    from pathlib import Path


    def steady(config, dataset, report):
        metrics = {}
        for epoch in range(1, config["epochs"] + 1):
            time.sleep(config.get("sleep_s", 0))
            accuracy = 1 - 1 / (epoch + config["x"])
            metrics = {"epoch": epoch, "loss": 1 / epoch, "accuracy": accuracy,
                       "val_loss": 1 / epoch, "val_accuracy": accuracy, "epoch_time_s": 0.0}
            report(metrics)
        return metrics


    def breaks_once(config, dataset, report):
        # x=1: its worker process dies (as one killed by the OOM killer does); x=2: a bug
        # of the trainer's. Each once: a file remembers.
        marker = Path(config["marks"]) / f"x{config['x']}"
        if not marker.exists():
            marker.touch()
            if config["x"] == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            if config["x"] == 2:
                raise RuntimeError("a bug, fixed since")
        return steady(config, dataset, report)
""")


def lab(tmp_path: Path) -> Path:
    """A folder with the user's trainers, `labtrainers`, which only its path finds."""
    folder = tmp_path / "lab"
    folder.mkdir()
    (folder / "labtrainers.py").write_text(LAB_TRAINERS)
    return folder


def spec(tmp_path: Path, trainer: str, xs: list[int], **base: object) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({
        "name": "lab", "trainer": f"labtrainers:{trainer}", "dataset": None,
        "base": {"epochs": 2, "sleep_s": 0.3, **base}, "grid": {"x": xs}, "max_concurrent": 1,
    }))  # fmt: skip
    return path


def env_with(folder: Path) -> dict[str, str]:
    env = plugin_env()
    return {**env, "PYTHONPATH": os.pathsep.join((str(folder), env["PYTHONPATH"]))}


def sweeps(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SWEEPS, *args], env=env, capture_output=True, text=True, timeout=300)


def the_run(results: Path) -> Path:
    (run_dir,) = (results / "lab").iterdir()
    return run_dir


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}


def test_resume_refuses_a_trainer_gone_from_the_path_before_ray_and_writes_nothing(
    tmp_path: Path,
) -> None:
    folder, results, xs = lab(tmp_path), tmp_path / "results", [1, 2, 3, 4]
    process = subprocess.Popen(
        [SWEEPS, "run", str(spec(tmp_path, "steady", xs)), "--results", str(results)],
        env=env_with(folder), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for_rows(process, "lab/*/trials/*.parquet", results, 1)
    process.send_signal(signal.SIGINT)
    assert process.communicate(timeout=120) and process.returncode == 1
    run_dir = the_run(results)
    before = snapshot(run_dir)
    moved = folder.rename(tmp_path / "lab-moved")  # the trainer's folder is gone

    refused = sweeps("resume", str(run_dir), env=env_with(folder))
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("error: trainer 'labtrainers:steady': cannot import")
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert snapshot(run_dir) == before  # no ERROR rows, no new attempt of Tune's

    moved.rename(folder)
    resumed = sweeps("resume", str(run_dir), env=env_with(folder))
    assert resumed.returncode == 0, resumed.stderr
    trials = pd.read_parquet(run_dir / "trials")
    assert sorted(trials["x"]) == xs and set(trials["status"]) == {"TERMINATED"}


def test_resume_trains_again_what_failed_for_the_environment_and_retry_failed_the_rest(
    tmp_path: Path,
) -> None:
    folder, results, marks = lab(tmp_path), tmp_path / "results", tmp_path / "marks"
    marks.mkdir()
    xs = [1, 2, 3]
    run_spec = spec(tmp_path, "breaks_once", xs, marks=str(marks))
    ran = sweeps("run", str(run_spec), "--results", str(results), env=env_with(folder))
    assert ran.returncode == 1, ran.stderr
    run_dir = the_run(results)
    first = pd.read_parquet(run_dir / "trials").set_index("x")
    assert first.loc[1, "error"].startswith("ActorDiedError: ")  # its worker died
    assert first.loc[2, "error"].startswith("RuntimeError: a bug, fixed since (traceback in ")
    assert first.loc[3, "status"] == "TERMINATED"

    resumed = sweeps("resume", str(run_dir), env=env_with(folder))
    assert resumed.returncode == 1, resumed.stderr  # x=2 still failed: the trainer's own error
    assert "2 of 3 configurations have results, 1 to train" in resumed.stderr
    second = pd.read_parquet(run_dir / "trials").set_index("x")
    assert list(second["status"].sort_index()) == ["TERMINATED", "ERROR", "TERMINATED"]
    assert second.loc[2, "trial_id"] == first.loc[2, "trial_id"]  # not tried again

    retried = sweeps("resume", str(run_dir), "--retry-failed", env=env_with(folder))
    assert retried.returncode == 0, retried.stderr
    assert "2 of 3 configurations have results, 1 to train" in retried.stderr
    trials = pd.read_parquet(run_dir / "trials").set_index("x")
    assert sorted(trials.index) == xs and set(trials["status"]) == {"TERMINATED"}
    assert trials.loc[3, "started_at"] == first.loc[3, "started_at"]  # never trained again
    epochs = pd.read_parquet(run_dir / "epochs")
    assert sorted(epochs["trial_id"].unique()) == sorted(trials["trial_id"])
    assert (epochs.groupby("trial_id").size() == 2).all()
    tensorboard = sorted(p.name for p in (run_dir / "tensorboard").iterdir())
    assert tensorboard == sorted(trials["trial_id"])


def test_resume_trains_again_what_workers_could_not_import(tmp_path: Path, local_ray: None) -> None:
    """A cluster whose nodes lack the user's module (its workers' path has no `lab`, the
    driver's has): every configuration fails; `sweeps resume` on a machine that has it
    trains them all, where it used to say "3 of 3 have results, 0 to train" forever."""
    import ray

    folder, results, xs = lab(tmp_path), tmp_path / "results", [1, 2, 3]
    address = ray.get_runtime_context().gcs_address
    run_spec = spec(tmp_path, "steady", xs)
    ran = sweeps("run", str(run_spec), "--results", str(results), "--address", address,
                 env=env_with(folder))  # fmt: skip
    assert ran.returncode == 1, ran.stderr
    run_dir = the_run(results)
    failed = pd.read_parquet(run_dir / "trials")
    assert failed["error"].str.startswith("TrainerImportError: ").all(), failed["error"]

    resumed = sweeps("resume", str(run_dir), env=env_with(folder))  # an embedded Ray
    assert resumed.returncode == 0, resumed.stderr
    assert "0 of 3 configurations have results, 3 to train" in resumed.stderr
    trials = pd.read_parquet(run_dir / "trials")
    assert sorted(trials["x"]) == xs and set(trials["status"]) == {"TERMINATED"}
    assert not set(trials["trial_id"]) & set(failed["trial_id"])
    epochs = pd.read_parquet(run_dir / "epochs")
    assert sorted(epochs["trial_id"].unique()) == sorted(trials["trial_id"])
