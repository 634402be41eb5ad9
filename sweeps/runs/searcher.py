"""The search of a `search: tpe` run: Optuna's TPE through Ray Tune's OptunaSearch.

Imported only by a run that searches (it imports Optuna). The search's state is the run's
Parquet rows: each attempt's study starts from the finished configurations (with the
metric) as completed trials, so a resumed run's search goes on from what it had learnt.
"""

from __future__ import annotations

import math
from typing import Any

import optuna
import pandas as pd
from ray.tune.search import ConcurrencyLimiter, Searcher
from ray.tune.search.optuna import OptunaSearch

from analysis.rundir import FINISHED
from sweeps.plan.search import DefineByRun, axes
from sweeps.plan.spec import SweepSpec
from sweeps.record.columns import config_column

STUDY = "sweeps"  # the Optuna study's name in its in-memory storage


class TpeSearch(OptunaSearch):
    """OptunaSearch, but a report without the metric (a user's trainer that names it
    otherwise, or says it only at the end) is not the search's to judge: MetricCheck
    names it when the run ends."""

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self.metric in result:
            super().on_trial_result(trial_id, result)


def tpe_searcher(spec: SweepSpec, trials: pd.DataFrame) -> Searcher:
    """TPE seeded by the spec's seed, knowing the finished configurations of `trials`,
    proposing at most `max_concurrent` at a time."""
    storage, learnt = study_from_rows(spec, trials)
    searcher = TpeSearch(
        space=DefineByRun(spec, learnt),
        metric=spec.metric,
        mode=spec.mode,
        # Seeded afresh for each attempt: a resumed search must not draw again what the
        # first attempt drew (TPE draws its first trials at random).
        sampler=optuna.samplers.TPESampler(seed=int(spec.base.get("seed", 0)) + learnt),
        storage=storage,
        study_name=STUDY,
    )
    if spec.max_concurrent:
        return ConcurrencyLimiter(searcher, spec.max_concurrent)
    return searcher


def study_from_rows(spec: SweepSpec, trials: pd.DataFrame) -> tuple[Any, int]:
    """An in-memory Optuna storage holding the study `STUDY` with each finished
    configuration of `trials` (with the metric) as a completed trial, and how many it
    holds: what the search had learnt when the run stopped."""
    storage = optuna.storages.InMemoryStorage()
    direction = "maximize" if spec.mode == "max" else "minimize"
    study = optuna.create_study(storage=storage, study_name=STUDY, direction=direction)
    if trials.empty or spec.metric not in trials.columns:
        return storage, 0
    finished = trials[trials["status"].isin([str(status) for status in FINISHED])]
    for _, row in finished.sort_values("config_index").iterrows():
        value = plain(row[spec.metric])
        if not isinstance(value, int | float) or not math.isfinite(value):
            continue
        params, distributions, chosen = {}, {}, {}
        for axis in axes(spec):
            if not axis.holds(chosen):
                continue
            column = config_column(axis.key)
            held = plain(row[column]) if column in row.index else None
            if held is None or not axis.contains(held):
                break  # a value this space cannot give (the spec was edited): not learnt
            chosen[axis.key] = held
            params[axis.key], distributions[axis.key] = axis.encode(held), axis.distribution()
        else:
            trial = optuna.trial.create_trial(params=params, distributions=distributions,
                                              value=float(value))  # fmt: skip
            study.add_trial(trial)
    return storage, len(study.trials)


def plain(value: Any) -> Any:
    """A cell as Python: numpy's numbers and arrays as int, float and list; NaN as None."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
