"""Sweeps on a real local Ray (2 CPUs), driven through the CLI in this process."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers.runs import read_run, write_spec
from tests.sweeps.conftest import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("local_ray")]


def test_set_overrides_base_values_and_makes_a_two_axis_grid(tmp_path: Path) -> None:
    code = run_cli(
        "run", "quickstart", "--results", str(tmp_path), "--epochs", "2",
        "--set", "batch_size=16,32", "--set", "activation=relu,tanh", "--set", "lr=0.3",
    )  # fmt: skip
    assert code == 0
    _, trials, epochs = read_run(tmp_path)
    assert len(trials) == 4 and set(trials["status"]) == {"TERMINATED"}
    combos = set(zip(trials["batch_size"], trials["activation"], strict=True))
    assert combos == {(16, "relu"), (16, "tanh"), (32, "relu"), (32, "tanh")}
    assert set(trials["lr"]) == {0.3} and set(trials["epochs_completed"]) == {2}
    assert len(epochs) == 8 and sorted(set(epochs["epoch"])) == [1, 2]
    assert set(trials["precision"]) == {"fp32 (matmul ieee, conv ieee)"}  # TF32 off


def test_user_trainer_that_raises_gives_error_rows_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(
        tmp_path / "flaky.yaml", name="flaky", trainer="user_trainers:flaky", dataset=None,
        base={"epochs": 2}, grid={"x": [1, 2, 3, 4, 5, 6]},
    )  # fmt: skip
    assert run_cli("run", spec, "--results", str(tmp_path / "results")) == 1
    _, trials, epochs = read_run(tmp_path / "results")
    assert len(trials) == 6
    failed = trials[trials["status"] == "ERROR"].sort_values("x")
    assert list(failed["x"]) == [3, 6]
    assert [error.split(" (traceback in ")[0] for error in failed["error"]] == [
        "ValueError: x=3 is divisible by 3", "ValueError: x=6 is divisible by 3"]  # fmt: skip
    finished = trials[trials["status"] == "TERMINATED"]
    assert sorted(finished["x"]) == [1, 2, 4, 5] and finished["error"].isna().all()
    assert len(epochs) == 4 * 2
    assert "failed: ValueError: x=3 is divisible by 3" in capsys.readouterr().err


def test_failed_attempt_is_retried_and_written_once(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "retry.yaml", name="retry", trainer="user_trainers:fails_once",
        dataset=None, max_failures=1,
        base={"epochs": 3, "marker_dir": str(tmp_path)}, grid={"x": [1, 2]},
    )  # fmt: skip
    assert run_cli("run", spec, "--results", str(tmp_path / "results")) == 0
    _, trials, epochs = read_run(tmp_path / "results")
    assert list(trials["status"]) == ["TERMINATED", "TERMINATED"]
    # The failed first attempt reported epoch 1 with loss 9; only the retry's epochs remain.
    assert epochs.groupby("trial_id")["epoch"].apply(list).tolist() == [[1, 2, 3], [1, 2, 3]]
    assert (epochs["train_loss"] < 9).all()


def test_report_a_batch_sizes_match_keras_on_real_mnist(tmp_path: Path, mnist_dir: Path) -> None:
    code = run_cli(
        "run", "report-a-batch-size", "--set", "batch_size=64,512",
        "--results", str(tmp_path), "--data-dir", str(mnist_dir),
    )  # fmt: skip
    assert code == 0
    _, trials, epochs = read_run(tmp_path)
    accuracy = dict(zip(trials["batch_size"], trials["val_accuracy"], strict=True))
    # Keras 3.15 / TensorFlow 2.21, fresh weights (EXPERIMENTS.md, A1).
    assert accuracy[64] == pytest.approx(0.9604, abs=0.005)
    assert accuracy[512] == pytest.approx(0.9173, abs=0.005)
    assert set(trials["epochs_completed"]) == {20} and len(epochs) == 40
    assert set(trials["params"]) == {50_890}


def test_fused_run_reads_exactly_like_an_unfused_one(tmp_path: Path) -> None:
    """Three activations, two repeats each, at batch 64 fuse into bundles (3 + 3 on the 2
    CPUs, seeds mixed); with --fuse off they are six trials. Same rows, same columns and
    types, the same metrics each epoch."""
    args = ["run", "quickstart", "--epochs", "3", "--set", "batch_size=64", "--set", "lr=0.1",
            "--set", "activation=sigmoid,relu,exponential", "--repeats", "2"]  # fmt: skip
    assert run_cli(*args, "--results", str(tmp_path / "fused")) == 0
    assert run_cli(*args, "--results", str(tmp_path / "alone"), "--fuse", "off") == 0
    fused_dir, fused, fused_epochs = read_run(tmp_path / "fused")
    _, alone, alone_epochs = read_run(tmp_path / "alone")

    assert list(fused.columns) == list(alone.columns) and (fused.dtypes == alone.dtypes).all()
    assert list(fused_epochs.columns) == list(alone_epochs.columns)
    assert sorted(fused["bundle_id"].value_counts()) == [3, 3]
    assert (fused.groupby("bundle_id")["seed"].nunique() == 2).all()
    assert alone["bundle_id"].isna().all()
    assert fused["trial_id"].is_unique and set(fused["status"]) == {"TERMINATED"}
    assert all(t.startswith(f"{b}-") for t, b in zip(fused["trial_id"], fused["bundle_id"],
                                                     strict=True))  # fmt: skip
    assert yaml.safe_load((fused_dir / "spec.yaml").read_text())["max_bundle"] == 3

    def by_configuration(trials: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
        named = epochs.merge(trials[["trial_id", "activation", "seed"]], on="trial_id")
        return named.drop(columns=["run_id", "trial_id", "epoch_time_s"]).sort_values(
            ["activation", "seed", "epoch"], ignore_index=True
        )

    together = by_configuration(fused, fused_epochs)
    apart = by_configuration(alone, alone_epochs)
    assert len(together) == 6 * 3
    pd.testing.assert_frame_equal(together, apart, rtol=0, atol=1e-5)
    columns = ["activation", "seed", "val_loss", "test_accuracy", "params", "epochs_completed"]
    pd.testing.assert_frame_equal(
        fused[columns].sort_values(["activation", "seed"], ignore_index=True),
        alone[columns].sort_values(["activation", "seed"], ignore_index=True), rtol=0, atol=1e-5,
    )  # fmt: skip


def test_asha_stops_weak_trials_early(tmp_path: Path) -> None:
    # Best first, one at a time: every later trial is worse at the first rung and stops there.
    spec = write_spec(
        tmp_path / "asha.yaml", name="asha", trainer="user_trainers:steady", dataset=None,
        scheduler="asha", max_concurrent=1, base={"epochs": 4}, grid={"x": [6, 5, 4, 3]},
    )  # fmt: skip
    assert run_cli("run", spec, "--results", str(tmp_path / "results")) == 0
    _, trials, epochs = read_run(tmp_path / "results")
    completed = dict(zip(trials["x"], trials["epochs_completed"], strict=True))
    assert completed[6] == 4
    assert all(completed[x] < 4 for x in (5, 4, 3)), completed
    assert set(trials["status"]) == {"TERMINATED", "STOPPED"}
    assert len(epochs) == sum(completed.values())


def test_sampled_parameters_give_num_samples_trials(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "sampled.yaml", name="sampled", trainer="user_trainers:steady",
        dataset=None, num_samples=3, base={"epochs": 1},
        sample={"x": {"choice": [10, 20]}, "lr": {"loguniform": [1e-4, 1e-1]}},
    )  # fmt: skip
    assert run_cli("run", spec, "--results", str(tmp_path / "results")) == 0
    _, trials, _ = read_run(tmp_path / "results")
    assert len(trials) == 3 and set(trials["x"]) <= {10, 20}
    assert trials["lr"].between(1e-4, 1e-1).all() and trials["lr"].nunique() == 3


def test_results_go_through_a_filesystem_uri(tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/shared"
    code = run_cli("run", "quickstart", "--results", uri, "--epochs", "1",
                   "--set", "batch_size=64,128")  # fmt: skip
    assert code == 0
    run_dir, trials, epochs = read_run(tmp_path / "shared")
    assert len(trials) == 2 and len(epochs) == 2
    assert (run_dir / "spec.yaml").is_file() and (run_dir / "manifest.json").is_file()
    assert (run_dir / "tune").is_dir()  # Tune's storage follows the results location
