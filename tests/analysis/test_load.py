from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

import analysis
from analysis import RunDataError, load_run


def make_run(root: Path) -> Path:
    run_dir = root / "sweep" / "run-1"
    (run_dir / "trials").mkdir(parents=True)
    (run_dir / "epochs").mkdir()
    for index, batch_size in enumerate([64, 32]):
        trial_id = f"t_{index}"
        pd.DataFrame({"trial_id": [trial_id], "status": ["TERMINATED"], "seed": [0],
                      "batch_size": [batch_size], "val_accuracy": [0.9 + index / 100]}
                     ).to_parquet(run_dir / "trials" / f"{trial_id}.parquet")  # fmt: skip
        pd.DataFrame({"trial_id": [trial_id] * 2, "epoch": [1, 2]}).to_parquet(
            run_dir / "epochs" / f"{trial_id}.parquet"
        )
    spec = {
        "name": "sweep",
        "grid": {"batch_size": [64, 32]},
        "repeats": 2,
        "reference": [{"source": "r", "rows": [{"batch_size": 64, "val_accuracy": 0.9}]}],
    }
    (run_dir / "spec.yaml").write_text(yaml.safe_dump(spec))  # fmt: skip
    return run_dir


def test_load_gives_trials_and_epochs(tmp_path: Path) -> None:
    trials, epochs = analysis.load(make_run(tmp_path))
    assert list(trials["trial_id"]) == ["t_0", "t_1"] and len(epochs) == 4
    run = load_run(make_run(tmp_path / "again"))
    assert run.name == "sweep" and run.swept == ["batch_size", "seed"]
    assert run.references[0]["source"] == "r"


def test_missing_or_empty_run_directory(tmp_path: Path) -> None:
    with pytest.raises(RunDataError, match=r"run directory '.*nowhere' does not exist"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "empty" / "trials").mkdir(parents=True)
    with pytest.raises(RunDataError, match="has no trial results"):
        load_run(tmp_path / "empty")
