"""analysis.importance: fANOVA (optuna.importance) over a trials frame made here, whose
metric follows one parameter and not the others."""

from __future__ import annotations

import itertools
import math
import sys

import pandas as pd
import pytest

from analysis.importance import importance

LRS = [0.001, 0.01, 0.1]  # two decades: a log-scaled range
WIDTHS = [32, 64]
ACTIVATIONS = ["relu", "tanh"]
PARAMS = ["lr", "width", "activation", "depth", "seed"]


def score(lr: float, width: int, activation: str, seed: int, follows: str) -> float:
    """Strongly by `follows` (lr or activation), barely by width, a little by the seed."""
    strong = {"lr": -abs(math.log10(lr) + 2) * 0.1, "activation": (activation == "relu") * 0.1}
    return 0.8 + strong[follows] + (width == 64) * 0.001 + seed * 0.0005


def trials(follows: str = "lr") -> pd.DataFrame:
    """A finished trial per lr x width x activation x seed (repeats 2), `depth` one value;
    then a failed one and a diverged twin of each tanh one, whose metrics (none, and one
    far off) measure nothing."""
    rows = [
        {"status": "TERMINATED", "lr": lr, "width": width, "activation": activation,
         "depth": 2, "seed": seed,
         "val_accuracy": score(lr, width, activation, seed, follows)}
        for lr, width, activation, seed in itertools.product(LRS, WIDTHS, ACTIVATIONS, [0, 1])
    ]  # fmt: skip
    rows.append({**rows[0], "status": "ERROR", "val_accuracy": math.nan})
    rows += [{**row, "status": "DIVERGED", "val_accuracy": 50.0}
             for row in rows if row["activation"] == "tanh"]  # fmt: skip
    frame = pd.DataFrame(rows)
    return frame.assign(trial_id=[f"t_{index:02d}" for index in range(len(frame))])


@pytest.mark.parametrize(
    ("follows", "others"), [("lr", {"width", "activation"}), ("activation", {"lr", "width"})]
)
def test_the_parameter_the_metric_follows_has_most_of_the_importance(
    follows: str, others: set[str]
) -> None:
    ranked = importance(trials(follows), PARAMS, "val_accuracy")
    assert isinstance(ranked, pd.DataFrame), ranked
    assert list(ranked.columns) == ["parameter", "importance"]
    # seed tells repeats apart and depth never varies: neither is ranked.
    assert ranked["parameter"].iloc[0] == follows and set(ranked["parameter"][1:]) == others
    assert ranked["importance"].iloc[0] > 0.8
    assert ranked["importance"].is_monotonic_decreasing
    assert ranked["importance"].sum() == pytest.approx(1)
    pd.testing.assert_frame_equal(importance(trials(follows), PARAMS, "val_accuracy"), ranked)


def test_a_metric_to_minimise_ranks_alike() -> None:
    frame = trials("lr").assign(val_loss=lambda t: 1 - t["val_accuracy"])
    ranked = importance(frame, PARAMS, "val_loss", mode="min")
    assert isinstance(ranked, pd.DataFrame), ranked
    assert ranked["parameter"].iloc[0] == "lr" and ranked["importance"].iloc[0] > 0.8


def test_lists_are_categories() -> None:
    frame = trials("lr").assign(hidden=lambda t: [[64, 32] if w == 64 else [32] for w in t.width])
    ranked = importance(frame, ["lr", "hidden"], "val_accuracy")
    assert isinstance(ranked, pd.DataFrame), ranked
    assert list(ranked["parameter"]) == ["lr", "hidden"]


def test_a_key_only_some_configurations_have_is_left_out() -> None:
    frame = trials("lr")
    # momentum only where the activation is relu, as a conditional key of a search has it.
    momentum = [(0.5 + 0.4 * s) if a == "relu" else None
                for a, s in zip(frame["activation"], frame["seed"], strict=True)]  # fmt: skip
    ranked = importance(frame.assign(momentum=momentum), [*PARAMS, "momentum"], "val_accuracy")
    assert isinstance(ranked, pd.DataFrame), ranked
    assert set(ranked["parameter"]) == {"lr", "width", "activation"}


@pytest.mark.parametrize(
    ("rows", "params", "reason"),
    [
        (slice(0, 6), PARAMS,
         "importance: 3 configurations finished with a val_accuracy, too few for fANOVA"
         " (it needs 4)"),
        (slice(None), ["lr", "seed"], "importance: only lr varies, nothing to rank it against"),
        (slice(None), ["depth", "seed"], "importance: no swept parameter varies"),
    ],
)  # fmt: skip
def test_too_little_to_rank_is_the_reason_why(rows: slice, params: list[str], reason: str) -> None:
    frame = trials().sort_values(["lr", "activation", "width"], kind="stable")
    assert importance(frame.iloc[rows], params, "val_accuracy") == reason


def test_a_parameter_varying_only_where_trials_failed_is_not_ranked() -> None:
    finished = [{"status": "TERMINATED", "lr": 0.01, "width": width, "val_accuracy": 0.9}
                for width in (16, 32, 64, 128)]  # fmt: skip
    failed = [{"status": "ERROR", "lr": 0.1, "width": 16, "val_accuracy": math.nan}]
    assert importance(pd.DataFrame(finished + failed), ["lr", "width"], "val_accuracy") == (
        "importance: only width varies among the finished configurations,"
        " nothing to rank it against"
    )


def test_without_optuna_the_reason_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` raises ImportError
    assert importance(trials(), PARAMS, "val_accuracy") == (
        "importance: optuna is not installed: pip install 'sweeps[search]'"
    )
