"""The Parquet results of a run, written by a Tune callback on the driver as trials finish.

    <run_dir>/trials/<trial_id>.parquet   one row: the trial's config and final metrics
    <run_dir>/epochs/<trial_id>.parquet   one row per epoch

A fused trial (sweeps.fusion) trains a bundle of configurations; its files hold one row
per configuration (per epoch), each with a trial_id of its own (`<bundle_id>-<k>`) and
the Tune trial's id in `bundle_id`, so a fused run reads exactly like an unfused one.

Each file is written whole or not at all (locally under a dot-name renamed into place), so
`pd.read_parquet` of either folder (which skips dot-files) sees only whole files at any
moment, and a crash loses no finished trial. Every file of a run has the same schema,
fixed from the spec before the first trial starts.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
from ray import cloudpickle, tune

from sweeps.spec import SweepSpec, expand
from sweeps.storage import Place

EPOCH_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("trial_id", pa.string()),
        ("epoch", pa.int64()),
        ("loss", pa.float64()),
        ("accuracy", pa.float64()),
        ("val_loss", pa.float64()),
        ("val_accuracy", pa.float64()),
        ("epoch_time_s", pa.float64()),
    ]
)
EPOCH_METRICS = [name for name in EPOCH_SCHEMA.names if name not in ("run_id", "trial_id")]

_HEAD = [("run_id", pa.string()), ("trial_id", pa.string()), ("bundle_id", pa.string()),
         ("status", pa.string()), ("error", pa.string())]  # fmt: skip
_METRICS = [
    ("train_loss", pa.float64()),
    ("train_accuracy", pa.float64()),
    ("val_loss", pa.float64()),
    ("val_accuracy", pa.float64()),
    ("test_loss", pa.float64()),
    ("test_accuracy", pa.float64()),
    ("train_time_s", pa.float64()),
    ("params", pa.int64()),
    ("epochs_completed", pa.int64()),
    ("device", pa.string()),
    ("gpu_fraction", pa.float64()),
    ("confusion", pa.list_(pa.int64())),  # 100 ints, row-major, true x predicted
    ("started_at", pa.timestamp("us", tz="UTC")),
    ("finished_at", pa.timestamp("us", tz="UTC")),
]
RESULT_COLUMNS = {name for name, _ in _HEAD + _METRICS}


def config_column(key: str) -> str:
    """A config key's column: its own name, unless a result column already has it."""
    return f"config_{key}" if key in RESULT_COLUMNS else key


def trial_schema(spec: SweepSpec) -> pa.Schema:
    """The trials schema: fixed columns around one column per config key of the spec."""
    values: dict[str, list[Any]] = {}
    for config in expand(spec):
        for key, value in config.items():
            values.setdefault(key, []).append(value)
    config_fields = [(config_column(key), _arrow_type(vals)) for key, vals in values.items()]
    return pa.schema(_HEAD + config_fields + _METRICS)


def _arrow_type(values: list[Any]) -> pa.DataType:
    try:
        return pa.array(values).type
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.string()  # mixed kinds of value: stored as their text


def _cell(value: Any, type_: pa.DataType) -> Any:
    return str(value) if type_ == pa.string() and value is not None else value


def error_message(trial: Any) -> str:
    """The trial's exception as one line: `ValueError: ...`, not Ray's wrapped traceback.

    Read from the files Tune has just written on the driver (its storage copy is synced
    later, so Trial.get_pickled_error may not see it yet).
    """
    error = None
    if trial.pickled_error_file and os.path.exists(trial.pickled_error_file):
        try:
            with open(trial.pickled_error_file, "rb") as file:
                error = cloudpickle.load(file)
        except Exception:  # an error that does not unpickle here: use the text instead
            error = None
    if error is not None:
        cause = getattr(error, "cause", None) or error
        return " ".join(f"{type(cause).__name__}: {cause}".split())
    text = ""
    if trial.error_file and os.path.exists(trial.error_file):
        text = Path(trial.error_file).read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class ParquetWriter(tune.Callback):
    """Collects each trial's reports and writes its two files when it ends.

    With `bundles` (a fused run), a trial's config is `{"bundle": i}`, its configurations
    are `bundles[i]` and its reports carry their metrics as `members`.
    """

    def __init__(
        self,
        run_dir: Place,
        run_id: str,
        schema: pa.Schema,
        gpu_fraction: float,
        bundles: list[list[dict[str, Any]]] | None = None,
    ):
        self.run_dir = run_dir
        self.run_id = run_id
        self.schema = schema
        self.gpu_fraction = gpu_fraction
        self.bundles = bundles
        self._epochs: dict[str, list[list[dict[str, Any]]]] = {}  # per member, per epoch
        self._final: dict[str, list[dict[str, Any]]] = {}  # per member
        self._started: dict[str, dt.datetime] = {}

    def configs(self, trial: Any) -> list[dict[str, Any]]:
        """The configurations a trial trains."""
        return self.bundles[trial.config["bundle"]] if self.bundles else [trial.config]

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._reset(trial)
        self._started[trial.trial_id] = _now()

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._reset(trial)  # a retry starts from scratch: forget the failed attempt

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        members = result.get("members", [result])
        if result.get("kind") == "epoch":
            per_member = self._epochs.setdefault(trial.trial_id, [[] for _ in members])
            for rows, metrics in zip(per_member, members, strict=True):
                rows.append({name: metrics.get(name) for name in EPOCH_METRICS})
        elif result.get("kind") == "final":
            self._final[trial.trial_id] = members

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.write_trial(trial, "TERMINATED", None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.write_trial(trial, "ERROR", error_message(trial))

    def _reset(self, trial: Any) -> None:
        self._epochs[trial.trial_id] = [[] for _ in self.configs(trial)]
        self._final.pop(trial.trial_id, None)

    def write_trial(self, trial: Any, status: str, error: str | None) -> None:
        trial_id = trial.trial_id
        configs = self.configs(trial)
        epochs = self._epochs.pop(trial_id, None) or [[] for _ in configs]
        finals = self._final.pop(trial_id, None) or [{} for _ in configs]
        started = self._started.pop(trial_id, None)
        bundle_id = trial_id if len(configs) > 1 else None
        rows, epoch_rows = [], []
        for k, config in enumerate(configs):
            member_id = f"{trial_id}-{k}" if bundle_id else trial_id
            rows.append(self._row(member_id, bundle_id, config, epochs[k], finals[k]))
            rows[-1].update(status=status, error=error, started_at=started)
            epoch_rows += [{"run_id": self.run_id, "trial_id": member_id, **r} for r in epochs[k]]
        table = pa.Table.from_pylist(rows, schema=self.schema)
        (self.run_dir / "trials" / f"{trial_id}.parquet").write_parquet(table)
        epoch_table = pa.Table.from_pylist(epoch_rows, schema=EPOCH_SCHEMA)
        (self.run_dir / "epochs" / f"{trial_id}.parquet").write_parquet(epoch_table)

    def _row(
        self,
        trial_id: str,
        bundle_id: str | None,
        config: dict[str, Any],
        epochs: list[dict[str, Any]],
        final: dict[str, Any],
    ) -> dict[str, Any]:
        last = {**(epochs[-1] if epochs else {}), **final}  # stopped early: no final report
        confusion = final.get("confusion")
        row = {
            "run_id": self.run_id,
            "trial_id": trial_id,
            "bundle_id": bundle_id,
            "train_loss": last.get("loss"),
            "train_accuracy": last.get("accuracy"),
            "val_loss": last.get("val_loss"),
            "val_accuracy": last.get("val_accuracy"),
            "test_loss": final.get("test_loss"),
            "test_accuracy": final.get("test_accuracy"),
            "train_time_s": final.get("train_time_s"),
            "params": final.get("params"),
            "epochs_completed": final.get("epochs_completed", len(epochs)),
            "device": final.get("device"),
            "gpu_fraction": self.gpu_fraction,
            "confusion": [int(n) for row in confusion for n in row] if confusion else None,
            "finished_at": _now(),
        }
        for key, value in config.items():
            column = config_column(key)
            if column in self.schema.names:
                row[column] = _cell(value, self.schema.field(column).type)
        return row
