from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from analysis.plots import (
    accuracy_vs_param,
    confusion_grid,
    confusion_matrix,
    learning_curves,
    write_plots,
)

EPOCHS = 3


def confusion(correct: int, seed: int) -> list[int]:
    """A 10x10 row-major matrix with a strong diagonal and a little noise off it."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 6, size=(10, 10))
    np.fill_diagonal(counts, correct)
    return counts.ravel().tolist()


def trial_row(trial_id: str, accuracy: float, **config: object) -> dict[str, object]:
    return {
        "run_id": "run1",
        "trial_id": trial_id,
        "status": "TERMINATED",
        "error": None,
        **config,
        "train_loss": 1 - accuracy,
        "train_accuracy": accuracy + 0.01,
        "val_loss": 1.1 - accuracy,
        "val_accuracy": accuracy,
        "test_loss": 1.1 - accuracy,
        "test_accuracy": accuracy - 0.005,
        "params": 101_770,
        "epochs_completed": EPOCHS,
        "device": "cpu",
        "gpu_fraction": 0.0,
        "confusion": confusion(int(accuracy * 1000), seed=len(trial_id) + int(accuracy * 100)),
    }


def error_row(trial_id: str, **config: object) -> dict[str, object]:
    row = trial_row(trial_id, 0.0, **config)
    metrics = ["train_loss", "train_accuracy", "val_loss", "val_accuracy"]
    metrics += ["test_loss", "test_accuracy"]
    row.update(dict.fromkeys(metrics, np.nan))
    row.update(status="ERROR", error="RuntimeError: CUDA out of memory", confusion=None)
    return row


def epochs_for(trials: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, trial in trials[trials["status"] == "TERMINATED"].iterrows():
        final = trial["val_accuracy"]
        for epoch in range(1, EPOCHS + 1):
            accuracy = final - 0.05 * (EPOCHS - epoch)
            rows.append(
                {
                    "run_id": "run1",
                    "trial_id": trial["trial_id"],
                    "epoch": epoch,
                    "loss": 1 - accuracy,
                    "accuracy": accuracy + 0.01,
                    "val_loss": 1.1 - accuracy,
                    "val_accuracy": accuracy,
                    "epoch_time_s": 2.0,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture
def batch_trials() -> pd.DataFrame:
    """3 batch sizes x 2 seeds, plus a third repeat of 64 that failed."""
    accuracy = {(16, 0): 0.97, (16, 1): 0.975, (64, 0): 0.965, (64, 1): 0.96, (256, 0): 0.94}
    rows = [
        trial_row(f"b{i}", acc, batch_size=size, activation="relu", seed=seed, hidden=[128])
        for i, ((size, seed), acc) in enumerate(accuracy.items())
    ]
    rows.append(error_row("b9", batch_size=64, activation="relu", seed=2, hidden=[128]))
    return pd.DataFrame(rows)


@pytest.fixture
def activation_trials() -> pd.DataFrame:
    accuracy = {"relu": 0.97, "tanh": 0.96, "sigmoid": 0.93}
    rows = [
        trial_row(f"a{i}", acc, batch_size=64, activation=name, seed=0, hidden=[64, 32])
        for i, (name, acc) in enumerate(accuracy.items())
    ]
    rows.append(error_row("a9", batch_size=64, activation="elu", seed=0, hidden=[64, 32]))
    return pd.DataFrame(rows)


def assert_drawn(path: Path) -> None:
    """Not just a file: a PNG with real content on it."""
    assert path.is_file()
    assert path.stat().st_size > 5_000
    pixels = imread(path)[..., :3]
    assert pixels.std() > 0.05
    not_white = (pixels < 0.95).any(axis=-1).mean()
    assert not_white > 0.03


def test_learning_curves(batch_trials: pd.DataFrame, tmp_path: Path) -> None:
    trial = batch_trials.iloc[0]
    path = learning_curves(
        trial, epochs_for(batch_trials), ["batch_size", "seed"], tmp_path / "l.png"
    )
    assert path == tmp_path / "l.png"
    assert_drawn(path)


def test_learning_curves_without_epochs(batch_trials: pd.DataFrame, tmp_path: Path) -> None:
    failed = batch_trials.iloc[-1]
    with pytest.raises(ValueError, match="b9"):
        learning_curves(failed, epochs_for(batch_trials), ["batch_size"], tmp_path / "l.png")


def test_accuracy_vs_param_ignores_failed(batch_trials: pd.DataFrame, tmp_path: Path) -> None:
    path = accuracy_vs_param(batch_trials, "batch_size", "val_accuracy", tmp_path / "a.png")
    assert_drawn(path)


def test_accuracy_vs_param_single_run(tmp_path: Path) -> None:
    """One run per value (no spread) and a non-power-of-two parameter still plot."""
    trials = pd.DataFrame(
        [trial_row(f"t{i}", 0.9 + i / 100, lr=lr) for i, lr in enumerate([1e-3, 1e-2, 0.1])]
    )
    assert_drawn(accuracy_vs_param(trials, "lr", "val_accuracy", tmp_path / "lr.png"))


@pytest.mark.parametrize("column", ["batch_size", "val_accuracy"])
def test_accuracy_vs_param_missing_column(
    batch_trials: pd.DataFrame, tmp_path: Path, column: str
) -> None:
    with pytest.raises(ValueError, match=column):
        accuracy_vs_param(
            batch_trials.drop(columns=[column]), "batch_size", "val_accuracy", tmp_path / "a.png"
        )


def test_accuracy_vs_param_non_numeric_metric(batch_trials: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="device"):
        accuracy_vs_param(batch_trials, "batch_size", "device", tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()


def test_confusion_matrix(batch_trials: pd.DataFrame, tmp_path: Path) -> None:
    path = confusion_matrix(batch_trials.iloc[0], ["batch_size"], tmp_path / "c.png")
    assert_drawn(path)


def test_confusion_matrix_from_array(batch_trials: pd.DataFrame, tmp_path: Path) -> None:
    """Parquet hands lists back as numpy arrays."""
    trial = batch_trials.iloc[1].copy()
    trial["confusion"] = np.asarray(trial["confusion"], dtype=np.int64)
    assert_drawn(confusion_matrix(trial, [], tmp_path / "c.png"))


def test_confusion_grid(activation_trials: pd.DataFrame, tmp_path: Path) -> None:
    path = confusion_grid(activation_trials, "activation", tmp_path / "g.png")
    assert_drawn(path)


def test_confusion_grid_missing_column(activation_trials: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="optimizer"):
        confusion_grid(activation_trials, "optimizer", tmp_path / "g.png")


def test_write_plots_batch_size(batch_trials: pd.DataFrame, tmp_path: Path) -> None:
    out_dir = tmp_path / "plots"
    paths = write_plots(batch_trials, epochs_for(batch_trials), ["batch_size", "seed"], out_dir)
    ids = [f"b{i}" for i in range(5)]
    expected = {f"learning-{i}.png" for i in ids} | {f"confusion-{i}.png" for i in ids}
    expected.add("accuracy-vs-batch_size.png")
    assert {p.name for p in paths} == expected
    assert {p.name for p in out_dir.iterdir()} == expected
    assert len(paths) == len(expected)


def test_write_plots_activation(activation_trials: pd.DataFrame, tmp_path: Path) -> None:
    paths = write_plots(activation_trials, epochs_for(activation_trials), ["activation"], tmp_path)
    ids = ["a0", "a1", "a2"]
    expected = {f"learning-{i}.png" for i in ids} | {f"confusion-{i}.png" for i in ids}
    expected.add("confusion-grid-activation.png")
    assert {p.name for p in paths} == expected
    assert {p.name for p in tmp_path.iterdir()} == expected
    assert_drawn(tmp_path / "confusion-grid-activation.png")


def test_write_plots_all_failed(batch_trials: pd.DataFrame, tmp_path: Path) -> None:
    failed = pd.DataFrame([error_row("e0", batch_size=32, activation="relu")])
    assert write_plots(failed, pd.DataFrame(), ["batch_size", "activation"], tmp_path / "p") == []
    assert (tmp_path / "p").is_dir()


def test_round_trip_through_parquet(batch_trials: pd.DataFrame, tmp_path: Path) -> None:
    """The frames as a run reads them back: list columns become numpy arrays."""
    batch_trials.to_parquet(tmp_path / "trials.parquet")
    epochs_for(batch_trials).to_parquet(tmp_path / "epochs.parquet")
    trials = pd.read_parquet(tmp_path / "trials.parquet")
    epochs = pd.read_parquet(tmp_path / "epochs.parquet")
    paths = write_plots(trials, epochs, ["batch_size"], tmp_path / "plots")
    assert len(paths) == 11


def test_imports_neither_torch_nor_ray() -> None:
    # In a fresh interpreter: this one has torch loaded already by the shared conftest.
    code = "import sys, analysis.plots; print(sorted({'torch', 'ray'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
