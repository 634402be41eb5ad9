from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis import (
    RunDataError,
    activation_table,
    batch_size_table,
    config_table,
    report_b_table,
    report_table,
)


def trials(**columns: list) -> pd.DataFrame:
    count = len(next(iter(columns.values())))
    base = {"trial_id": [f"t{i}" for i in range(count)], "status": ["TERMINATED"] * count}
    return pd.DataFrame({**base, **columns})


REPEATS = trials(
    batch_size=[64, 64, 32, 32, 16],
    seed=[0, 1, 0, 1, 0],
    val_accuracy=[0.95, 0.97, 0.96, 0.98, np.nan],
    val_loss=[0.2, 0.1, 0.15, 0.05, np.nan],
).assign(status=["TERMINATED"] * 4 + ["ERROR"])


def test_config_table_folds_seeds_into_mean_and_std() -> None:
    table = config_table(REPEATS, ["batch_size", "seed"], ["val_accuracy", "val_loss"])
    assert list(table["batch_size"]) == [16, 32, 64]
    assert list(table["runs"]) == [1, 2, 2] and list(table["failed"]) == [1, 0, 0]
    assert table["val_accuracy"].tolist()[1:] == pytest.approx([0.97, 0.96])
    assert table["val_accuracy_std"].tolist()[1:] == pytest.approx([0.01414214, 0.01414214])
    assert math.isnan(table["val_accuracy"][0])


def test_config_table_groups_list_values() -> None:
    frame = trials(hidden=[[50, 50], [1000, 1000], [50, 50]], val_accuracy=[0.9, 0.95, 0.92])
    table = config_table(frame, ["hidden"], ["val_accuracy"])
    assert list(table["hidden"]) == [(50, 50), (1000, 1000)]
    assert table["val_accuracy"].tolist() == pytest.approx([0.91, 0.95])


def test_config_table_of_an_unswept_run_is_one_row() -> None:
    table = config_table(trials(val_accuracy=[0.9, 0.92]), [], ["val_accuracy"])
    assert len(table) == 1 and table["runs"][0] == 2
    assert table["val_accuracy"][0] == pytest.approx(0.91)


REFERENCE = {
    "source": "report",
    "rows": [{"batch_size": 64, "val_accuracy": 0.975}, {"batch_size": 32, "val_accuracy": 0.97}],
}


def test_batch_size_table_is_wide_large_to_small_with_the_reports_figures() -> None:
    table, sources = batch_size_table(REPEATS, [REFERENCE])
    assert list(table.columns) == ["batch_size", "64", "32", "16"]
    assert list(table["batch_size"]) == ["val_accuracy", "val_accuracy_std", "ref1", "diff1"]
    row = table.set_index("batch_size")
    assert row.loc["ref1", "64"] == 0.975 and math.isnan(row.loc["ref1", "16"])
    assert row.loc["diff1", "32"] == pytest.approx(0.97 - 0.97)
    assert row.loc["diff1", "64"] == pytest.approx(0.96 - 0.975)
    assert sources == ["report"]


def test_activation_table_has_loss_accuracy_and_difference() -> None:
    frame = trials(activation=["relu", "tanh"], val_loss=[0.08, 0.09], val_accuracy=[0.97, 0.96])
    reference = {"source": "A4", "rows": [{"activation": "relu", "val_accuracy": 0.9762}]}
    table, sources = activation_table(frame, [reference])
    assert list(table["activation"]) == ["relu", "tanh"]
    assert {"val_loss", "val_accuracy", "ref1", "diff1"} <= set(table.columns)
    assert table["diff1"][0] == pytest.approx(0.97 - 0.9762)
    assert math.isnan(table["ref1"][1]) and sources == ["A4"]


def test_report_b_table_has_train_val_test_params_and_time() -> None:
    frame = trials(
        hidden=[[50, 50]], train_accuracy=[0.97], train_loss=[0.09], val_accuracy=[0.97],
        val_loss=[0.1], test_accuracy=[0.969], test_loss=[0.1], params=[42310],
        train_time_s=[3.2],
    )  # fmt: skip
    reference = {"source": "Q1a", "rows": [{"hidden": [50, 50], "test_accuracy": 0.970}]}
    table, _ = report_b_table(frame, ["hidden"], [reference])
    for column in ("train_accuracy", "val_loss", "test_accuracy", "params", "train_time_s"):
        assert column in table.columns
    assert table["params"][0] == 42310
    assert table["diff1"][0] == pytest.approx(-0.001)


def test_report_table_picks_the_reports_layout() -> None:
    spec_a = {"base": {"validation_split": 0.0}, "reference": [REFERENCE]}
    assert report_table(REPEATS, spec_a, ["batch_size", "seed"])[0] == (
        "val_accuracy by batch size"
    )
    spec_b = {"base": {"validation_split": 0.1}}
    frame = trials(x=[1], val_accuracy=[0.9], test_accuracy=[0.9])
    assert report_table(frame, spec_b, ["x"])[0] == "train / val / test"
    assert report_table(frame, {}, ["x"])[0] == "configurations"
    with pytest.raises(RunDataError, match="no trials"):
        report_table(frame.iloc[:0], {}, ["x"])
