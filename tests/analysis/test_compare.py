"""analysis.compare on runs written to Parquet here: which configurations pair, what the
refusal names, the paired table's rows. tests/sweeps/cli/test_report_runs.py compares real
sweeps at the CLI."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from analysis import Run, RunDataError, compare_runs, compare_table
from analysis.compare import paired_table
from analysis.settings import ABSENT, Difference

NAN = float("nan")
SPREAD = float(np.std([0.90, 0.92], ddof=1))  # of two seeds 0.02 apart


def trial(**config: object) -> dict[str, object]:
    """A trials row as sweeps writes one: the whole config, the run's settings included."""
    return {"dataset": "digits", "epochs": 2, **config}


def frame(**columns: list[object]) -> pd.DataFrame:
    count = len(next(iter(columns.values())))
    base = {"trial_id": [f"t{i}" for i in range(count)], "status": ["TERMINATED"] * count}
    return pd.DataFrame({**base, **columns})


@pytest.fixture
def seeds_run(make_run: Callable[..., Run]) -> Run:
    """Batch sizes 64 and 32 at lr 0.1, two seeds each: 0.91 and 0.94 on average."""
    rows = [trial(lr=0.1, batch_size=size, seed=seed, val_accuracy=accuracy)
            for size, seed, accuracy in ((64, 0, 0.90), (64, 1, 0.92), (32, 0, 0.93),
                                         (32, 1, 0.95))]  # fmt: skip
    return make_run("a", rows, dataset="digits", base={"epochs": 2, "lr": 0.1},
                    grid={"batch_size": [64, 32]}, repeats=2)  # fmt: skip


@pytest.fixture
def lrs_run(make_run: Callable[..., Run]) -> Run:
    """Batch sizes 64 and 16 against lr 0.1 and 0.5, one seed; (16, 0.5) never ran."""
    rows = [
        trial(batch_size=size, lr=lr, seed=0, val_accuracy=accuracy)
        for size, lr, accuracy in ((64, 0.1, 0.95), (64, 0.5, 0.85), (16, 0.1, 0.97))
    ]
    return make_run("b", rows, dataset="digits", base={"epochs": 2},
                    grid={"batch_size": [64, 16], "lr": [0.1, 0.5]})  # fmt: skip


def test_configurations_pair_on_every_config_key_with_seeds_averaged(
    seeds_run: Run, lrs_run: Run
) -> None:
    result = compare_runs(seeds_run, lrs_run)
    expected = pd.DataFrame({
        "batch_size": [16, 32, 64, 64], "lr": [0.1, 0.1, 0.1, 0.5],
        "runs_a": pd.array([None, 2, 2, None], dtype="Int64"),
        "val_accuracy_a": [NAN, 0.94, 0.91, NAN], "val_accuracy_std_a": [NAN, SPREAD, SPREAD, NAN],
        "runs_b": pd.array([1, None, 1, 1], dtype="Int64"),
        "val_accuracy_b": [0.97, NAN, 0.95, 0.85], "val_accuracy_std_b": [NAN] * 4,
        "diff": [NAN, NAN, 0.04, NAN],
    }).astype({"batch_size": object, "lr": object})  # fmt: skip
    # dataset and epochs are matched on, the same in every row, and so left out.
    pd.testing.assert_frame_equal(result.table, expected)
    assert result.matched_on == ["batch_size", "lr", "dataset", "epochs"]
    assert result.paired == 1 and result.forced is False and result.metric == "val_accuracy"
    assert result.differences == [
        Difference("batch_size", "32, 64", "16, 64", overlap=True),
        Difference("lr", "0.1", "0.1, 0.5", overlap=True),
        Difference("seed", "0, 1", "0", overlap=True),
    ]


def test_refusal_names_the_keys_no_configuration_can_pair_across(
    make_run: Callable[..., Run], seeds_run: Run
) -> None:
    # batch_size overlaps and the seeds never pair: only epochs says why nothing pairs.
    one_epoch = make_run("c", [trial(epochs=1, lr=0.1, batch_size=64, seed=7, val_accuracy=0.8)],
                         dataset="digits", base={"epochs": 1, "lr": 0.1},
                         grid={"batch_size": [64]})  # fmt: skip
    with pytest.raises(RunDataError) as caught:
        compare_runs(one_epoch, seeds_run)
    assert str(caught.value) == (
        "nothing to compare: no configuration of a (c) is one of b (a); they differ in"
        " epochs (a: 1; b: 2); --force compares them anyway"
    )


def test_refusal_names_every_differing_key_when_each_overlaps(
    make_run: Callable[..., Run], lrs_run: Run
) -> None:
    # Each value is in b, but not together: b never ran (16, 0.5).
    rows = [trial(lr=0.5, batch_size=size, seed=0, val_accuracy=0.9) for size in (32, 16)]
    lr_fixed = make_run("d", rows, base={"epochs": 2, "lr": 0.5}, grid={"batch_size": [32, 16]})
    with pytest.raises(RunDataError, match=re.escape(
        "they differ in batch_size (a: 16, 32; b: 16, 64), lr (a: 0.5; b: 0.1, 0.5);"
    )):  # fmt: skip
        compare_runs(lr_fixed, lrs_run)


def test_refusal_when_the_same_values_combine_differently(make_run: Callable[..., Run]) -> None:
    grid = {"batch_size": [64, 32], "lr": [0.1, 0.5]}
    first = make_run("e", [trial(batch_size=64, lr=0.1, val_accuracy=0.9),
                           trial(batch_size=32, lr=0.5, val_accuracy=0.9)], grid=grid)  # fmt: skip
    second = make_run("f", [trial(batch_size=64, lr=0.5, val_accuracy=0.9),
                            trial(batch_size=32, lr=0.1, val_accuracy=0.9)], grid=grid)  # fmt: skip
    with pytest.raises(RunDataError, match="they differ in their configurations; --force"):
        compare_runs(first, second)


def test_force_pairs_on_the_keys_that_overlap_and_averages_the_rest(
    make_run: Callable[..., Run], seeds_run: Run
) -> None:
    one_epoch = make_run("c", [trial(epochs=1, lr=0.1, batch_size=64, seed=0, val_accuracy=0.8)],
                         dataset="digits", base={"epochs": 1, "lr": 0.1},
                         grid={"batch_size": [64]})  # fmt: skip
    result = compare_runs(one_epoch, seeds_run, force=True)
    assert result.forced is True and result.paired == 1
    assert result.matched_on == ["batch_size", "dataset", "lr"]  # not epochs, never seed
    assert Difference("epochs", "1", "2", overlap=False) in result.differences
    table = result.table
    assert list(table.columns[:2]) == ["batch_size", "runs_a"]  # the fixed keys left out
    assert table["batch_size"].tolist() == [32, 64]
    assert table["runs_b"].tolist() == [2, 2] and table["runs_a"].isna().tolist() == [True, False]
    assert table["diff"].tolist()[1] == pytest.approx(0.91 - 0.8)


def test_runs_without_config_keys_sit_side_by_side(make_run: Callable[..., Run]) -> None:
    first = make_run("g", [{"val_accuracy": 0.90}, {"val_accuracy": 0.92}])
    second = make_run("h", [{"val_accuracy": 0.95}])
    result = compare_runs(first, second)
    assert result.matched_on == [] and result.differences == [] and result.paired == 1
    assert list(result.table.columns) == [
        "runs_a", "val_accuracy_a", "val_accuracy_std_a", "runs_b", "val_accuracy_b",
        "val_accuracy_std_b", "diff",
    ]  # fmt: skip
    row = result.table.iloc[0]
    assert (row["runs_a"], row["runs_b"]) == (2, 1)
    assert row["val_accuracy_a"] == pytest.approx(0.91) and row["diff"] == pytest.approx(0.04)


def test_a_missing_metric_names_the_run_that_lacks_it(seeds_run: Run, lrs_run: Run) -> None:
    with pytest.raises(RunDataError, match=re.escape("the first run (a): no column 'val_loss';")):
        compare_runs(seeds_run, lrs_run, metric="val_loss")


def test_a_non_numeric_metric_names_the_run_that_has_it(make_run: Callable[..., Run]) -> None:
    scored = make_run("i", [trial(val_accuracy=0.9, score=0.5)])
    graded = make_run("j", [trial(val_accuracy=0.9, score="high")])
    message = re.escape("the second run (j): column 'score' is not numeric")
    with pytest.raises(RunDataError, match=message):
        compare_runs(scored, graded, metric="score")


def test_a_long_list_of_values_is_cut_after_six(make_run: Callable[..., Run]) -> None:
    sizes = [1, 2, 4, 8, 16, 32, 64, 128]
    many = make_run("k", [trial(batch_size=size, val_accuracy=0.9) for size in sizes],
                    grid={"batch_size": sizes})  # fmt: skip
    one = make_run("l", [trial(batch_size=1, val_accuracy=0.8)], grid={"batch_size": [1]})
    (difference,) = compare_runs(many, one).differences
    assert difference.text() == "batch_size (a: 1, 2, 4, 8, 16, 32, ... (8 values); b: 1)"


def test_rows_sort_by_value_within_each_kind_of_value() -> None:
    # Tuples by their numbers, not their text ("(128,)" < "(64,)"); numbers before text.
    first = frame(hidden=[(128,), (64, 32)], dropout=[0.2, 0.2], val_accuracy=[0.9, 0.8])
    second = frame(hidden=[(64,), (128,)], dropout=[ABSENT, ABSENT], val_accuracy=[0.7, 0.6])
    table = paired_table(first, second, ["hidden", "dropout"], "val_accuracy")
    assert list(zip(table["hidden"], table["dropout"], strict=True)) == [
        ((64,), ABSENT), ((64, 32), 0.2), ((128,), 0.2), ((128,), ABSENT),
    ]  # fmt: skip


def test_keys_the_same_in_every_row_are_left_out_unless_shown() -> None:
    first = frame(dataset=["digits"] * 2, batch_size=[64, 32], val_accuracy=[0.9, 0.8])
    second = frame(dataset=["digits"], batch_size=[64], val_accuracy=[0.95])
    keys = ["dataset", "batch_size"]
    assert "dataset" not in paired_table(first, second, keys, "val_accuracy").columns
    shown = paired_table(first, second, keys, "val_accuracy", shown=["dataset"])
    assert shown["dataset"].tolist() == ["digits", "digits"]
    assert shown["batch_size"].tolist() == [32, 64]  # varies: a column though not shown


def test_compare_table_matches_configurations() -> None:
    first = frame(batch_size=[64, 32], val_accuracy=[0.96, 0.97])
    second = frame(batch_size=[64, 16], val_accuracy=[0.965, 0.98])
    table = compare_table(first, second, ["batch_size"])
    assert list(table["batch_size"]) == [16, 32, 64]
    assert table["diff"].tolist()[2] == pytest.approx(0.005)
    assert table["diff"].isna().tolist() == [True, True, False]
    with pytest.raises(RunDataError, match="the second run has no column 'batch_size'"):
        compare_table(first, frame(lr=[0.1], val_accuracy=[0.9]), ["batch_size"])
