"""The results' column names and types, and how a column's type widens; real pyarrow
arrays and Parquet files. (The writer that uses them: test_results*.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sweeps.record.columns import (
    HEAD,
    METRICS,
    agree,
    arrow_type,
    cast,
    cell,
    config_column,
    metric_column,
    schema_of,
    trial_schema,
    widen,
    widened_columns,
)

BIG = 2**64 - 1  # what torch.initial_seed() may return


@pytest.mark.parametrize(
    ("key", "column"),
    [
        ("lr", "lr"),
        ("loss", "loss"),  # the epochs' loss is train_loss: no clash
        ("epochs", "epochs"),
        ("epoch", "config_epoch"),
        ("status", "config_status"),
        ("val_accuracy", "config_val_accuracy"),
        ("params", "config_params"),
        ("run_id", "config_run_id"),
    ],
)
def test_a_config_key_named_like_a_result_column_is_prefixed(key: str, column: str) -> None:
    assert config_column(key) == column


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("f1", "f1"),
        ("lr", "metric_lr"),  # a config column of the run
        ("run_id", "metric_run_id"),
        ("status", "metric_status"),
        ("finished_at", "metric_finished_at"),
        ("gpu_fraction", "metric_gpu_fraction"),
        ("train_loss", "metric_train_loss"),  # the writer's, from the trainer's `loss`
        ("test_accuracy", "test_accuracy"),  # a result column filled from this very metric
        ("params", "params"),
    ],
)
def test_a_metric_named_like_a_config_or_the_writers_own_column_is_prefixed(
    name: str, column: str
) -> None:
    assert metric_column(name, {"lr", "x"}) == column


def test_the_trials_schema_puts_one_typed_column_per_config_key_between_ours() -> None:
    configs = [
        {"lr": 0.1, "epochs": 2, "hidden": [64, 32], "seed": 3, "status": "mine", "mixed": 1},
        {"lr": 1, "epochs": 3, "hidden": [16], "seed": BIG, "status": "yours", "mixed": "a"},
        {"lr": 0.01, "only_here": True},
    ]
    schema = trial_schema(configs)
    config_fields = [("lr", pa.float64()), ("epochs", pa.int64()),
                     ("hidden", pa.list_(pa.int64())), ("seed", pa.string()),
                     ("config_status", pa.string()), ("mixed", pa.string()),
                     ("only_here", pa.bool_())]  # fmt: skip
    assert schema == pa.schema(HEAD + config_fields + METRICS)


@pytest.mark.parametrize(
    ("values", "type_"),
    [
        ([1, 2**63 - 1], pa.int64()),
        ([1, 0.5], pa.float64()),
        ([True, False], pa.bool_()),
        ([[8, 8], [16]], pa.list_(pa.int64())),
        ([BIG], pa.string()),
        ([2**63], pa.string()),
        ([-(2**63) - 1], pa.string()),
        ([1, "a"], pa.string()),
        ([True, 1], pa.string()),
    ],
)
def test_values_of_mixed_kinds_or_beyond_int64_make_a_text_column(
    values: list[Any], type_: pa.DataType
) -> None:
    assert arrow_type(values) == type_


def test_a_value_beyond_int64_is_written_and_read_back_exactly(tmp_path: Path) -> None:
    values = [BIG, 7, None]
    type_ = arrow_type([value for value in values if value is not None])
    table = pa.table({"seed": pa.array([cell(value, type_) for value in values], type_)})
    pq.write_table(table, tmp_path / "seeds.parquet")
    read = pq.read_table(tmp_path / "seeds.parquet").column("seed").to_pylist()
    assert read == [str(BIG), "7", None] and int(read[0]) == BIG


def test_a_cell_is_text_only_in_a_text_column() -> None:
    assert cell(12, pa.string()) == "12"
    assert cell(None, pa.string()) is None  # missing, not the text "None"
    assert cell(12, pa.int64()) == 12


def test_a_schema_of_rows_has_only_the_columns_some_row_has_a_value_of() -> None:
    rows = [{"f1": 1, "note": None, "tag": "a"}, {"f1": 0.5, "note": None}]
    assert schema_of(rows) == pa.schema([("f1", pa.float64()), ("tag", pa.string())])


def test_widening_appends_new_columns_and_settles_disagreeing_kinds() -> None:
    before = pa.schema([("a", pa.int64()), ("b", pa.float64()), ("c", pa.int64()),
                        ("d", pa.bool_()), ("e", pa.string())])  # fmt: skip
    other = pa.schema([("a", pa.float64()), ("b", pa.int64()), ("c", pa.string()),
                       ("d", pa.int64()), ("e", pa.int64()), ("new", pa.bool_())])  # fmt: skip
    assert widen(before, other) == pa.schema([
        ("a", pa.float64()),  # ints, then a float
        ("b", pa.float64()),  # a float column takes ints as they are
        ("c", pa.string()),
        ("d", pa.string()),  # a flag is no number
        ("e", pa.string()),
        ("new", pa.bool_()),
    ])  # fmt: skip
    assert widen(before, None) == before
    assert widened_columns(before, widen(before, other)) == {"a", "c", "d"}


def test_two_folders_agree_on_each_column_they_share_and_only_those() -> None:
    trials = pa.schema([("run_id", pa.string()), ("f1", pa.int64()), ("x", pa.int64())])
    epochs = pa.schema([("run_id", pa.string()), ("f1", pa.float64()), ("y", pa.int64())])
    assert agree(trials, epochs) == (
        pa.schema([("run_id", pa.string()), ("f1", pa.float64()), ("x", pa.int64())]),
        pa.schema([("run_id", pa.string()), ("f1", pa.float64()), ("y", pa.int64())]),
    )
    text = pa.schema([("f1", pa.string())])
    assert agree(text, pa.schema([("f1", pa.int64())]))[1] == text  # either way round


def test_a_cast_to_text_keeps_lists_and_missing_values() -> None:
    """pyarrow casts no list to text: each value becomes its text, as a new row's would."""
    lists = pa.chunked_array([pa.array([[1, 2], None, [3]])])
    assert cast(lists, pa.string()).to_pylist() == ["[1, 2]", None, "[3]"]
    ints = pa.chunked_array([pa.array([1, None, 3])])
    assert cast(ints, pa.float64()).type == pa.float64()
    assert cast(ints, pa.float64()).to_pylist() == [1.0, None, 3.0]
    assert cast(ints, pa.int64()) is ints


@pytest.mark.parametrize("value", [True, 1.0])
def test_a_value_reads_the_same_whether_written_before_or_after_its_column_became_text(
    value: bool | float,
) -> None:
    before = cast(pa.chunked_array([pa.array([value])]), pa.string()).to_pylist()
    after = cell(value, pa.string())
    assert before == [after]
