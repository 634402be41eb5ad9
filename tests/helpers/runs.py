"""Run directories and specs: specs written for `sweeps run`, runs written here as `sweeps
run` writes them, the frames a run directory holds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

EPOCHS = 3  # what a trial of `trial_row` trained


def write_spec(path: Path, **spec: object) -> str:
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def sleepy_spec(path: Path, xs: list[int], **extra: object) -> Path:
    """One configuration at a time, each three epochs of 0.3 s: a run slow enough to catch
    between its rows."""
    path.write_text(yaml.safe_dump({
        "name": "sleepy", "trainer": "user_trainers:steady", "dataset": None,
        "base": {"epochs": 3, "sleep_s": 0.3}, "grid": {"x": xs}, "max_concurrent": 1, **extra,
    }))  # fmt: skip
    return path


def frames(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A run directory's trials and epochs, as pandas reads them."""
    return pd.read_parquet(run_dir / "trials"), pd.read_parquet(run_dir / "epochs")


def read_run(results: Path) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """The one run under a results location: its directory, trials and epochs."""
    (run_dir,) = [p for p in results.glob("*/*") if p.is_dir()]
    return run_dir, *frames(run_dir)


def assert_each_configuration_once(run_dir: Path, xs: list[int], kept: pd.DataFrame) -> None:
    """A resumed `sleepy_spec` run: every configuration finished once, those of `kept` (the
    trials before the resume) not trained again."""
    trials = pd.read_parquet(run_dir / "trials")
    assert sorted(trials["x"]) == xs, trials[["x", "trial_id"]]
    assert sorted(trials["config_index"]) == list(range(len(xs)))
    assert set(trials["status"]) == {"TERMINATED"}
    again = trials.set_index("trial_id").loc[kept["trial_id"], "started_at"]
    assert list(again) == list(kept["started_at"])  # not trained again
    epochs = pd.read_parquet(run_dir / "epochs")
    assert (epochs.groupby("trial_id").size() == 3).all() and epochs["trial_id"].nunique() == len(
        xs
    )


def confusion(correct: int, seed: int) -> list[int]:
    """A 10x10 row-major matrix with a strong diagonal and a little noise off it."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 6, size=(10, 10))
    np.fill_diagonal(counts, correct)
    return counts.ravel().tolist()


def trial_row(trial_id: str, accuracy: float, **config: object) -> dict[str, object]:
    """A finished trial of run r1, every result column `sweeps run` writes."""
    return {
        "run_id": "r1",
        "trial_id": trial_id,
        "status": "TERMINATED",
        "error": None,
        **config,
        "train_loss": 1 - accuracy,
        "train_accuracy": accuracy + 0.01,
        "val_loss": 1.1 - accuracy,
        "val_accuracy": accuracy,
        "test_accuracy": accuracy - 0.005,
        "epochs_completed": EPOCHS,
        "confusion": confusion(int(accuracy * 1000), seed=len(trial_id) + int(accuracy * 100)),
    }


def epochs_for(
    trials: pd.DataFrame,
    names: tuple[str, str] = ("train_loss", "train_accuracy"),
    epochs: int = EPOCHS,
) -> pd.DataFrame:
    """`epochs` epochs of each finished trial, rising to its val_accuracy; the training
    metrics under `names`."""
    rows = []
    for _, trial in trials[trials["status"] == "TERMINATED"].iterrows():
        for epoch in range(1, epochs + 1):
            accuracy = trial["val_accuracy"] - 0.05 * (epochs - epoch)
            rows.append({"run_id": trial["run_id"], "trial_id": trial["trial_id"], "epoch": epoch,
                         names[0]: 1 - accuracy, names[1]: accuracy + 0.01,
                         "val_loss": 1.1 - accuracy, "val_accuracy": accuracy})  # fmt: skip
    return pd.DataFrame(rows)


def _write_per_trial(frame: pd.DataFrame, folder: Path) -> None:
    """A Parquet file a trial, named by its id, as pyarrow writes it (no pandas metadata)."""
    folder.mkdir(parents=True)
    if frame.empty:
        return
    for trial_id, rows in frame.groupby("trial_id", sort=False):
        table = pa.Table.from_pandas(rows, preserve_index=False).replace_schema_metadata(None)
        pq.write_table(table, folder / f"{trial_id}.parquet")


def write_run(
    root: Path,
    trials: pd.DataFrame | None = None,
    grid: dict[str, list] | None = None,
    *,
    epochs: int = 2,
    name: str = "sweep",
    **spec: object,
) -> Path:
    """A run directory as `sweeps run` writes one, <root>/<name>/<the trials' run_id>: a
    Parquet file a trial in trials/, and in epochs/ `epochs` epochs of each finished trial
    (`epochs_for`); spec.yaml (`name`, `grid`, then `spec`: repeats, reference, ...);
    manifest.json. By default run-2's two finished trials, t_00000 and t_00001: batch sizes
    64 and 32 at val_accuracy 0.90 and 0.91, val_loss 0.3, in a grid of those two."""
    if trials is None:
        trials = pd.DataFrame([
            {"run_id": "run-2", "trial_id": f"t_{index:05d}", "status": "TERMINATED",
             "batch_size": batch_size, "val_accuracy": 0.9 + index / 100, "val_loss": 0.3}
            for index, batch_size in enumerate([64, 32])
        ])  # fmt: skip
    run_id = str(trials["run_id"].iloc[0])
    run_dir = root / name / run_id
    _write_per_trial(trials, run_dir / "trials")
    _write_per_trial(epochs_for(trials, epochs=epochs), run_dir / "epochs")
    spec = {"name": name, "grid": grid or {"batch_size": [64, 32]}, **spec}
    (run_dir / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (run_dir / "manifest.json").write_text(json.dumps({"run_id": run_id, "host": "h"}))
    return run_dir


def write_pandas_run(root: Path) -> Path:
    """A run written by pandas, as a script of a user's might leave one: no manifest, two
    trials t_0 and t_1 of seed 0 (repeats 2, so `seed` is swept), batch sizes 64 and 32 at
    val_accuracy 0.90 and 0.91, two epochs each; a reference in the spec."""
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


def truncate(file: Path) -> None:
    """What a copy cut short leaves: the first half of the bytes."""
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])
