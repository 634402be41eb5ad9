"""The Parquet results of a run, written on the driver as trials end.

    <run_dir>/trials/<trial_id>.parquet   a row per configuration: config and final metrics
    <run_dir>/epochs/<trial_id>.parquet   a row per configuration and epoch

and, once a large run has ended, `part-compact-<n>.parquet` in each, holding the rows of
the files it replaced (sweeps.record.compact); a resumed run adds small files again.

A Tune trial trains a group of configurations (sweeps.plan.groups); each configuration gets a
row with a trial_id of its own (`<tune trial id>-<k>` in a group of several, whose Tune
trial id is then `bundle_id`), so a fused run reads exactly like an unfused one.
`config_index` is the configuration's place in the run plan: resume trains exactly those
without a trials row. Each file is written whole or not at all, the epochs file first, so
a trials row means the configuration's epochs are on disk too. Before them, the log of the
configurations' Tune trial (sweeps.record.logs), which a failed one's `error` names.

The columns are fixed from the configurations before the first trial; a scalar a trainer
reports beyond the built-in metrics (a custom metric) becomes a column of its own when
first seen. Every file has the fixed columns, and a custom metric's column where a row of
it has a value. Adding a column rewrites no file but one: the folder's first in name
order, which holds every column, since a pyarrow dataset (`pd.read_parquet(folder)`) takes
its columns from its first file and reads the others' missing columns as nulls. A column
has one type in every file that has it: one whose type widens (see `widen`: at most
twice) is rewritten in those files.

An int beyond int64 (a 64-bit seed) makes its column text: its decimal digits, exactly,
where a float would round it.

Column names and types: sweeps.record.columns.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.place import Place, StorageError
from analysis.rundir import EPOCHS, TRIALS, RunDir, Status
from sweeps.record.columns import (
    EPOCH_NAMES,
    EPOCH_SCHEMA,
    KNOWN_FINAL,
    METRICS,
    OWN_COLUMNS,
    agree,
    cast,
    cell,
    config_column,
    metric_column,
    schema_of,
    trial_schema,
    widen,
    widened_columns,
)
from sweeps.record.events import Ended, Listener, Started
from sweeps.record.logs import TrialLogs, naming_log
from sweeps.record.protocol import scalars


class RunWriter(Listener):
    """Writes the rows of the configurations that end, as they end: the record of a run.

    Knows nothing of Ray: it takes the events of sweeps.record.fanout. `configs` show
    every key the run's configurations have and each kind of value (the plan's `shapes`):
    the trials' columns are made from them.
    """

    def __init__(
        self, run_dir: Place, run_id: str, configs: list[dict[str, Any]], gpu_fraction: float
    ) -> None:
        self.run_dir, self.run_id = run_dir, run_id
        self.gpu_fraction = gpu_fraction
        self.logs = TrialLogs(run_dir)
        self.schemas = {TRIALS: trial_schema(configs), EPOCHS: EPOCH_SCHEMA}
        # The columns every file has; a custom metric's only the files with a value of it.
        self._fixed = {folder: set(schema.names) for folder, schema in self.schemas.items()}
        # The columns of each file written, by folder and file name: which files a column
        # that widens must rewrite, without reading every file again.
        self._files = {TRIALS: self._written_schemas(TRIALS), EPOCHS: self._written_schemas(EPOCHS)}
        # Each folder's first file in name order: looked up per file written, kept, not found.
        self._first = {folder: min(files, default=None) for folder, files in self._files.items()}
        for folder, files in self._files.items():  # a resumed run: the columns its files have
            for written in files.values():
                self.schemas[folder] = widen(self.schemas[folder], written)
        self.schemas[TRIALS], self.schemas[EPOCHS] = agree(
            self.schemas[TRIALS], self.schemas[EPOCHS]
        )
        for folder in (TRIALS, EPOCHS):  # a run cut short amid a rewrite, or a first file gone
            self._settle(folder, None)

    def started(self, event: Started) -> None:
        self.logs.started(event.configuration, event.retry)

    def output(self, group: str, text: str) -> None:
        self.logs.add(group, text)

    def finished(self) -> None:
        self.logs.flush()

    def ended(self, name: str, events: list[Ended]) -> None:
        """Write the rows of configurations that ended together as the files `name`, after
        their trial's log (sweeps.record.logs), which a failed one's error names."""
        log = self.logs.write(events[0].configuration.group) if events else None
        rows, epoch_rows = [], []
        for event in events:
            configuration = event.configuration
            rows.append(self._row(event))
            if event.status == Status.FAILED:
                rows[-1]["error"] = naming_log(event.why, log)
            epoch_rows += [{"run_id": self.run_id, "trial_id": configuration.id,
                            **self._epoch_columns(configuration.config, epoch)}
                           for epoch in event.epochs]  # fmt: skip
        self._write(EPOCHS, name, epoch_rows)  # first: a trials row promises its epochs
        self._write(TRIALS, name, rows)

    def _epoch_columns(self, config: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
        """An epoch's metrics under their column names (see the module docstring)."""
        columns = {config_column(key) for key in config}
        return {EPOCH_NAMES.get(name) or metric_column(name, columns): value
                for name, value in metrics.items()}  # fmt: skip

    def _row(self, event: Ended) -> dict[str, Any]:
        configuration, final = event.configuration, scalars(event.final)
        # Stopped early (no final report): the last epoch's metrics are the row's.
        last = {**(event.epochs[-1] if event.epochs else {}), **final}
        config = {config_column(key): value for key, value in configuration.config.items()}
        # A custom metric never takes the place of a configuration's value or of ours.
        custom = {metric_column(name, set(config)): value
                  for name, value in last.items() if name not in KNOWN_FINAL}  # fmt: skip
        confusion = event.final.get("confusion")
        return {
            **custom,
            **{name: last[name] for name, _ in METRICS if name in last and name not in OWN_COLUMNS},
            "run_id": self.run_id,
            "trial_id": configuration.id,
            "bundle_id": configuration.bundle_id,
            "config_index": configuration.index,
            "train_loss": last.get("loss"),
            "train_accuracy": last.get("accuracy"),
            "val_loss": last.get("val_loss"),
            "val_accuracy": last.get("val_accuracy"),
            "epochs_completed": final.get("epochs_completed", len(event.epochs)),
            "gpu_fraction": self.gpu_fraction,
            "confusion": [int(n) for row in confusion for n in row] if confusion else None,
            "finished_at": _now(),
            **config,
            "status": event.status.value,
            "error": event.why,
            "started_at": event.started_at,
        }

    def _write(self, folder: str, key: str, rows: list[dict[str, Any]]) -> None:
        name, before = f"{key}.parquet", self.schemas[folder]
        grown = widen(before, schema_of(rows))
        other = EPOCHS if folder == TRIALS else TRIALS
        grown, agreed = agree(grown, self.schemas[other])
        if agreed != self.schemas[other]:  # a metric both folders have: one type in both
            widened = widened_columns(self.schemas[other], agreed)
            self.schemas[other] = agreed
            self._settle(other, widened)
        self.schemas[folder] = grown
        if grown != before:
            self._settle(folder, widened_columns(before, grown), coming=name)
        files, first_name = self._files[folder], self._first[folder]
        first = first_name is None or name <= first_name
        present = {column for row in rows for column, value in row.items() if value is not None}
        schema = pa.schema([field for field in grown if first or field.name in present
                            or field.name in self._fixed[folder]])  # fmt: skip
        cells = [{field.name: cell(row.get(field.name), field.type) for field in schema}
                 for row in rows]  # fmt: skip
        (self.run_dir / folder / name).write_parquet(pa.Table.from_pylist(cells, schema=schema))
        files[name] = schema
        if first:
            self._first[folder] = name

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
        first = self._first[folder]
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
        arrays = [cast(table.column(field.name), field.type) if field.name in have
                  else pa.nulls(len(table), field.type) for field in columns]  # fmt: skip
        written = pa.schema(columns)
        place.write_parquet(pa.Table.from_arrays(arrays, schema=written))
        self._files[folder][name] = written


def read_trials(run_dir: str | Place) -> pd.DataFrame:
    """The trials written so far (local path or URI); an empty frame before the first."""
    where = RunDir.of(run_dir) if isinstance(run_dir, str) else RunDir(run_dir, run_dir.uri)
    frame = where.read_folder(TRIALS)
    return frame if len(frame) else pd.DataFrame(columns=["trial_id", "config_index", "status"])


def finished_configs(run_dir: Place) -> set[int]:
    """The configurations with a trials row, and so never trained again; epochs files of a
    trial whose trials file never landed (the driver died in between) are removed, and so
    is a compacted epochs file whose trials file did not (sweeps.record.compact).
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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
