from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from analysis import RunDataError, find_threshold
from analysis.threshold import _t_quantile, measured

REPORT_A = pd.DataFrame({
    "batch_size": [512, 256, 128, 64, 32, 16, 8],
    "val_accuracy": [0.9179, 0.9345, 0.9664, 0.9759, 0.9737, 0.9764, 0.9773],
})  # fmt: skip

REPORT_LINES = [
    "Change in accuracy from 256 to 512: 0.0166",
    "Change in accuracy from 128 to 256: 0.0319",
    "Change in accuracy from 64 to 128: 0.0095",
    "Change in accuracy from 32 to 64: -0.0022",
    "Change in accuracy from 16 to 32: 0.0027",
    "Change in accuracy from 8 to 16: 0.0009",
    "Potential threshold for insignificant accuracy change: Batch size 32 with accuracy 0.9737",
]


def test_report_a_table_gives_32_and_the_reports_lines() -> None:
    result = find_threshold(REPORT_A)
    assert result.answer is not None
    assert (result.answer.value, result.answer.mean) == (32, 0.9737)
    assert result.lines() == REPORT_LINES
    assert [level.value for level in result.levels] == [512, 256, 128, 64, 32, 16, 8]


def test_unsorted_input_is_ordered_large_to_small() -> None:
    shuffled = REPORT_A.sample(frac=1, random_state=3)
    assert find_threshold(shuffled).lines() == REPORT_LINES


def test_no_qualifying_change_says_so() -> None:
    rising = pd.DataFrame({"batch_size": [64, 32, 16], "val_accuracy": [0.90, 0.92, 0.94]})
    result = find_threshold(rising)
    assert result.answer is None and result.noise_aware is None
    assert result.lines()[-1] == (
        "No threshold within the data: no change <= 0.001 going from 64 down to 16"
    )


def test_one_batch_size_has_no_changes() -> None:
    result = find_threshold(pd.DataFrame({"batch_size": [64, 64], "val_accuracy": [0.9, 0.91]}))
    assert result.changes == [] and result.answer is None
    assert result.lines() == ["No threshold within the data: only one batch_size (1 level)"]


def test_threshold_param_and_metric_are_selectable() -> None:
    frame = pd.DataFrame({"lr": [0.1, 0.01, 0.001], "val_loss": [0.3, 0.3005, 0.5]})
    result = find_threshold(frame, param="lr", metric="val_loss", threshold=0.01)
    assert result.answer is not None and result.answer.value == 0.01
    assert result.lines()[0] == "Change in loss from 0.01 to 0.1: 0.0005"


def test_failed_trials_are_left_out() -> None:
    with_failure = pd.concat(
        [REPORT_A, pd.DataFrame({"batch_size": [4], "val_accuracy": [np.nan]})]
    )
    result = find_threshold(with_failure)
    assert result.dropped == 1 and result.answer is not None and result.answer.value == 32
    assert [level.value for level in result.levels][-1] == 8


def test_repeats_give_mean_std_and_95_interval() -> None:
    frame = pd.DataFrame({
        "batch_size": [64] * 3 + [32] * 3,
        "val_accuracy": [0.95, 0.96, 0.97, 0.96, 0.96, 0.96],
    })  # fmt: skip
    result = find_threshold(frame)
    level_64 = result.levels[0]
    assert level_64.count == 3 and level_64.mean == pytest.approx(0.96)
    assert level_64.std == pytest.approx(0.01)
    assert level_64.half_width == pytest.approx(4.302653 * 0.01 / math.sqrt(3), rel=1e-5)
    assert result.levels[1].std == 0.0 and result.has_repeats


def test_noise_aware_answer_sees_changes_inside_the_seed_noise() -> None:
    # Means 0.90, 0.92, 0.925, 0.93: no change <= 0.001, so the report's rule finds none.
    # Seeds agree within 0.001 at 512 and 256 but spread by 0.01 at 128 and 64, so
    # 256 -> 128 (+0.005) lies inside the noise while 512 -> 256 (+0.02) does not.
    spread = {512: 0.001, 256: 0.001, 128: 0.01, 64: 0.01}
    means = {512: 0.90, 256: 0.92, 128: 0.925, 64: 0.93}
    frame = pd.DataFrame(
        [{"batch_size": b, "val_accuracy": m + spread[b] * s} for b, m in means.items()
         for s in (-1, 0, 1)]
    )  # fmt: skip
    result = find_threshold(frame)
    assert result.answer is None
    assert result.noise_aware is not None and result.noise_aware.value == 128
    change = result.changes[1]
    assert change.change == pytest.approx(0.005)
    assert change.noise > 0.005  # the interval of the difference covers it
    assert result.changes[0].noise < 0.02  # 512 -> 256 is a real change
    assert result.lines()[-1].startswith("No threshold within the data")


def test_bad_columns_name_the_problem() -> None:
    with pytest.raises(RunDataError, match="no column 'learning_rate'"):
        find_threshold(REPORT_A, param="learning_rate")
    text_metric = REPORT_A.assign(val_accuracy=REPORT_A["val_accuracy"].astype(str))
    with pytest.raises(RunDataError, match="column 'val_accuracy' is not numeric"):
        find_threshold(text_metric)
    with pytest.raises(RunDataError, match="no trial has both"):
        find_threshold(REPORT_A.assign(val_accuracy=np.nan))


def test_a_loss_counts_its_drop_as_the_gain() -> None:
    """A large drop in loss is an improvement, not an insignificant change."""
    losses = pd.DataFrame({"batch_size": [512, 256, 128, 64],
                           "val_loss": [0.30, 0.25, 0.20, 0.1995]})  # fmt: skip
    result = find_threshold(losses, metric="val_loss")
    assert result.mode == "min" and result.answer is not None
    assert result.answer.value == 64  # the first drop of at most 0.001: 128 -> 64
    as_if_higher_were_better = find_threshold(losses, metric="val_loss", mode="max")
    assert as_if_higher_were_better.answer.value == 256  # what the direction-blind rule said


def test_the_direction_is_printed_and_accuracy_keeps_the_reports_answer() -> None:
    from rich.console import Console

    from analysis.render import threshold_block

    result = find_threshold(REPORT_A)
    assert result.mode == "max" and result.answer.value == 32
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(threshold_block(result))
    assert "Direction: higher val_accuracy is better (mode max)" in console.export_text()
    with pytest.raises(RunDataError, match="mode must be 'max' or 'min', got 'up'"):
        find_threshold(REPORT_A, mode="up")


def test_diverged_trials_are_no_level_and_no_measurement() -> None:
    """A diverged trial's accuracy is whatever its broken weights scored: at a batch size
    of its own it would be a level, beside finished ones it would drag the mean."""
    finished = REPORT_A.assign(status="TERMINATED")
    diverged = pd.DataFrame({"batch_size": [4, 32, 16], "val_accuracy": [0.098, 0.5, np.inf],
                             "status": "DIVERGED"})  # fmt: skip
    result = find_threshold(pd.concat([finished, diverged], ignore_index=True))
    assert [level.value for level in result.levels] == [512, 256, 128, 64, 32, 16, 8]
    assert result.lines() == REPORT_LINES
    assert result.dropped == 3 and result.diverged == 3


def test_only_finished_trials_with_a_finite_metric_are_measured() -> None:
    trials = pd.DataFrame({
        "trial_id": ["done", "diverged", "failed", "no_metric", "inf"],
        "status": ["TERMINATED", "DIVERGED", "ERROR", "TERMINATED", "TERMINATED"],
        "val_accuracy": [0.9, 0.95, 0.97, np.nan, np.inf],
    })  # fmt: skip
    assert list(measured(trials, "val_accuracy")["trial_id"]) == ["done"]
    assert measured(trials, "test_accuracy").empty
    assert list(measured(REPORT_A, "val_accuracy").index) == list(REPORT_A.index)  # no status


def test_a_run_where_every_trial_diverged_has_no_threshold() -> None:
    diverged = REPORT_A.assign(status="DIVERGED")
    with pytest.raises(RunDataError, match=r"no trial has both .*\(7 diverged trials left out\)"):
        find_threshold(diverged)


@pytest.mark.parametrize("dof", [1, 2, 3, 4.7, 29.3, 1000])
def test_the_t_quantile_is_scipy_stats_own(dof: float) -> None:
    from scipy import stats

    assert _t_quantile(dof) == stats.t.ppf(0.975, dof)
