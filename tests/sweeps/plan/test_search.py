"""The search space of a spec: random draws, TPE's define-by-run, conditions (`when`)."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from sweeps.plan.groups import configurations, plan_run
from sweeps.plan.search import SEARCH_TRIAL, DefineByRun, axes, examples
from sweeps.plan.spec import SpecError, parse_spec

SPACE: dict[str, Any] = {
    "name": "space", "trainer": "user_trainers:bowl", "dataset": None, "base": {"epochs": 1},
    "grid": {"optimizer": ["sgd", "adam"], "hidden": [[64], [128, 64]]},
    "sample": {"lr": {"loguniform": [1e-4, 1.0]},
               "momentum": {"uniform": [0.0, 0.99], "when": {"optimizer": "sgd"}}},
}  # fmt: skip


def spec(**changes: Any):
    return parse_spec({**SPACE, **changes}, "test")


def test_a_random_search_draws_every_key_seeded_and_keeps_conditions() -> None:
    drawn = configurations(spec(search="random", num_samples=40))
    assert len(drawn) == 40 and drawn == configurations(spec(search="random", num_samples=40))
    assert {config["optimizer"] for config in drawn} == {"sgd", "adam"}
    assert {tuple(config["hidden"]) for config in drawn} == {(64,), (128, 64)}
    assert all(1e-4 <= config["lr"] <= 1.0 for config in drawn)
    for config in drawn:  # momentum exactly where the optimizer is sgd
        assert ("momentum" in config) == (config["optimizer"] == "sgd"), config
    other = configurations(spec(search="random", num_samples=40, base={"epochs": 1, "seed": 1}))
    assert [c["lr"] for c in other] != [c["lr"] for c in drawn]


def test_a_random_search_repeats_each_draw_with_its_seeds() -> None:
    drawn = configurations(spec(search="random", num_samples=3, repeats=2))
    assert [config["seed"] for config in drawn] == [0, 1, 0, 1, 0, 1]
    assert drawn[0]["lr"] == drawn[1]["lr"] != drawn[2]["lr"]
    assert spec(search="random", num_samples=3, repeats=2).trial_count == 6


def test_a_grid_draws_a_conditional_key_only_where_its_condition_holds() -> None:
    drawn = configurations(spec(num_samples=2))
    assert len(drawn) == 2 * 2 * 2 == spec(num_samples=2).trial_count
    assert all(("momentum" in c) == (c["optimizer"] == "sgd") for c in drawn)


def test_a_grid_without_conditions_draws_as_before() -> None:
    # The draws of a spec without `when` are those the version before `when` made (3fe6f9d).
    plain = {**SPACE, "sample": {"lr": {"loguniform": [1e-4, 1.0]}}, "grid": {"x": [1, 2]}}
    drawn = configurations(parse_spec(plain, "test"))
    assert [round(config["lr"], 6) for config in drawn] == [0.238609, 0.107601]


def test_tpe_leaves_the_values_to_the_search_one_trial_a_configuration() -> None:
    searched = spec(search="tpe", num_samples=5)
    assert searched.trial_count == 5
    configs = configurations(searched)
    assert configs == [{"epochs": 1}] * 5
    plan = plan_run(spec(search="tpe", num_samples=5, resources={"gpus": 0}), configs, slots=2)
    assert plan.groups == [[0], [1], [2], [3], [4]]
    shapes = plan.shapes
    assert {"optimizer", "hidden", "lr", "momentum"} <= set().union(*shapes)
    assert {"optimizer": "sgd", "momentum": 0.99, "epochs": 1} in [
        {k: v for k, v in shape.items() if k != "hidden"} for shape in shapes
    ]
    assert shapes == examples(searched)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"search": "tpe", "repeats": 2}, "search: tpe proposes each configuration once;"
                                          " repeats must be 1, got 2"),
        ({"search": "tpe", "grid": {}, "sample": {}}, "search: tpe needs a grid or sample"),
        ({"search": "bayes"}, "search: Input should be 'grid', 'random' or 'tpe'"),
        ({"sample": {"momentum": {"uniform": [0, 1], "when": {"optimiser": "sgd"}}}},
         "sample.momentum.when: 'optimiser' must be a key of grid or of sample before"
         " 'momentum'; swept before it: optimizer, hidden"),
        ({"sample": {"momentum": {"uniform": [0, 1], "when": {"lr": 0.1}},
                     "lr": {"uniform": [0, 1]}}}, "'lr' must be a key of grid or of sample"
                                                  " before 'momentum'"),
        ({"search": "random", "num_samples": 10_001}, "10001 samples make 10001"
                                                      " configurations, more than 10000"),
    ],
)  # fmt: skip
def test_a_bad_search_is_one_line_naming_it(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=r"^test: ") as error:
        spec(**changes)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_tpe_proposes_values_as_the_trainer_takes_them_and_counts_its_proposals() -> None:
    searched = spec(search="tpe", num_samples=30)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    space = DefineByRun(searched, proposed_before=2)
    for _ in range(2):  # what a resumed study was given before it proposes
        study.ask()
    proposed = []
    for number in range(20):
        values = space(study.ask())
        assert values.pop(SEARCH_TRIAL) == number
        proposed.append(values)
    assert {tuple(values["hidden"]) for values in proposed} == {(64,), (128, 64)}
    assert all(("momentum" in values) == (values["optimizer"] == "sgd") for values in proposed)
    assert all(1e-4 <= values["lr"] <= 1.0 for values in proposed)
    (hidden,) = [axis for axis in axes(searched) if axis.key == "hidden"]
    assert hidden.distribution().choices == ("[64]", "[128, 64]")  # a list as its JSON
    assert hidden.contains([128, 64]) and not hidden.contains([32])
