"""sweeps: hyperparameter sweeps for PyTorch on Ray Tune, with Parquet results.

The rooms, each importing only those below it (and trainers/, analysis/):

    cli/      the `sweeps` command line: flags in, one-line errors and exit codes out
    runs/     a run on Ray Tune: checks, the run directory and its lock, the trainable
    record/   what the driver records: trial reports decoded once into events, and the
              listeners that take them (Parquet, progress, TensorBoard, W&B, MLflow)
    cluster/  Ray itself: the embedded session or a cluster joined, resources, Ray Jobs
    plan/     what to run: a spec (YAML, presets, the flags' overrides) and its plan
    api.py    `sweeps.run(spec, **overrides)`: `sweeps run` from Python, for notebooks
"""

from typing import Any

from sweeps.version import __version__

__all__ = ["__version__", "load_model", "run"]


def __getattr__(name: str) -> Any:
    """`sweeps.run` and `sweeps.load_model`, the Python API (sweeps.api), imported when
    first asked for: the command line, which imports this package first, does not pay
    for it."""
    if name in ("run", "load_model"):
        from sweeps import api

        return getattr(api, name)
    raise AttributeError(f"module 'sweeps' has no attribute {name!r}")
