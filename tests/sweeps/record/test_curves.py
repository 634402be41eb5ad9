"""A configuration's numbers as curves, under the Parquet columns' names."""

from __future__ import annotations

from sweeps.record.curves import curves


def test_tensorboard_and_w_and_b_curves_take_the_parquet_columns_names() -> None:
    reported = {"loss": 0.5, "trial_id": 3, "status": 0.25, "x": 9.0, "acc_relu": 0.9}
    assert curves(reported, {"x": 1}) == {"train_loss": 0.5, "metric_trial_id": 3,
                                           "metric_status": 0.25, "metric_x": 9.0,
                                           "acc_relu": 0.9}  # fmt: skip
