"""A spec's search space, for the searches that pick configurations as they go.

`search: random` draws each configuration from the whole space (sweeps.plan.groups plans
them up front, seeded); `search: tpe` lets Optuna's TPE sampler propose each one from the
results so far, through Ray Tune's OptunaSearch (sweeps.runs.tuning). The space is the
spec's: a grid's list is a choice, `sample`'s distributions are Optuna's, and a key with
`when` exists only where its condition holds (Optuna's define-by-run does conditions).

A TPE run's state is its Parquet rows: `resume` hands the finished configurations back to
a fresh study (sweeps.runs.tuning) and the search goes on from them, in the configurations
that have no row yet. Optuna is imported only for `search: tpe`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Mapping
from typing import Any

from sweeps.plan.spec import Sampled, SpecError, SweepSpec

SEARCH_TRIAL = "search_trial"  # in a Tune trial's config: which of this attempt's proposals
Config = dict[str, Any]

_PLAIN = (type(None), bool, int, float, str)


@dataclasses.dataclass(frozen=True)
class Axis:
    """One swept key: its values to choose from, or its range (`log`: drawn on a log
    scale), and the earlier swept values it exists under."""

    key: str
    choices: list[Any] | None = None
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    when: Mapping[str, Any] | None = None

    def holds(self, chosen: Mapping[str, Any]) -> bool:
        return all(chosen.get(key) == value for key, value in (self.when or {}).items())

    def encode(self, value: Any) -> Any:
        """The value as Optuna holds it: a choice that is a list or a mapping as its JSON."""
        return value if isinstance(value, _PLAIN) else json.dumps(value, sort_keys=True)

    def contains(self, value: Any) -> bool:
        """Whether the space can give `value` (a run's spec may have been edited since)."""
        if self.choices is not None:
            return self.encode(value) in [self.encode(choice) for choice in self.choices]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and self.low <= value <= self.high

    def distribution(self) -> Any:
        import optuna

        if self.choices is not None:
            return optuna.distributions.CategoricalDistribution(
                [self.encode(choice) for choice in self.choices]
            )
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)

    def draw(self, rng: random.Random) -> Any:
        if self.choices is not None:
            return rng.choice(self.choices)
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)


def axes(spec: SweepSpec) -> list[Axis]:
    """The swept keys in the spec's order: the grid's, then the sampled ones."""
    found = [Axis(key, choices=list(values)) for key, values in spec.grid.items()]
    return found + [_sampled_axis(key, sampled) for key, sampled in spec.sample.items()]


def _sampled_axis(key: str, sampled: Sampled) -> Axis:
    if sampled.choice is not None:
        return Axis(key, choices=list(sampled.choice), when=sampled.when)
    low, high = sampled.uniform or sampled.loguniform or (0.0, 0.0)
    return Axis(key, low=low, high=high, log=sampled.loguniform is not None, when=sampled.when)


def draw(swept: list[Axis], rng: random.Random, given: Config | None = None) -> Config:
    """Values drawn for `swept`, each where its condition holds on `given` (a grid
    point's values) and the values drawn before it."""
    chosen: Config = dict(given or {})
    drawn: Config = {}
    for axis in swept:
        if axis.holds(chosen):
            chosen[axis.key] = drawn[axis.key] = axis.draw(rng)
    return drawn


def template(spec: SweepSpec) -> Config:
    """What every configuration of a TPE run has before the search chooses its values."""
    head = {"dataset": spec.dataset} if spec.dataset is not None else {}
    return {**head, **spec.base}


def examples(spec: SweepSpec) -> list[Config]:
    """Configurations that show every value a TPE run may give each key (each choice, a
    range's ends): checked before the run starts, and the shape of its results' columns."""
    base = template(spec)
    found = [base]
    for axis in axes(spec):
        values = axis.choices if axis.choices is not None else [axis.low, axis.high]
        found += [{**base, **dict(axis.when or {}), axis.key: value} for value in values]
    return found


@dataclasses.dataclass(frozen=True)
class DefineByRun:
    """The space as a function of an Optuna trial, for OptunaSearch (which pickles it
    with its state): it suggests each key whose condition holds and returns the values as
    the trainer takes them, with `SEARCH_TRIAL`: how many proposals this attempt made
    before (`proposed_before`: the finished trials the study was given)."""

    spec: SweepSpec
    proposed_before: int = 0

    def __call__(self, trial: Any) -> Config:
        chosen: Config = {}
        for axis in axes(self.spec):
            if not axis.holds(chosen):
                continue
            if axis.choices is None:
                chosen[axis.key] = trial.suggest_float(axis.key, axis.low, axis.high,
                                                       log=axis.log)  # fmt: skip
            else:
                encoded = [axis.encode(choice) for choice in axis.choices]
                picked = trial.suggest_categorical(axis.key, encoded)
                chosen[axis.key] = axis.choices[encoded.index(picked)]
        return {**chosen, SEARCH_TRIAL: trial.number - self.proposed_before}


def check_optuna() -> None:
    """SpecError unless Optuna can be imported: `search: tpe` needs it."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise SpecError(
            "search: tpe needs Optuna, which is not installed: pip install 'sweeps[search]'"
        ) from None
