"""Run a sweep on Ray Tune: an embedded local Ray of our own, or a cluster at `address`.

Everything that can be checked is checked before anything starts or is written: the
trainer, every configuration against the data, the run id, the results location, the
address, and whether any node can hold a trial. Then the run directory is made, the plan
(sweeps.plan.groups) fixed and saved, and Tune gets one trainable with the dataset in the
object store.

    <results>/<sweep name>/<run id>/spec.yaml       the resolved spec
                                    manifest.json   versions, host, devices, times
                                    trials/ epochs/ Parquet (sweeps.record.results)
                                    logs/           what trials printed (sweeps.record.logs)
                                    tune/           Tune's own files: run/, resume-1/, ...

The Parquet rows are the truth of what is done: `resume` (sweeps.runs.resume) trains
the configurations without a trials row, whatever became of Tune's own state. One
process at a time writes a run (sweeps.runs.runlock). SIGTERM ends a run as Ctrl-C does
(sweeps.runs.sigterm).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.numbers import count
from analysis.place import Place
from analysis.rundir import SPEC, TUNE, Status
from sweeps.cluster.resources import resolve_gpus, say_if_waiting, slots
from sweeps.cluster.session import Say, check_address, ray_session
from sweeps.plan.groups import Config, RunPlan, configurations, plan_run, shapes
from sweeps.plan.search import check_optuna
from sweeps.plan.spec import (
    DEFAULT_TRAINER,
    SpecError,
    SweepSpec,
    check_run_id,
    to_yaml,
)
from sweeps.record.compact import compact_run
from sweeps.record.events import MetricCheck
from sweeps.record.progress import status_every_s
from sweeps.record.results import RunWriter, read_trials
from sweeps.runs.manifest import (
    IMPORT_PATH,
    new_manifest,
    now,
    write_manifest,
)
from sweeps.runs.runlock import run_lock
from sweeps.runs.sigterm import TermAsInterrupt
from sweeps.runs.trainable import import_folders, importable_from, resolve_trainer

# Tune's CSV/JSON loggers duplicate what the Parquet writer keeps, and its TensorBoard
# logger would draw one curve for a whole fused bundle or pack: sweeps.record.loggers writes
# TensorBoard per configuration instead. Its console output engine prints banners
# whatever `verbose` says; our display replaces it.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


class ResultsWriteError(OSError):
    """The results could no longer be written; what was written is whole."""

    def __init__(self, run_dir: Place, cause: OSError) -> None:
        # pyarrow's text repeats itself ("[Errno 28] Error writing bytes ... [errno 28] No
        # space left on device"): the errno says it once.
        why = os.strerror(cause.errno) if cause.errno else str(cause)
        super().__init__(f"cannot write results to {run_dir.uri}: {why}")
        self.run_dir = run_dir.uri


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    spec: SweepSpec  # as resolved for the run
    run_dir: str  # a local path or a URI
    total: int  # configurations of the run
    counts: dict[str, int]  # configurations written, by status
    check: MetricCheck | None = None  # the spec's metric in what this process saw end
    no_metric: bool = False  # not one configuration of the run has it

    @property
    def failed(self) -> int:
        return self.counts.get(Status.FAILED, 0)

    @property
    def stopped(self) -> int:
        """Configurations the scheduler stopped early: finished, and not trained again."""
        return self.counts.get(Status.STOPPED, 0)

    @property
    def finished(self) -> int:
        return sum(self.counts.values())

    def metric_warnings(self) -> list[str]:
        """The configurations that ended without the metric, a line for each set of keys
        they reported; none where no configuration has it (`metric_error` says so)."""
        return self.check.warnings() if self.check is not None and not self.no_metric else []

    def metric_error(self) -> str | None:
        """Why the run failed though its trials finished: none has the spec's metric."""
        if self.check is None or not self.no_metric:
            return None
        return self.check.error(" (so ASHA stopped none)" if self.spec.scheduler == "asha" else "")


def prepare(spec: SweepSpec, data_dir: str | None) -> tuple[list[Config], Any]:
    """The spec's configurations and the dataset every trial trains on, loaded once by the
    driver (None: the user's trainer loads its own data), each configuration checked
    against it before anything starts (a trainer gone from the path fails here, once)."""
    configs = configurations(spec)
    dataset = None
    if spec.dataset is not None:
        from trainers import load_dataset

        dataset = load_dataset(spec.dataset, data_dir)
    check_configs(spec, shapes(spec, configs), dataset)
    return configs, dataset


def check_configs(spec: SweepSpec, configs: list[Config], dataset: Any = None) -> None:
    """Every configuration of the built-in trainer, checked before any trial starts:
    against the data when it is given, else the values alone (a cluster's data)."""
    if spec.trainer != DEFAULT_TRAINER:  # ours is there, and importing it waits for torch
        resolve_trainer(spec.trainer)  # a typo in `trainer` fails here, not in every trial
    if spec.search == "tpe":
        check_optuna()
    if spec.trainer != DEFAULT_TRAINER:
        return
    from trainers import ConfigError, TrainConfig, check_config

    checked: set[str] = set()
    for config in configs:
        key = repr(sorted(config.items()))
        if key in checked:
            continue
        checked.add(key)
        try:
            check_config(config, dataset) if dataset is not None else TrainConfig.from_dict(config)
        except ConfigError as error:
            raise SpecError(f"{spec.name}: {error}") from None


def new_run_id() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def new_run_dir(spec: SweepSpec, results: str | Path | None, run_id: str) -> Place:
    """Where the run will write, checked before anything starts: a plain run id, a results
    location that can be written, and no earlier run of that id there."""
    root = Place.of(results or spec.results)
    root.check_reachable()  # named as the user gave it, not with the new run's id
    run_dir = root / spec.name / check_run_id(run_id)
    if run_dir.exists():
        raise SpecError(f"run directory {run_dir.uri!r} already exists")
    run_dir.check_writable()
    return run_dir


def run_sweep(
    spec: SweepSpec,
    *,
    results: str | Path | None = None,
    address: str | None = None,
    data_dir: str | None = None,
    run_id: str | None = None,
    say: Say = print,
    dashboard: bool = False,
    import_path: Sequence[str] | None = None,
) -> RunOutcome:
    """Run every configuration of `spec`; the outcome counts what was written. With
    `dashboard`, Ray's dashboard too, its URL said. A user's trainer is imported from the
    folders of `import_path` first (default: the current folder; see import_folders),
    here and on an embedded Ray's workers; the manifest records them for `resume`."""
    folders = list(import_path) if import_path is not None else import_folders()
    with importable_from(folders):
        return _run_sweep(spec, results=results, address=address, data_dir=data_dir,
                          run_id=run_id, say=say, dashboard=dashboard,
                          import_path=folders)  # fmt: skip


def _run_sweep(
    spec: SweepSpec,
    *,
    results: str | Path | None,
    address: str | None,
    data_dir: str | None,
    run_id: str | None,
    say: Say,
    dashboard: bool,
    import_path: list[str],
) -> RunOutcome:
    configs, dataset = prepare(spec, data_dir)
    run_id = run_id or new_run_id()
    run_dir = new_run_dir(spec, results, run_id)
    status_every_s()  # a bad $SWEEPS_STATUS_EVERY_S is one line now, not once Ray is up
    check_address(address)
    shown = say if dashboard else None
    with (
        TermAsInterrupt() as terminated,
        ray_session(address, dashboard=shown, import_path=import_path, say=say) as started,
    ):
        notes: list[str] = []
        spec = resolve_gpus(spec, embedded=address is None and started, say=notes.append)
        say_if_waiting(spec, say)
        plan = plan_run(spec, configs, slots(spec))
        # Made once Ray is up (a cluster that cannot be joined leaves nothing), and only by
        # one process: another `run --run-id` of this id may have started with this one.
        with run_lock(run_dir, new=True):
            for note in notes:  # only once the run is known to go ahead: an error is one line
                say(note)
            (run_dir / SPEC).write_text(to_yaml(plan.spec))
            manifest = {**new_manifest(plan.spec, run_id, address), "trials": len(configs),
                        IMPORT_PATH: import_path}  # fmt: skip
            write_manifest(run_dir, manifest)
            total = len(configs)
            terminated.when_stuck(lambda: abandon_run(plan.spec, run_dir, manifest, total, say))
            say(f"run {run_id}: {count(len(configs), 'trial')} -> {run_dir}")
            say_fused(plan, say)
            if spec.search == "tpe":
                at_once = f", {spec.max_concurrent} at a time" if spec.max_concurrent else ""
                say(f"search: Optuna's TPE proposes each configuration from the results so"
                    f" far{at_once}")  # fmt: skip
            check = fit_plan(plan, run_dir, run_id, dataset, "run", say)
            return finish_run(plan.spec, run_dir, manifest, len(configs), check)


def abandon_run(spec: SweepSpec, run_dir: Place, manifest: dict[str, Any], total: int,
             say: Say) -> int:  # fmt: skip
    """End a run that Tune could not end after a SIGTERM (sweeps.runs.sigterm): its rows are
    whole, so the manifest is finished from them (not compacted: the process ends within
    seconds, and `resume` compacts); the exit code."""
    with contextlib.suppress(Exception):  # whatever fails here, the process ends now
        finish_run(spec, run_dir, manifest, total, compact=False)
    say(f"interrupted: continue with `sweeps resume {run_dir.uri}`")
    return 1


def say_fused(plan: RunPlan, say: Say) -> None:
    fused = plan.fused
    if fused:
        bundles, trials = count(len(fused), "bundle"), count(len(plan.groups), "Tune trial")
        say(f"fused: {sum(map(len, fused))} of them train in {bundles} of up to"
            f" {plan.spec.max_bundle}; {trials} in all")  # fmt: skip
    if plan.packed:
        bundles = sum(len(plan.sizes[group]) for group in plan.packed)
        how = ("their kernels overlapping on CUDA streams" if float(plan.spec.resources.gpus) > 0
               else "taking turns on the CPU")  # fmt: skip
        say(f"packed: {bundles} bundles in {count(len(plan.packed), 'Tune trial')} (a process"
            f" a trial), {how} (the cluster runs {count(plan.slots, 'trial')} at once;"
            " --pack off: a trial a bundle)")  # fmt: skip


def fit_plan(plan: RunPlan, run_dir: Place, run_id: str, dataset: Any, name: str,
             say: Say | None = None) -> MetricCheck:  # fmt: skip
    """Train the plan's groups; what they reported of the spec's metric. ResultsWriteError
    if the results stopped being writable. `say` hears each step before the seconds it
    takes: the dataset into the object store, the workers started."""
    from sweeps.record.fanout import Fanout
    from sweeps.record.loggers import run_loggers
    from sweeps.record.progress import LiveProgress
    from sweeps.runs.tuning import make_tuner

    spec = plan.spec
    writer = RunWriter(run_dir, run_id, plan.shapes, float(spec.resources.gpus))
    progress = LiveProgress(spec.swept, spec.metric, spec.mode, plan)
    check = MetricCheck(spec.metric)
    views = [progress, check, *run_loggers(spec, run_dir, run_id)]
    fanout = Fanout(plan.configs, plan.groups, writer, views)
    searched = read_trials(run_dir) if spec.search == "tpe" else None  # what it learnt
    if say is not None and dataset is not None:
        say(f"putting {spec.dataset} into Ray's object store")
    tuner = make_tuner(plan, run_dir / TUNE, name, dataset, fanout, searched)
    # Tune logs every failed trial and its own bookkeeping; the Parquet rows and our
    # summary carry the trial errors, so its logger speaks only for itself when it fails.
    tune_logger = logging.getLogger("ray.tune")
    level = tune_logger.level
    tune_logger.setLevel(logging.CRITICAL)
    if say is not None:
        say(f"starting {count(min(plan.slots, len(plan.groups)), 'worker')}")
    try:
        tuner.fit()
    finally:
        tune_logger.setLevel(level)
    if fanout.failure is not None:
        raise ResultsWriteError(run_dir, fanout.failure)
    return check


def finish_run(spec: SweepSpec, run_dir: Place, manifest: dict[str, Any], total: int,
            check: MetricCheck | None = None, compact: bool = True) -> RunOutcome:  # fmt: skip
    try:  # first: the rows are then read from one file a folder
        if compact:
            compact_run(run_dir)
    except OSError as error:
        raise ResultsWriteError(run_dir, error) from None
    trials = read_trials(run_dir)
    counts = {str(k): int(v) for k, v in trials["status"].value_counts().items()}
    manifest.update(finished_at=now(), trials=total, counts=counts)
    try:
        write_manifest(run_dir, manifest)
    except OSError as error:
        raise ResultsWriteError(run_dir, error) from None
    # A resumed run's earlier configurations count too: their rows hold the metric.
    had = (check is not None and check.reported > 0) or (
        spec.metric in trials.columns and bool(trials[spec.metric].notna().any())
    )
    missing = check is not None and bool(check.missing)
    return RunOutcome(spec, run_dir.uri, total, counts, check, missing and not had)
