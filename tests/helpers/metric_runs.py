"""A run of a model with metrics of its own, written to Parquet as `sweeps run` writes one:
the issue's CNN, a grid of lr x width with repeats 2 and `val_macro_f1`, `val_top2` per
epoch."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

LRS = [0.001, 0.01, 0.1]
WIDTHS = [32, 64]
SEEDS = [0, 1]
EPOCHS = 3
CUSTOM = ["val_macro_f1", "val_top2"]


def f1(lr: float, width: int, seed: int) -> float:
    """The best at lr 0.01, width 64; seeds 0.002 apart."""
    return 0.9 - abs(LRS.index(lr) - 1) * 0.05 + (width == 64) * 0.02 + seed * 0.002


def custom_trials(run_id: str = "cnn-1") -> pd.DataFrame:
    """A finished trial a configuration, every column `sweeps run` writes of it, and the
    custom metrics; test_accuracy empty (the spec names no test split)."""
    rows = []
    for index, (lr, width, seed) in enumerate(
        (lr, width, seed) for seed in SEEDS for lr in LRS for width in WIDTHS
    ):
        score = f1(lr, width, seed)
        rows.append({
            "run_id": run_id, "trial_id": f"c_{index:05d}", "bundle_id": None,
            "config_index": index, "status": "TERMINATED", "error": None,
            "lr": lr, "width": width, "seed": seed, "epochs": EPOCHS,
            "train_loss": 1 - score, "train_accuracy": score + 0.01, "val_loss": 1.1 - score,
            "val_accuracy": score - 0.01, "test_loss": None, "test_accuracy": None,
            "train_time_s": 2.5, "params": 1000 * width, "epochs_completed": EPOCHS,
            "val_macro_f1": score, "val_top2": score + 0.05,
        })  # fmt: skip
    return pd.DataFrame(rows)


def custom_epochs(trials: pd.DataFrame) -> pd.DataFrame:
    """Each trial's epochs, rising to its final figures, custom metrics too."""
    rows = []
    for _, trial in trials.iterrows():
        for epoch in range(1, EPOCHS + 1):
            behind = 0.05 * (EPOCHS - epoch)
            rows.append({
                "run_id": trial["run_id"], "trial_id": trial["trial_id"], "epoch": epoch,
                "train_loss": trial["train_loss"] + behind,
                "train_accuracy": trial["train_accuracy"] - behind,
                "val_loss": trial["val_loss"] + behind,
                "val_accuracy": trial["val_accuracy"] - behind, "epoch_time_s": 0.8,
                **{name: trial[name] - behind for name in CUSTOM},
            })  # fmt: skip
    return pd.DataFrame(rows)


def write_custom_run(root: Path, trials: pd.DataFrame | None = None, **spec: object) -> Path:
    """<root>/cnn/<run id>: a Parquet file a trial in trials/ and epochs/, spec.yaml with
    `metric: val_macro_f1` (and `spec`), manifest.json of a run that ended."""
    trials = custom_trials() if trials is None else trials
    run_dir = root / "cnn" / str(trials["run_id"].iloc[0])
    for folder, frame in (("trials", trials), ("epochs", custom_epochs(trials))):
        (run_dir / folder).mkdir(parents=True)
        for trial_id, rows in frame.groupby("trial_id", sort=False):
            table = pa.Table.from_pandas(rows, preserve_index=False).replace_schema_metadata(None)
            pq.write_table(table, run_dir / folder / f"{trial_id}.parquet")
    full = {"name": "cnn", "trainer": "my_models:cnn", "dataset": "mnist",
            "metric": "val_macro_f1", "mode": "max", "base": {"epochs": EPOCHS},
            "grid": {"lr": LRS, "width": WIDTHS}, "repeats": len(SEEDS), **spec}  # fmt: skip
    (run_dir / "spec.yaml").write_text(yaml.safe_dump(full, sort_keys=False))
    manifest = {"run_id": trials["run_id"].iloc[0], "trials": len(trials),
                "started_at": "2026-11-22T00:00:00+00:00",
                "finished_at": "2026-11-22T00:05:00+00:00"}  # fmt: skip
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir
