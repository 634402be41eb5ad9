"""Frames of trials and runs that several analysis test files draw."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import Run, load_run
from tests.helpers.runs import trial_row, write_run


def error_row(trial_id: str, **config: object) -> dict[str, object]:
    """A trial that raised: no metrics, no confusion matrix."""
    row = trial_row(trial_id, 0.0, **config)
    metrics = ["train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_accuracy"]
    row.update(dict.fromkeys(metrics, np.nan))
    row.update(status="ERROR", error="RuntimeError: CUDA out of memory", confusion=None)
    return row


@pytest.fixture
def grid_trials() -> pd.DataFrame:
    """lr x activation, one seed: a grid of two axes, activation categorical."""
    rows = [
        trial_row(f"g{i}", 0.9 + 0.01 * i, lr=lr, activation=name, seed=0)
        for i, (lr, name) in enumerate((lr, n) for lr in (0.01, 0.1) for n in ("tanh", "relu"))
    ]
    return pd.DataFrame(rows)


@pytest.fixture
def batch_trials() -> pd.DataFrame:
    """3 batch sizes x 2 seeds, but 256 with one; a third repeat of 64 that failed."""
    accuracy = {(16, 0): 0.97, (16, 1): 0.975, (64, 0): 0.965, (64, 1): 0.955, (256, 0): 0.94}
    rows = [
        trial_row(f"b{i}", acc, batch_size=size, activation="relu", seed=seed, hidden=(128,))
        for i, ((size, seed), acc) in enumerate(accuracy.items())
    ]
    rows.append(error_row("b9", batch_size=64, activation="relu", seed=2, hidden=(128,)))
    return pd.DataFrame(rows)


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., Run]:
    """`make_run(run_id, rows, **spec)`: a run directory written under tmp_path, a Parquet
    file a trial (each row finished unless it says otherwise, ids `<run_id>-<i>`), read back
    with `load_run`. The spec is exactly `spec` (with name "sweep"), so a run can sweep
    nothing, which write_run's default grid would not allow."""

    def make(run_id: str, rows: list[dict[str, object]], **spec: object) -> Run:
        trials = pd.DataFrame([
            {"run_id": run_id, "trial_id": f"{run_id}-{index}", "status": "TERMINATED", **row}
            for index, row in enumerate(rows)
        ])  # fmt: skip
        run_dir = write_run(tmp_path / run_id, trials)
        # In the spec's order, as sweeps saves it: the swept keys' order is the figures'.
        (run_dir / "spec.yaml").write_text(
            yaml.safe_dump({"name": "sweep", **spec}, sort_keys=False)
        )
        return load_run(run_dir)

    return make
