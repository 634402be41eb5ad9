"""How much each swept parameter moves a run's metric: fANOVA, as optuna.importance
computes it, over the configurations that finished.

    importance(run.trials, run.swept, "val_accuracy")  ->  parameter  importance
                                                            lr         0.91
                                                            width      0.09

A random forest is fitted to the metric over the parameters, and each parameter's share
of the forest's variance is its importance; the shares sum to 1. optuna is an optional
extra (`pip install 'sweeps[search]'`): without it, as with too few configurations to fit
a forest to, the answer is the one-line reason there is none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.load import hashable
from analysis.numbers import is_number
from analysis.tables import config_keys
from analysis.threshold import measured

MIN_CONFIGURATIONS = 4  # fewer, and the forest's shares say more of its seed than of the run
INSTALL = "optuna is not installed: pip install 'sweeps[search]'"


def importance(
    trials: pd.DataFrame, params: Sequence[str], metric: str, mode: str = "max"
) -> pd.DataFrame | str:
    """Each of `params` that varies, by its fANOVA importance on `metric`, the most
    important first, the importances summing to 1; or the one-line reason there is none.
    The rows are the finished configurations with a finite metric (threshold.measured);
    `seed` tells repeats apart and is no hyperparameter, so it is left out, as is a
    parameter with one value or one some rows lack. Seeded: the same rows give the same
    importances."""
    keys = [key for key in config_keys(list(params)) if key in trials.columns]
    swept = [key for key in keys if trials[key].map(hashable).nunique() > 1]
    if len(swept) < 2:
        return _nothing_to_rank(swept)
    scored = measured(trials, metric)
    # A key some configurations lack (one that exists only under a condition) is left out,
    # as optuna's own intersection of the trials' parameters would.
    values = pd.DataFrame({key: scored[key].map(hashable) for key in swept
                           if scored[key].notna().all()}, index=scored.index)  # fmt: skip
    configurations = len(values.drop_duplicates()) if len(values.columns) else min(len(values), 1)
    if configurations < MIN_CONFIGURATIONS:
        return (f"importance: {configurations} configurations finished with a {metric},"
                f" too few for fANOVA (it needs {MIN_CONFIGURATIONS})")  # fmt: skip
    varying = [key for key in values.columns if values[key].nunique() > 1]
    if len(varying) < 2:
        return _nothing_to_rank(varying, " among the finished configurations")
    try:
        import optuna  # an optional extra, slow to import: only when it is needed
    except ImportError:
        return f"importance: {INSTALL}"
    shares = _fanova(optuna, values[varying], scored[metric], mode)
    frame = pd.DataFrame(list(shares.items()), columns=["parameter", "importance"])
    frame["importance"] = frame["importance"].astype(float)
    return frame.sort_values("importance", ascending=False, kind="stable", ignore_index=True)


def _nothing_to_rank(varying: list[str], among: str = "") -> str:
    if varying:
        return f"importance: only {varying[0]} varies{among}, nothing to rank it against"
    return f"importance: no swept parameter varies{among}"


def _fanova(optuna: Any, params: pd.DataFrame, scores: pd.Series, mode: str) -> dict[str, float]:
    """optuna's fANOVA importances of an in-memory study with a trial per row."""
    distributions = {key: _distribution(optuna, params[key]) for key in params.columns}
    rows = [{key: _internal(value, distributions[key]) for key, value in row.items()}
            for row in params.to_dict("records")]  # fmt: skip
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line
    try:
        study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
        study.add_trials([
            optuna.trial.create_trial(params=row, distributions=distributions, value=float(score))
            for row, score in zip(rows, scores, strict=True)
        ])  # fmt: skip
        # Optuna's default forest (64 trees, depth 64) takes 9 s on 1,000 configurations
        # here; 32 trees of depth 8 take 0.6 s and rank alike (BENCHMARKS.md).
        evaluator = optuna.importance.FanovaImportanceEvaluator(n_trees=32, max_depth=8, seed=0)
        return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
    finally:
        optuna.logging.set_verbosity(verbosity)


def _distribution(optuna: Any, column: pd.Series) -> Any:
    """Numbers as a range (of integers where they all are; on a log scale where they span
    more than a decade above 0), anything else as categories of its text."""
    distributions = optuna.distributions
    values = list(column.unique())
    if not all(is_number(value) for value in values):
        return distributions.CategoricalDistribution(sorted({str(value) for value in values}))
    low, high = min(values), max(values)
    log = bool(low > 0 and high > 10 * low)
    if all(isinstance(value, int | np.integer) for value in values):
        return distributions.IntDistribution(int(low), int(high), log=log)
    return distributions.FloatDistribution(float(low), float(high), log=log)


def _internal(value: Any, distribution: Any) -> Any:
    """A value as its distribution takes it: text for a category, a plain int or float."""
    if hasattr(distribution, "choices"):
        return str(value)
    return int(value) if isinstance(value, int | np.integer) else float(value)
