"""The Tuner a run plan becomes, looked at before it runs (no Ray started): its trials,
their resources, its scheduler and where Tune writes; and its trainable, called as a
trial calls it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest
import ray
from ray import tune
from ray.tune.execution import class_cache
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator

from analysis.place import Place
from sweeps.plan.groups import RunPlan, configurations, plan_run
from sweeps.plan.spec import parse_spec
from sweeps.record.events import Listener
from sweeps.record.fanout import Fanout
from sweeps.record.protocol import FINAL, decode
from sweeps.runs.tuning import CREDENTIALS, make_tuner
from trainers import DEFAULTS, Dataset

SPEC = {"name": "tuned", "dataset": "digits", "base": {"epochs": 2, "batch_size": 64},
        "grid": {"hidden": [[4], [8], [16]]}, "resources": {"cpus": 2, "gpus": 0},
        "max_concurrent": 3, "max_failures": 2}  # fmt: skip
STRICT_METRIC = "TUNE_DISABLE_STRICT_METRIC_CHECKING"


def plan(**changes: Any) -> RunPlan:
    spec = parse_spec({**SPEC, **changes}, "test")
    return plan_run(spec, configurations(spec), slots=1)


@pytest.fixture(autouse=True)
def propagated(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Tune's list of variables copied into its trials, as it was before make_tuner edits it
    (and as it is again after the test, as is the environment make_tuner sets)."""
    # Tune's own list holds the credentials; a run earlier in this process took them out.
    before = set(class_cache.ENV_VARS_TO_PROPAGATE) | CREDENTIALS
    monkeypatch.setattr(class_cache, "ENV_VARS_TO_PROPAGATE", before)
    monkeypatch.setenv(STRICT_METRIC, "")  # recorded, so that the test's value is undone
    monkeypatch.delenv(STRICT_METRIC)
    return before


def tuner_parts(run_plan: RunPlan, tune_dir: Place) -> tuple[Any, Fanout]:
    """The Tuner's own view of what it was given (Tune keeps it in its local tuner)."""
    fanout = Fanout(run_plan.configs, run_plan.groups, Listener(), [])
    tuner = make_tuner(run_plan, tune_dir, "run", None, fanout)
    assert not ray.is_initialized()  # a Tuner made, no Ray started (the next test's fixture)
    return tuner._local_tuner, fanout


def test_a_trial_per_group_with_the_specs_resources_and_limits(tmp_path: Path) -> None:
    run_plan = plan()
    local, fanout = tuner_parts(run_plan, Place.of(tmp_path) / "tune")
    assert len(run_plan.groups) == 3  # each hidden width a bundle of its own
    assert local._param_space == {"group": tune.grid_search([0, 1, 2])}
    assert local._trainable._resources.bundles == [{"CPU": 2.0}]
    config = local._tune_config
    assert config.scheduler is None and config.reuse_actors
    assert isinstance(config.search_alg, BasicVariantGenerator)
    assert config.search_alg.max_concurrent == 3
    run = local._run_config
    assert (run.name, run.storage_path, run.storage_filesystem) == ("run", f"{tmp_path}/tune", None)
    assert run.callbacks == [fanout] and run.stop is fanout.stopper
    assert run.failure_config.max_failures == 2
    assert run.verbose == 0 and run.log_to_file  # our display, and the trials' output in files
    assert STRICT_METRIC not in os.environ  # no scheduler to check a metric for


def test_a_share_of_a_gpu_is_reserved_and_an_unlimited_run_passes_tune_zero(tmp_path: Path) -> None:
    local, _ = tuner_parts(plan(resources={"cpus": 1, "gpus": 0.25}, max_concurrent=None),
                           Place.of(tmp_path))  # fmt: skip
    assert local._trainable._resources.bundles == [{"CPU": 1.0, "GPU": 0.25}]
    assert local._tune_config.search_alg.max_concurrent == 0  # Tune's "no limit"


def test_asha_stops_no_trial_before_its_final_report(tmp_path: Path) -> None:
    run_plan = plan(scheduler="asha", metric="val_loss", mode="min", grace_period=2,
                    grid={"hidden": [[4], [8]], "epochs": [3, 5]},
                    base={"batch_size": 64})  # fmt: skip
    scheduler = tuner_parts(run_plan, Place.of(tmp_path))[0]._tune_config.scheduler
    assert isinstance(scheduler, ASHAScheduler)
    assert (scheduler.metric, scheduler._mode) == ("val_loss", "min")
    assert scheduler._max_t == 5 + 1  # the longest trial's epochs and its final report
    rungs = [milestone for milestone, _ in scheduler._brackets[0]._rungs]
    assert min(rungs) == 2  # the grace period: the first epoch a trial may be stopped at
    # A trial without the metric goes on (the run's end says so) rather than end the run.
    assert os.environ[STRICT_METRIC] == "1"


def test_asha_over_a_users_trainer_that_does_not_say_its_epochs(tmp_path: Path) -> None:
    run_plan = plan(scheduler="asha", trainer="user_trainers:steady", dataset=None,
                    base={}, grid={"x": [1, 2]})  # fmt: skip
    scheduler = tuner_parts(run_plan, Place.of(tmp_path))[0]._tune_config.scheduler
    assert scheduler._max_t == int(DEFAULTS["epochs"]) + 1


def test_the_trials_carry_no_cloud_credentials(tmp_path: Path, propagated: set[str]) -> None:
    tuner_parts(plan(), Place.of(tmp_path))
    assert propagated - CREDENTIALS == class_cache.ENV_VARS_TO_PROPAGATE


def test_a_run_in_a_bucket_gives_tune_the_filesystem_with_its_options(s3_server: str) -> None:
    """The endpoint is in the filesystem object: Tune would not read it from a URI."""
    tune_dir = Place.of(s3_server) / "run1" / "tune"
    run = tuner_parts(plan(), tune_dir)[0]._run_config
    assert run.storage_path == "sweeps-test/results/run1/tune"
    assert isinstance(run.storage_filesystem, pafs.S3FileSystem)
    assert run.storage_filesystem is tune_dir.fs


def test_the_trainable_trains_the_group_of_the_trial_it_is_given(
    tmp_path: Path, digits: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Called as a trial calls it: the plan, the trainer and the resources come with it."""
    run_plan = plan(resources={"cpus": 3, "gpus": 0})
    fanout = Fanout(run_plan.configs, run_plan.groups, Listener(), [])
    tuner = make_tuner(run_plan, Place.of(tmp_path), "run", digits, fanout)
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(tune, "report", sent.append)
    tuner._local_tuner._trainable({"group": 2})
    final = decode(sent[-1])
    assert final is not None and final.kind == FINAL
    (metrics,) = final.members
    hidden = run_plan.configs[run_plan.groups[2][0]]["hidden"][0]
    assert metrics["params"] == 64 * hidden + hidden + hidden * 10 + 10
    assert (metrics["device"], metrics["threads"], metrics["epochs_completed"]) == ("cpu", 3, 2)
