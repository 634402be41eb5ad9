"""sweeps: hyperparameter sweeps for PyTorch on Ray Tune, with Parquet results.

The rooms, each importing only those below it (and trainers/, analysis/):

    cli/      the `sweeps` command line: flags in, one-line errors and exit codes out
    run/      a run on Ray Tune: checks, the run directory and its lock, the trainable
    record/   what the driver records: trial reports decoded once into events, and the
              listeners that take them (Parquet, progress, TensorBoard, W&B, MLflow)
    cluster/  Ray itself: the embedded session or a cluster joined, resources, Ray Jobs
    plan/     what to run: a spec (YAML, presets, the flags' overrides) and its plan
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sweeps")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
