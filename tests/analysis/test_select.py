"""analysis.select: a run narrowed to the configurations of one value of a swept key."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis import Run, RunDataError, load_run
from analysis.select import match, select, select_runs
from tests.helpers.metric_runs import custom_trials, write_custom_run


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return load_run(write_custom_run(tmp_path))


def test_a_selection_keeps_one_value_and_no_longer_sweeps_it(run: Run) -> None:
    kept = select(run, ["lr=0.01"])
    assert sorted(set(kept.trials["lr"])) == [0.01] and len(kept.trials) == 4
    assert set(kept.epochs["trial_id"]) == set(kept.trials["trial_id"]) and len(kept.epochs) == 12
    assert kept.swept == ["width", "seed"] and kept.trials.attrs["swept"] == ["width", "seed"]
    assert kept.where == (("lr", 0.01),) and kept.title == "cnn run cnn-1, where lr=0.01"
    assert kept.planned == 4  # of the manifest's 12, one lr of three
    both = select(run, ["lr=0.01", "width=64", "seed=1"])
    assert both.trials["trial_id"].tolist() == ["c_00009"] and both.swept == []


@pytest.mark.parametrize("text", ["0.01", "1e-2", "1.0e-2", "0.010"])
def test_a_value_matches_as_typed_or_read(text: str) -> None:
    assert match(text, [0.001, 0.01, 0.1]) == 0.01


def test_a_value_matches_as_a_table_prints_it() -> None:
    sampled = [0.008632909096921014, 0.05132]
    assert match("0.00863", sampled) == sampled[0]  # the table's 3 digits
    assert match("[64, 64]", [(64, 64), (32,)]) == (64, 64)
    assert match("relu", ["relu", "tanh"]) == "relu"
    assert match("0.5", sampled) is None


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (["lr"], "--where expects KEY=VALUE, got 'lr'"),
        (["depth=3"], "--where depth=3: the run sweeps no 'depth' (it sweeps lr, width, seed)"),
        (["epochs=3"], "the run sweeps no 'epochs'"),  # a base value: every trial's
        (["lr=0.5"], "--where lr=0.5: the run has no lr 0.5 (lr: 0.001, 0.01, 0.1)"),
        (["lr=0.01", "lr=0.1"], "--where lr=0.1: lr is already 0.01"),
    ],
)
def test_a_key_or_value_the_run_lacks_is_named(run: Run, where: list[str], message: str) -> None:
    with pytest.raises(RunDataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        select(run, where)


def test_two_runs_narrowed_where_each_sweeps_the_key(run: Run, tmp_path: Path) -> None:
    """`sweeps compare`: run b trained width 32 alone, over two learning rates."""
    trials = custom_trials("cnn-2")
    trials = trials[(trials["width"] == 32) & (trials["lr"] < 0.1)]
    other = load_run(write_custom_run(tmp_path / "b", trials, grid={"lr": [0.001, 0.01]},
                                      base={"epochs": 3, "width": 32}))  # fmt: skip
    first, second = select_runs([run, other], ["width=64"])
    assert set(first.trials["width"]) == {64} and second is other
    with pytest.raises(RunDataError, match="--where depth=1: neither run sweeps 'depth'"):
        select_runs([run, other], ["depth=1"])
    with pytest.raises(RunDataError, match=r"the second run \(cnn-2\): --where lr=0.1: the run"):
        select_runs([run, other], ["lr=0.1"])
