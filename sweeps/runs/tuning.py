"""The Tuner of a run plan: one Tune trial per group, and one callback of ours
(sweeps.record.fanout) instead of Tune's output and loggers."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator

from analysis.place import Place
from sweeps.plan.groups import RunPlan
from sweeps.record.fanout import Fanout
from sweeps.runs.checkpoints import Checkpoints
from sweeps.runs.trainable import run_group

# Tune copies these from the driver's environment into every trial actor's runtime_env,
# which Ray's runtime_env agent logs in clear (session_*/logs/runtime_env_agent.log, mode
# 0644). Our trials need no cloud credentials (the driver writes the results); a trial that
# does gets them as any Ray worker does, from the environment its node runs it in.
CREDENTIALS = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"}
)


def make_tuner(
    plan: RunPlan, tune_dir: Place, name: str, dataset: Any, fanout: Fanout,
    trials: pd.DataFrame | None = None,
) -> Any:  # fmt: skip
    """A Tuner whose trial `{"group": i}` trains `plan.groups[i]`, or for `search: tpe`
    whose k-th trial trains what the search proposes (learning from the run's `trials`
    rows so far first); Tune's own files go to `tune_dir/name` (a folder an attempt),
    what the trials report to `fanout`."""
    from ray.tune.execution import class_cache

    class_cache.ENV_VARS_TO_PROPAGATE = set(class_cache.ENV_VARS_TO_PROPAGATE) - CREDENTIALS
    spec = plan.spec
    gpus = float(spec.resources.gpus)  # resolved by now
    trainable = tune.with_parameters(
        run_group, dataset=dataset, trainer=spec.trainer, cpus=spec.resources.cpus, gpus=gpus,
        plan=[_shared((plan.configs, plan.groups, plan.sizes))],
        checkpoints=Checkpoints.of(plan, tune_dir.parent),  # tune_dir is <run_dir>/tune
    )  # fmt: skip
    scheduler = None
    if spec.scheduler == "asha":
        # Tune's own check of the scheduler's metric raises on the first report without it
        # (a trainer's `val_acc` for `val_accuracy`, or a final report that leaves it out),
        # a traceback that ends the run; without the metric ASHA lets a trial go on, and
        # the run's end names what the trials reported instead (MetricCheck).
        os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
        from trainers import DEFAULTS

        # A trainer of the user's that does not say its epochs: the built-in trainer's.
        epochs = [planned or int(DEFAULTS["epochs"]) for planned in plan.epochs]
        scheduler = ASHAScheduler(
            metric=spec.metric,
            mode=spec.mode,
            grace_period=spec.grace_period,
            max_t=max(epochs) + 1,  # + the trial's final report, which must not be cut
        )
    storage_path, storage_filesystem = tune_dir.for_tune()
    if spec.search == "tpe":
        param_space: dict[str, Any] = {}
        from sweeps.runs.searcher import tpe_searcher

        search_alg = tpe_searcher(plan.spec, trials if trials is not None else pd.DataFrame())
        samples = plan.pending
    else:
        param_space = {"group": tune.grid_search(list(range(len(plan.groups))))}
        # Tune ignores max_concurrent_trials when given a search_alg: limit it here.
        search_alg = BasicVariantGenerator(max_concurrent=spec.max_concurrent or 0)
        samples = 1
    return tune.Tuner(
        tune.with_resources(trainable, {"cpu": spec.resources.cpus, "gpu": gpus}),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            scheduler=scheduler,
            # A trial's process stays for the next one: torch is imported and the dataset
            # fetched once per worker, not once per trial.
            reuse_actors=True,
            search_alg=search_alg,
            num_samples=samples,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage_path,
            storage_filesystem=storage_filesystem,
            verbose=0,
            stop=fanout.stopper,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            callbacks=[fanout],
            log_to_file=True,
        ),
    )


def _shared(plan: tuple[Any, ...]) -> Any:
    """The plan in Ray's object store, for each worker to fetch once (trainable.shared_plan;
    in a list, so that Tune passes the reference, not what it refers to); as it is where
    no Ray runs (a Tuner made to be looked at): a put would start one."""
    return ray.put(plan) if ray.is_initialized() else plan
