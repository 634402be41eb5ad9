"""The results' columns: their names and their types, in both folders.

A column name means one thing, of one type, in both folders, so that the two frames merge
and one pyarrow dataset reads both: the epochs' training loss and accuracy are
`train_loss` and `train_accuracy`, as in the trials (the trainer reports `loss`, which is
also a config key); a config key named like a result column becomes `config_<key>`; a
custom metric named like a config key, or like a column the writer fills itself
(`run_id`, `status`, ...), becomes `metric_<name>`, in both folders.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

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

HEAD = [("run_id", pa.string()), ("trial_id", pa.string()), ("bundle_id", pa.string()),
         ("config_index", pa.int64()), ("status", pa.string()), ("error", pa.string())]  # fmt: skip
METRICS = [
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
RESULT_COLUMNS = {name for name, _ in HEAD + METRICS} | set(EPOCH_SCHEMA.names)
# The columns the writer fills itself, never from a metric of the name: such a metric
# would overwrite a join key, or change a column's type in one folder and then the other.
OWN_COLUMNS = {name for name, _ in HEAD} | {"started_at", "finished_at", "gpu_fraction",
                                            *EPOCH_NAMES.values()}  # fmt: skip
# What a trainer reports that has a column of its own already (train_ prefixed, or a
# bookkeeping value of the last epoch): not a custom metric of the trials table.
KNOWN_FINAL = (RESULT_COLUMNS - OWN_COLUMNS) | {*EPOCH_NAMES, "epoch", "epoch_time_s"}


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
    config_fields = [(config_column(key), arrow_type(vals)) for key, vals in values.items()]
    return pa.schema(HEAD + config_fields + METRICS)


def arrow_type(values: list[Any]) -> pa.DataType:
    try:
        return pa.array(values).type
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # Mixed kinds of value, or an int beyond int64: stored as their text, exactly.
        return pa.string()


def cell(value: Any, type_: pa.DataType) -> Any:
    if type_ != pa.string() or value is None:
        return value
    # Spelled as `cast` spells the rows written before the column became text ("true", "1"
    # for True and 1.0), so that one value reads the same in every row; Python's spelling
    # where pyarrow has none (a list, an int beyond int64).
    try:
        return pa.array([value]).cast(pa.string())[0].as_py()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
        return str(value)


def schema_of(rows: list[dict[str, Any]]) -> pa.Schema:
    values: dict[str, list[Any]] = {}
    for row in rows:
        for name, value in row.items():
            if value is not None:
                values.setdefault(name, []).append(value)
    return pa.schema([(name, arrow_type(vals)) for name, vals in values.items()])


def widened_columns(before: pa.Schema, after: pa.Schema) -> set[str]:
    """The columns of `before` whose type `after` has widened."""
    return {field.name for field in before if after.field(field.name).type != field.type}


def cast(column: pa.ChunkedArray, type_: pa.DataType) -> pa.ChunkedArray:
    if column.type == type_:
        return column
    try:
        return column.cast(type_)
    except pa.ArrowNotImplementedError:  # pyarrow has no cast of a list to text
        return pa.chunked_array([pa.array([cell(v, type_) for v in column.to_pylist()], type_)])


def agree(first: pa.Schema, second: pa.Schema) -> tuple[pa.Schema, pa.Schema]:
    """The two schemas with each column they share widened to one type in both."""
    for name in set(first.names) & set(second.names):
        a, b = first.field(name).type, second.field(name).type
        if a != b:
            wide = widen(pa.schema([(name, a)]), pa.schema([(name, b)])).field(name).type
            first = first.set(first.get_field_index(name), pa.field(name, wide))
            second = second.set(second.get_field_index(name), pa.field(name, wide))
    return first, second


def widen(schema: pa.Schema, other: pa.Schema | None) -> pa.Schema:
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
