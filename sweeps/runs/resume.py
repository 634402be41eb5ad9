"""Continue an interrupted run: the Parquet rows are the truth of what is done.

`resume` trains the configurations without a trials row, whatever became of Tune's own
state, and those that failed for a cause outside the trainer (`RETRIED_BY_DEFAULT`), or
every failed one if asked; it checks first that it could write all it writes.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pyarrow.parquet as pq

from analysis.logs import LOGS
from analysis.place import Place, StorageError, not_writable
from analysis.rundir import EPOCHS, LOCK, TRIALS, TUNE, RunDir, Status
from sweeps.cluster.resources import say_if_waiting, slots
from sweeps.cluster.session import Say, check_address, ray_session
from sweeps.plan.groups import RunPlan, plan_run
from sweeps.plan.spec import SweepSpec
from sweeps.record.progress import status_every_s
from sweeps.record.results import finished_configs, read_trials
from sweeps.record.tensorboard import TENSORBOARD
from sweeps.runs.checkpoints import CHECKPOINTS, resumable
from sweeps.runs.manifest import now, read_run, recorded_import_path, write_manifest
from sweeps.runs.runlock import run_lock
from sweeps.runs.runner import (
    RunOutcome,
    abandon_run,
    finish_run,
    fit_plan,
    prepare,
    say_fused,
)
from sweeps.runs.sigterm import TermAsInterrupt
from sweeps.runs.trainable import import_folders, importable_from

# The errors of a configuration that failed for a cause outside its trainer (its module
# missing on a worker, its worker process or node gone): `resume` trains it again.
RETRIED_BY_DEFAULT = (
    "TrainerImportError",
    "ActorDiedError",
    "RayActorError",
    "ActorUnavailableError",
    "WorkerCrashedError",
    "NodeDiedError",
    "LocalRayletDiedError",
)


def resume_sweep(
    run_dir: str | Path,
    *,
    address: str | None = None,
    data_dir: str | None = None,
    retry_failed: bool = False,
    say: Say = print,
    dashboard: bool = False,
) -> RunOutcome:
    """Continue an interrupted run: the configurations with results are kept, the others
    are trained (regrouped as a fresh run would group them), and so are those that failed
    for a cause outside the trainer (`RETRIED_BY_DEFAULT`), or with `retry_failed` every
    failed one: their rows are replaced. RunInUse if another process writes the run.
    The trainer is imported from the folders the run recorded, then the current one."""
    run_dir = RunDir.of(run_dir).place  # a store that answers, no symlink loop
    spec, manifest = read_run(run_dir)
    check_resumable(run_dir)
    folders = list(dict.fromkeys([*recorded_import_path(manifest), *import_folders()]))
    with importable_from(folders):
        return _resume_sweep(run_dir, spec, address=address, data_dir=data_dir,
                             retry_failed=retry_failed, say=say, dashboard=dashboard,
                             import_path=folders)  # fmt: skip


def _resume_sweep(
    run_dir: Place,
    spec: SweepSpec,
    *,
    address: str | None,
    data_dir: str | None,
    retry_failed: bool,
    say: Say,
    dashboard: bool,
    import_path: list[str],
) -> RunOutcome:
    configs, dataset = prepare(spec, data_dir)
    status_every_s()
    check_address(address)
    with run_lock(run_dir):
        spec, manifest = read_run(run_dir)  # as the last writer left them
        done = finished_configs(run_dir)
        retried = _retried(run_dir, retry_failed)
        plan = plan_run(spec, configs, slots=1).without(done - set(retried.values()))
        attempt = len(manifest.setdefault("resumed_at", [])) + 1
        why = "--retry-failed" if retry_failed else "for a cause outside the trainer"
        again = f" ({len(retried)} of them failed before, {why})" if retried else ""
        if spec.search == "tpe":  # sweeps.runs.searcher: the rows are what it learnt
            again += "; the search goes on from the results so far"
        say(f"resuming run {manifest.get('run_id', run_dir.uri)}:"
            f" {len(configs) - plan.pending} of {len(configs)} configurations have results,"
            f" {plan.pending} to train{again}")  # fmt: skip
        check = None
        if plan.pending:
            shown = say if dashboard else None
            with (
                TermAsInterrupt() as terminated,
                ray_session(address, dashboard=shown, import_path=import_path, say=say),
            ):
                say_if_waiting(spec, say)
                manifest["resumed_at"].append(now())
                # Running again: until it ends, the run reads as in progress (sweeps report).
                manifest.pop("finished_at", None)
                manifest["trials"] = len(configs)
                write_manifest(run_dir, manifest)
                total = len(configs)
                terminated.when_stuck(lambda: abandon_run(spec, run_dir, manifest, total, say))
                _forget(run_dir, set(retried))
                plan = _from_checkpoints(run_dir, plan.repacked(slots(spec)))
                say_fused(plan, say)
                check = fit_plan(plan, run_dir, manifest.get("run_id", ""), dataset,
                             f"resume-{attempt}", say)  # fmt: skip
        return finish_run(spec, run_dir, manifest, len(configs), check)


def _from_checkpoints(run_dir: Place, plan: RunPlan) -> RunPlan:
    """The plan with each configuration that has a checkpoint going on from it."""
    if plan.spec.checkpoint == "off":
        return plan
    trials = read_trials(run_dir)
    done = set(trials["trial_id"].astype(str)) if "trial_id" in trials else set()
    pending = {index for group in plan.groups for index in group}
    return dataclasses.replace(plan, resume_from=resumable(run_dir, pending, done))


def _retried(run_dir: Place, every_failure: bool) -> dict[str, int]:
    """The failed configurations `resume` trains again: their trial ids -> their indices."""
    trials = read_trials(run_dir)
    failed = trials[trials["status"] == Status.FAILED]
    return {
        str(row["trial_id"]): int(row["config_index"])
        for _, row in failed.iterrows()
        if every_failure or str(row["error"]).startswith(tuple(f"{name}:" for name in
                                                                 RETRIED_BY_DEFAULT))
    }  # fmt: skip


def _forget(run_dir: Place, trial_ids: set[str]) -> None:
    """Remove the rows of `trial_ids`, to be trained again: the trials rows first, so that a
    trials row still promises its epochs whenever this stops. A trials file left with no
    row goes, and with it its epochs file (which has no row at all if it failed at once)."""
    if not trial_ids:
        return
    gone: set[str] = set()
    for folder in (TRIALS, EPOCHS):
        place = run_dir / folder
        for path in place.parquet_files():
            name = os.path.basename(path)
            table = pq.read_table(path, filesystem=place.fs)
            ids = table.column("trial_id").to_pylist()
            kept = [row for row, trial_id in enumerate(ids) if trial_id not in trial_ids]
            if name in gone or (ids and not kept):
                place.fs.delete_file(path)
                gone.add(name)
            elif len(kept) < len(ids):
                (place / name).write_parquet(table.take(kept))


def check_resumable(run_dir: Place) -> None:
    """StorageError naming the run directory unless `resume` could write all it writes
    there: the folder, the folders in it that get files (Parquet, Tune's, TensorBoard's)
    and the lock. Checked before Ray starts or the lock is taken, so a read-only run is
    left as it was. An object store answers only when written to, so it passes."""
    if not run_dir.local:
        return
    for name in ("", TRIALS, EPOCHS, TUNE, TENSORBOARD, LOGS, LOCK, CHECKPOINTS):
        path = os.path.join(run_dir.path, name) if name else run_dir.path
        why = not_writable(path) if os.path.exists(path) else None
        if why is not None:
            what = f"{name}{'/' * os.path.isdir(path)} in it" if name else "it"
            raise StorageError(f"cannot resume {run_dir.uri!r}: {what} is {why}")
