"""The Parquet results of a run, written on the driver as trials end.

    <run_dir>/trials/<trial_id>.parquet   a row per configuration: config and final metrics
    <run_dir>/epochs/<trial_id>.parquet   a row per configuration and epoch

A Tune trial trains a group of configurations (sweeps.plan); each configuration gets a
row with a trial_id of its own (`<tune trial id>-<k>` in a group of several, whose Tune
trial id is then `bundle_id`), so a fused run reads exactly like an unfused one.
`config_index` is the configuration's place in the run plan: resume trains exactly those
without a trials row. Each file is written whole or not at all, the epochs file first, so
a trials row means the configuration's epochs are on disk too.

The columns are fixed from the configurations before the first trial; a scalar a trainer
reports beyond the built-in metrics (a custom metric) becomes a column of its own when
first seen. Every file has the fixed columns, and a custom metric's column where a row of
it has a value. Adding a column rewrites no file but one: the folder's first in name
order, which holds every column, since a pyarrow dataset (`pd.read_parquet(folder)`) takes
its columns from its first file and reads the others' missing columns as nulls. A column
has one type in every file that has it: one whose type widens (see `_widen`: at most
twice) is rewritten in those files.

An int beyond int64 (a 64-bit seed) makes its column text: its decimal digits, exactly,
where a float would round it.

A column name means one thing, of one type, in both folders, so that the two frames merge
and one pyarrow dataset reads both: the epochs' training loss and accuracy are
`train_loss` and `train_accuracy`, as in the trials (the trainer reports `loss`, which is
also a config key); a config key named like a result column becomes `config_<key>`; a
custom metric named like a config key, or like a column the writer fills itself
(`run_id`, `status`, ...), becomes `metric_<name>`, in both folders.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.rundir import EPOCHS, TRIALS, RunDir
from sweeps.protocol import EPOCH, Report, divergence, scalars
from sweeps.storage import Place, StorageError

DONE, FAILED, DIVERGED = "TERMINATED", "ERROR", "DIVERGED"

EPOCH_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("trial_id", pa.string()),
        ("epoch", pa.int64()),
        ("train_loss", pa.float64()),
        ("train_accuracy", pa.float64()),
        ("val_loss", pa.float64()),
        ("val_accuracy", pa.float64()),
        ("epoch_time_s", pa.float64()),
    ]
)
EPOCH_METRICS = [name for name in EPOCH_SCHEMA.names if name not in ("run_id", "trial_id")]
# The trainer's names for the training metrics of an epoch -> their columns.
EPOCH_NAMES = {"loss": "train_loss", "accuracy": "train_accuracy"}

_HEAD = [("run_id", pa.string()), ("trial_id", pa.string()), ("bundle_id", pa.string()),
         ("config_index", pa.int64()), ("status", pa.string()), ("error", pa.string())]  # fmt: skip
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
    ("device_name", pa.string()),
    ("threads", pa.int64()),
    ("gpu_fraction", pa.float64()),
    ("confusion", pa.list_(pa.int64())),  # 100 ints, row-major, true x predicted
    ("started_at", pa.timestamp("us", tz="UTC")),
    ("finished_at", pa.timestamp("us", tz="UTC")),
]
RESULT_COLUMNS = {name for name, _ in _HEAD + _METRICS} | set(EPOCH_SCHEMA.names)
# The columns the writer fills itself, never from a metric of the name: such a metric
# would overwrite a join key, or change a column's type in one folder and then the other.
OWN_COLUMNS = {name for name, _ in _HEAD} | {"started_at", "finished_at", "gpu_fraction",
                                            *EPOCH_NAMES.values()}  # fmt: skip
# What a trainer reports that has a column of its own already (train_ prefixed, or a
# bookkeeping value of the last epoch): not a custom metric of the trials table.
_KNOWN_FINAL = (RESULT_COLUMNS - OWN_COLUMNS) | {*EPOCH_NAMES, "epoch", "epoch_time_s"}


def config_column(key: str) -> str:
    """A config key's column: its own name, unless a result column already has it."""
    return f"config_{key}" if key in RESULT_COLUMNS else key


def metric_column(name: str, config_columns: set[str]) -> str:
    """A custom metric's column: its own name, unless a config column or a column the
    writer fills itself has it."""
    return f"metric_{name}" if name in config_columns or name in OWN_COLUMNS else name


def trial_schema(configs: list[dict[str, Any]]) -> pa.Schema:
    """The trials schema: fixed columns around one column per config key."""
    values: dict[str, list[Any]] = {}
    for config in configs:
        for key, value in config.items():
            values.setdefault(key, []).append(value)
    config_fields = [(config_column(key), _arrow_type(vals)) for key, vals in values.items()]
    return pa.schema(_HEAD + config_fields + _METRICS)


def _arrow_type(values: list[Any]) -> pa.DataType:
    try:
        return pa.array(values).type
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # Mixed kinds of value, or an int beyond int64: stored as their text, exactly.
        return pa.string()


def _cell(value: Any, type_: pa.DataType) -> Any:
    return str(value) if type_ == pa.string() and value is not None else value


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclasses.dataclass
class _Trial:
    indices: list[int]  # the configurations it trains
    started: dt.datetime
    epochs: list[list[dict[str, Any]]]  # per member, per epoch
    finals: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)  # by member
    errors: dict[int, str] = dataclasses.field(default_factory=dict)  # a pack's, by member


def configuration_id(trial_id: str, position: int, size: int) -> str:
    """A configuration's `trial_id` in the rows: its Tune trial's id, with `-<position>`
    in a trial that trains several (a fused bundle, a pack)."""
    return f"{trial_id}-{position}" if size > 1 else trial_id


class RunWriter:
    """Collects each Tune trial's reports and writes its two files when it ends.

    Knows nothing of Ray: a trial is a key (Tune's trial id) and the indices of the
    configurations it trains.
    """

    def __init__(
        self, run_dir: Place, run_id: str, configs: list[dict[str, Any]], gpu_fraction: float
    ) -> None:
        self.run_dir, self.run_id = run_dir, run_id
        self.configs, self.gpu_fraction = configs, gpu_fraction
        self.schemas = {TRIALS: trial_schema(configs), EPOCHS: EPOCH_SCHEMA}
        # The columns every file has; a custom metric's only the files with a value of it.
        self._fixed = {folder: set(schema.names) for folder, schema in self.schemas.items()}
        # The columns of each file written, by folder and file name: which files a column
        # that widens must rewrite, without reading every file again.
        self._files = {TRIALS: self._written_schemas(TRIALS), EPOCHS: self._written_schemas(EPOCHS)}
        for folder, files in self._files.items():  # a resumed run: the columns its files have
            for written in files.values():
                self.schemas[folder] = _widen(self.schemas[folder], written)
        self.schemas[TRIALS], self.schemas[EPOCHS] = _agree(
            self.schemas[TRIALS], self.schemas[EPOCHS]
        )
        for folder in (TRIALS, EPOCHS):  # a run cut short amid a rewrite, or a first file gone
            self._settle(folder, None)
        self._trials: dict[str, _Trial] = {}
        # Members of a trial written already (a pack's bundle that ended): kept when the
        # trial starts over, so that a retry never writes them twice.
        self._written: dict[str, set[int]] = {}

    def start(self, key: str, indices: list[int]) -> None:
        """A trial starts (or starts over after a failure: the failed attempt is forgotten)."""
        self._trials[key] = _Trial(list(indices), _now(), [[] for _ in indices])
        self._written.setdefault(key, set())

    def report(self, key: str, report: Report) -> None:
        """An epoch's or a final report. A final one for some members only (a pack's
        bundle that ended) writes their rows now: the rest of the pack may take hours."""
        trial = self._trials[key]
        if report.kind == EPOCH:
            for position, metrics in report.placed():
                trial.epochs[position].append(scalars(metrics))
            return
        for number, (position, metrics) in enumerate(report.placed()):
            trial.finals[position] = metrics
            if report.errors and report.errors[number]:
                trial.errors[position] = report.errors[number]
        fresh = [p for p in report.positions or [] if p not in self._written[key]]
        if fresh:  # (a retried pack retrains what its first attempt wrote: not again)
            self._flush(key, fresh, None, f"{key}-{fresh[0]}")

    def end(self, key: str, error: str | None = None) -> None:
        """Write the rows of the trial's members not written yet: ERROR with `error`, or
        a pack member's own; else TERMINATED, or DIVERGED when its loss stopped being a
        number."""
        trial = self._trials[key]
        left = [k for k in range(len(trial.indices)) if k not in self._written[key]]
        if left:
            self._flush(key, left, error, key)
        del self._trials[key]

    def _flush(self, key: str, positions: list[int], error: str | None, name: str) -> None:
        """Write the rows of the trial's members at `positions` as files `name`."""
        trial = self._trials[key]
        bundle_id = key if len(trial.indices) > 1 else None
        rows, epoch_rows = [], []
        for k in positions:
            index, raw_final = trial.indices[k], trial.finals.get(k, {})
            member_id = configuration_id(key, k, len(trial.indices))
            epochs, final = trial.epochs[k], scalars(raw_final)
            failed = error or trial.errors.get(k)
            status, why = (FAILED, failed) if failed else (DONE, divergence(epochs, final))
            row = self._row(member_id, bundle_id, index, epochs, final, raw_final)
            row.update(status=DIVERGED if why and not failed else status, error=why,
                       started_at=trial.started)  # fmt: skip
            rows.append(row)
            epoch_rows += [{"run_id": self.run_id, "trial_id": member_id,
                            **self._epoch_columns(index, r)} for r in epochs]  # fmt: skip
        self._write(EPOCHS, name, epoch_rows)  # first: a trials row promises its epochs
        self._write(TRIALS, name, rows)
        self._written[key].update(positions)

    def _epoch_columns(self, index: int, metrics: dict[str, Any]) -> dict[str, Any]:
        """An epoch's metrics under their column names (see the module docstring)."""
        config = {config_column(key) for key in self.configs[index]}
        return {EPOCH_NAMES.get(name) or metric_column(name, config): value
                for name, value in metrics.items()}  # fmt: skip

    def _row(
        self,
        trial_id: str,
        bundle_id: str | None,
        index: int,
        epochs: list[dict[str, Any]],
        final: dict[str, Any],
        raw_final: dict[str, Any],
    ) -> dict[str, Any]:
        last = {**(epochs[-1] if epochs else {}), **final}  # stopped early: no final report
        config = {config_column(key): value for key, value in self.configs[index].items()}
        # A custom metric never takes the place of a configuration's value or of ours.
        custom = {metric_column(name, set(config)): value
                  for name, value in last.items() if name not in _KNOWN_FINAL}  # fmt: skip
        confusion = raw_final.get("confusion")
        return {
            **custom,
            **{
                name: final[name]
                for name, _ in _METRICS
                if name in final and name not in OWN_COLUMNS
            },
            "run_id": self.run_id,
            "trial_id": trial_id,
            "bundle_id": bundle_id,
            "config_index": index,
            "train_loss": last.get("loss"),
            "train_accuracy": last.get("accuracy"),
            "val_loss": last.get("val_loss"),
            "val_accuracy": last.get("val_accuracy"),
            "epochs_completed": final.get("epochs_completed", len(epochs)),
            "gpu_fraction": self.gpu_fraction,
            "confusion": [int(n) for row in confusion for n in row] if confusion else None,
            "finished_at": _now(),
            **config,
        }

    def _write(self, folder: str, key: str, rows: list[dict[str, Any]]) -> None:
        name, before = f"{key}.parquet", self.schemas[folder]
        grown = _widen(before, _schema_of(rows))
        other = EPOCHS if folder == TRIALS else TRIALS
        grown, agreed = _agree(grown, self.schemas[other])
        if agreed != self.schemas[other]:  # a metric both folders have: one type in both
            widened = _widened(self.schemas[other], agreed)
            self.schemas[other] = agreed
            self._settle(other, widened)
        self.schemas[folder] = grown
        if grown != before:
            self._settle(folder, _widened(before, grown), coming=name)
        files = self._files[folder]
        first = not files or name <= min(files)
        present = {column for row in rows for column, value in row.items() if value is not None}
        schema = pa.schema([field for field in grown if first or field.name in present
                            or field.name in self._fixed[folder]])  # fmt: skip
        cells = [{field.name: _cell(row.get(field.name), field.type) for field in schema}
                 for row in rows]  # fmt: skip
        (self.run_dir / folder / name).write_parquet(pa.Table.from_pylist(cells, schema=schema))
        files[name] = schema

    def _written_schemas(self, folder: str) -> dict[str, pa.Schema]:
        """The schema of each file of the folder, by name. StorageError naming a file
        that cannot be read."""
        schemas = {}
        for path in (self.run_dir / folder).parquet_files():
            try:
                schemas[os.path.basename(path)] = pq.read_schema(path, filesystem=self.run_dir.fs)
            except (OSError, pa.ArrowException) as error:
                raise _unreadable(path, folder, error) from None
        return schemas

    def _settle(self, folder: str, widened: set[str] | None, coming: str | None = None) -> None:
        """Rewrite the files a reader would see disagree with the folder's schema: those
        with a column of a type since widened (the columns `widened`; None: any), and the
        first in name order when it lacks a column, unless `coming` (about to be written,
        with every column) comes first."""
        schema, files = self.schemas[folder], self._files[folder]
        stale: list[str] = []
        if widened != set():  # (a column added, none widened: no file lags)
            stale = [name for name, written in files.items()
                     if any(field.type != schema.field(field.name).type for field in written
                            if widened is None or field.name in widened)]  # fmt: skip
        first = min(files, default=None)
        if first is not None and (coming is None or first < coming):
            if first not in stale and not set(schema.names) <= set(files[first].names):
                stale.append(first)
        else:
            first = None
        for name in stale:
            self._rewrite(folder, name, every_column=name == first)

    def _rewrite(self, folder: str, name: str, every_column: bool) -> None:
        """A file with its columns widened to the folder's schema, and with the columns it
        lacks added (empty) if `every_column`."""
        place, schema = self.run_dir / folder / name, self.schemas[folder]
        table = pq.read_table(place.path, filesystem=place.fs)
        have = {field.name: field.type for field in table.schema}
        columns = [field for field in schema if every_column or field.name in have]
        arrays = [_cast(table.column(field.name), field.type) if field.name in have
                  else pa.nulls(len(table), field.type) for field in columns]  # fmt: skip
        written = pa.schema(columns)
        place.write_parquet(pa.Table.from_arrays(arrays, schema=written))
        self._files[folder][name] = written


def _schema_of(rows: list[dict[str, Any]]) -> pa.Schema:
    values: dict[str, list[Any]] = {}
    for row in rows:
        for name, value in row.items():
            if value is not None:
                values.setdefault(name, []).append(value)
    return pa.schema([(name, _arrow_type(vals)) for name, vals in values.items()])


def _widened(before: pa.Schema, after: pa.Schema) -> set[str]:
    """The columns of `before` whose type `after` has widened."""
    return {field.name for field in before if after.field(field.name).type != field.type}


def _cast(column: pa.ChunkedArray, type_: pa.DataType) -> pa.ChunkedArray:
    if column.type == type_:
        return column
    try:
        return column.cast(type_)
    except pa.ArrowNotImplementedError:  # pyarrow has no cast of a list to text
        return pa.chunked_array([pa.array([_cell(v, type_) for v in column.to_pylist()], type_)])


def _agree(first: pa.Schema, second: pa.Schema) -> tuple[pa.Schema, pa.Schema]:
    """The two schemas with each column they share widened to one type in both."""
    for name in set(first.names) & set(second.names):
        a, b = first.field(name).type, second.field(name).type
        if a != b:
            wide = _widen(pa.schema([(name, a)]), pa.schema([(name, b)])).field(name).type
            first = first.set(first.get_field_index(name), pa.field(name, wide))
            second = second.set(second.get_field_index(name), pa.field(name, wide))
    return first, second


def _widen(schema: pa.Schema, other: pa.Schema | None) -> pa.Schema:
    """`schema` with the columns of `other` it lacks appended; a column whose values
    disagree in kind becomes float64 (int and float) or text."""
    if other is None:
        return schema
    fields = {field.name: field.type for field in schema}
    for field in other:
        known = fields.get(field.name)
        if known is None:
            fields[field.name] = field.type
        elif known != field.type:
            numbers = all(pa.types.is_integer(t) or pa.types.is_floating(t)
                          for t in (known, field.type))  # fmt: skip
            if not (numbers and pa.types.is_floating(known)):
                fields[field.name] = pa.float64() if numbers else pa.string()
    return pa.schema(list(fields.items()))


def read_trials(run_dir: str | Place) -> pd.DataFrame:
    """The trials written so far (local path or URI); an empty frame before the first."""
    where = RunDir.of(run_dir) if isinstance(run_dir, str) else RunDir(run_dir, run_dir.uri)
    frame = where.read_folder(TRIALS)
    return frame if len(frame) else pd.DataFrame(columns=["trial_id", "config_index", "status"])


def finished_configs(run_dir: Place) -> set[int]:
    """The configurations with a trials row, and so never trained again; epochs files of a
    trial whose trials file never landed (the driver died in between) are removed.
    StorageError naming a trials file that cannot be read."""
    done: set[int] = set()
    names = set()
    for path in (run_dir / TRIALS).parquet_files():
        names.add(os.path.basename(path))
        try:
            table = pq.read_table(path, filesystem=run_dir.fs)
        except (OSError, pa.ArrowException) as error:
            raise _unreadable(path, TRIALS, error) from None
        if "config_index" not in table.column_names:
            raise StorageError(f"{path} has no config_index: written before sweeps could resume")
        done.update(int(index) for index in table.column("config_index").drop_null().to_pylist())
    for path in (run_dir / EPOCHS).parquet_files():
        if os.path.basename(path) not in names:
            run_dir.fs.delete_file(path)
    return done


def _unreadable(path: str, folder: str, error: Exception) -> StorageError:
    reason = str(error).splitlines()[0].split(". ")[0].replace(path, "").strip(" :'")
    return StorageError(f"{path} is not a readable {folder} file ({reason})")
