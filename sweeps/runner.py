"""Run a sweep on Ray Tune: an embedded local Ray of our own, or a cluster at `address`.

Everything that can be checked is checked before anything starts or is written: the
trainer, every configuration against the data, the run id, the results location, the
address, and whether any node can hold a trial. Then the run directory is made, the plan
(sweeps.plan) fixed and saved, and Tune gets one trainable with the dataset in the
object store.

    <results>/<sweep name>/<run id>/spec.yaml       the resolved spec
                                    manifest.json   versions, host, devices, times
                                    trials/ epochs/ Parquet (sweeps.results)
                                    tune/           Tune's own files: run/, resume-1/, ...

The Parquet rows are the truth of what is done: `resume` trains the configurations
without a trials row, whatever became of Tune's own state, and those that failed for a
cause outside the trainer (`RETRIED_BY_DEFAULT`), or every failed one if asked. One
process at a time writes a run (sweeps.runlock). SIGTERM ends a run as Ctrl-C does
(sweeps.sigterm).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import secrets
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from analysis.place import not_writable
from analysis.rundir import EPOCHS, LOCK, MANIFEST, SPEC, TRIALS, TUNE, RunDir
from sweeps import __version__
from sweeps.plan import Config, RunPlan, configurations, packs_apply, plan_run
from sweeps.progress import status_every_s
from sweeps.ray_session import check_address, check_fits, ray_session
from sweeps.results import FAILED, RunWriter, finished_configs, read_trials
from sweeps.runlock import run_lock
from sweeps.sigterm import TermAsInterrupt
from sweeps.spec import (
    DEFAULT_TRAINER,
    SpecError,
    SweepSpec,
    check_run_id,
    parse_spec,
    read_yaml,
    to_yaml,
)
from sweeps.storage import Place, StorageError
from sweeps.tensorboard import TENSORBOARD
from sweeps.trainable import resolve_trainer

# Tune's CSV/JSON loggers duplicate what the Parquet writer keeps, and its TensorBoard
# logger would draw one curve for a whole fused bundle or pack: sweeps.loggers writes
# TensorBoard per configuration instead. Its console output engine prints banners
# whatever `verbose` says; our display replaces it.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
AUTO_GPU_FRACTION = 0.25
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

Say = Callable[[str], None]


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

    @property
    def failed(self) -> int:
        return self.counts.get("ERROR", 0)

    @property
    def finished(self) -> int:
        return sum(self.counts.values())


def load_shared_dataset(spec: SweepSpec, data_dir: str | None) -> Any:
    """The dataset every trial trains on, loaded once by the driver (None: the user's
    trainer loads its own data)."""
    if spec.dataset is None:
        return None
    from trainers import load_dataset

    return load_dataset(spec.dataset, data_dir)


def check_configs(spec: SweepSpec, configs: list[Config], dataset: Any = None) -> None:
    """Every configuration of the built-in trainer, checked before any trial starts:
    against the data when it is given, else the values alone (a cluster's data)."""
    resolve_trainer(spec.trainer)  # a typo in `trainer` fails here, not in every trial
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
) -> RunOutcome:
    """Run every configuration of `spec`; the outcome counts what was written."""
    configs = configurations(spec)
    dataset = load_shared_dataset(spec, data_dir)
    check_configs(spec, configs, dataset)
    run_id = run_id or new_run_id()
    run_dir = new_run_dir(spec, results, run_id)
    status_every_s()  # a bad $SWEEPS_STATUS_EVERY_S is one line now, not once Ray is up
    check_address(address)
    with TermAsInterrupt() as terminated, ray_session(address) as started:
        notes: list[str] = []
        spec = _resolve_gpus(spec, embedded=address is None and started, say=notes.append)
        _check_fits(spec, say)
        plan = plan_run(spec, configs, _slots(spec))
        # Made once Ray is up (a cluster that cannot be joined leaves nothing), and only by
        # one process: another `run --run-id` of this id may have started with this one.
        with run_lock(run_dir, new=True):
            for note in notes:  # only once the run is known to go ahead: an error is one line
                say(note)
            (run_dir / SPEC).write_text(to_yaml(plan.spec))
            manifest = {**_manifest(plan.spec, run_id, address), "trials": len(configs)}
            _write_manifest(run_dir, manifest)
            total = len(configs)
            terminated.when_stuck(lambda: _abandon(plan.spec, run_dir, manifest, total, say))
            say(f"run {run_id}: {len(configs)} trials -> {run_dir}")
            _say_fused(plan, say)
            _fit(plan, run_dir, run_id, dataset, "run")
            return _finish(plan.spec, run_dir, manifest, len(configs))


def resume_sweep(
    run_dir: str | Path,
    *,
    address: str | None = None,
    data_dir: str | None = None,
    retry_failed: bool = False,
    say: Say = print,
) -> RunOutcome:
    """Continue an interrupted run: the configurations with results are kept, the others
    are trained (regrouped as a fresh run would group them), and so are those that failed
    for a cause outside the trainer (`RETRIED_BY_DEFAULT`), or with `retry_failed` every
    failed one: their rows are replaced. RunInUse if another process writes the run."""
    run_dir = run_place(run_dir)
    spec, manifest = read_run(run_dir)
    check_resumable(run_dir)
    configs = configurations(spec)
    dataset = load_shared_dataset(spec, data_dir)
    check_configs(spec, configs, dataset)  # a trainer gone from the path fails here, once
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
        say(f"resuming run {manifest.get('run_id', run_dir.uri)}:"
            f" {len(configs) - plan.pending} of {len(configs)} configurations have results,"
            f" {plan.pending} to train{again}")  # fmt: skip
        if plan.pending:
            with TermAsInterrupt() as terminated, ray_session(address):
                _check_fits(spec, say)
                manifest["resumed_at"].append(_now())
                # Running again: until it ends, the run reads as in progress (sweeps report).
                manifest.pop("finished_at", None)
                manifest["trials"] = len(configs)
                _write_manifest(run_dir, manifest)
                total = len(configs)
                terminated.when_stuck(lambda: _abandon(spec, run_dir, manifest, total, say))
                _forget(run_dir, set(retried))
                plan = plan.repacked(_slots(spec))
                _say_fused(plan, say)
                _fit(plan, run_dir, manifest.get("run_id", ""), dataset, f"resume-{attempt}")
        return _finish(spec, run_dir, manifest, len(configs))


def _retried(run_dir: Place, every_failure: bool) -> dict[str, int]:
    """The failed configurations `resume` trains again: their trial ids -> their indices."""
    trials = read_trials(run_dir)
    failed = trials[trials["status"] == FAILED]
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


def _abandon(spec: SweepSpec, run_dir: Place, manifest: dict[str, Any], total: int,
             say: Say) -> int:  # fmt: skip
    """End a run that Tune could not end after a SIGTERM (sweeps.sigterm): its rows are
    whole, so the manifest is finished from them; the exit code."""
    with contextlib.suppress(Exception):  # whatever fails here, the process ends now
        _finish(spec, run_dir, manifest, total)
    say(f"interrupted: continue with `sweeps resume {run_dir.uri}`")
    return 1


def run_place(location: str | Path) -> Place:
    """The run directory a user names, for `resume`: a store that answers, a path that is
    no symlink loop; RunDataError naming it otherwise."""
    return RunDir.of(location).place


def check_resumable(run_dir: Place) -> None:
    """StorageError naming the run directory unless `resume` could write all it writes
    there: the folder, the folders in it that get files (Parquet, Tune's, TensorBoard's)
    and the lock. Checked before Ray starts or the lock is taken, so a read-only run is
    left as it was. An object store answers only when written to, so it passes."""
    if not run_dir.local:
        return
    for name in ("", TRIALS, EPOCHS, TUNE, TENSORBOARD, LOCK):
        path = os.path.join(run_dir.path, name) if name else run_dir.path
        why = not_writable(path) if os.path.exists(path) else None
        if why is not None:
            what = f"{name}{'/' * os.path.isdir(path)} in it" if name else "it"
            raise StorageError(f"cannot resume {run_dir.uri!r}: {what} is {why}")


def read_run(run_dir: Place) -> tuple[SweepSpec, dict[str, Any]]:
    """The resolved spec and the manifest a run saved; SpecError naming the file that is
    missing or unreadable."""
    if not (run_dir / SPEC).is_file():
        raise SpecError(f"{run_dir.uri!r} is not a run directory (no {SPEC})")
    texts = {}
    for name in (SPEC, MANIFEST):
        try:
            texts[name] = (run_dir / name).read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise SpecError(f"cannot read {run_dir / name}: {error}") from None
    try:
        data = read_yaml(texts[SPEC])
    except yaml.YAMLError:
        raise SpecError(f"{run_dir / SPEC}: not valid YAML") from None
    spec = parse_spec(data, f"{run_dir / SPEC}")
    try:
        manifest = json.loads(texts[MANIFEST])
    except json.JSONDecodeError as error:
        raise SpecError(f"{run_dir / MANIFEST}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict):
        raise SpecError(f"{run_dir / MANIFEST}: not the manifest of a run")
    if not isinstance(spec.resources.gpus, float | int) or spec.max_bundle == "auto":
        raise SpecError(f"{run_dir / SPEC}: not the resolved spec of a run")
    return spec, manifest


def _check_fits(spec: SweepSpec, say: Say) -> None:
    message = check_fits(spec.resources.cpus, float(spec.resources.gpus))  # resolved
    if message:
        say(message)


def _resolve_gpus(spec: SweepSpec, embedded: bool, say: Say) -> SweepSpec:
    import ray

    visible = ray.cluster_resources().get("GPU", 0)
    gpus = spec.resources.gpus
    if gpus == "auto":
        # A pack is one process that owns its GPU; without packs several trials share one.
        gpus = (1.0 if packs_apply(spec) else AUTO_GPU_FRACTION) if visible else 0.0
    elif gpus > 0 and not visible and embedded:
        say(f"no GPU on this machine: running on CPUs instead of {gpus} GPU per trial")
        gpus = 0.0
    if gpus == 0:
        say(f"trials run on CPUs ({spec.resources.cpus:g} each)")
    resources = spec.resources.model_copy(update={"gpus": gpus})
    return spec.model_copy(update={"resources": resources})


def _slots(spec: SweepSpec) -> int:
    """Trials the cluster can run at once now."""
    import ray

    gpus, resources = float(spec.resources.gpus), ray.cluster_resources()
    if gpus > 0:
        slots = int(resources.get("GPU", 0) / gpus)
    else:
        slots = int(resources.get("CPU", 0) // spec.resources.cpus)
    return min(slots, spec.max_concurrent or slots)


def _say_fused(plan: RunPlan, say: Say) -> None:
    fused = plan.fused
    if fused:
        bundles, trials = _count(len(fused), "bundle"), _count(len(plan.groups), "Tune trial")
        say(f"fused: {sum(map(len, fused))} of them train in {bundles} of up to"
            f" {plan.spec.max_bundle}; {trials} in all")  # fmt: skip
    if plan.packed:
        bundles = sum(len(plan.sizes[group]) for group in plan.packed)
        how = ("their kernels overlapping on CUDA streams" if float(plan.spec.resources.gpus) > 0
               else "taking turns on the CPU")  # fmt: skip
        say(f"packed: {bundles} bundles in {_count(len(plan.packed), 'Tune trial')} (a process"
            f" a trial), {how} (the cluster runs {_count(plan.slots, 'trial')} at once;"
            " --pack off: a trial a bundle)")  # fmt: skip


def _fit(plan: RunPlan, run_dir: Place, run_id: str, dataset: Any, name: str) -> None:
    """Train the plan's groups; ResultsWriteError if the results stopped being writable."""
    from sweeps.callbacks import ResultsCallback
    from sweeps.tuning import make_tuner

    writer = RunWriter(run_dir, run_id, plan.configs, float(plan.spec.resources.gpus))
    results = ResultsCallback(writer, plan.groups)
    tuner = make_tuner(plan, run_dir / TUNE, name, dataset, results)
    # Tune logs every failed trial and its own bookkeeping; the Parquet rows and our
    # summary carry the trial errors, so its logger speaks only for itself when it fails.
    tune_logger = logging.getLogger("ray.tune")
    level = tune_logger.level
    tune_logger.setLevel(logging.CRITICAL)
    try:
        tuner.fit()
    finally:
        tune_logger.setLevel(level)
    if results.failure is not None:
        raise ResultsWriteError(run_dir, results.failure)


def _finish(spec: SweepSpec, run_dir: Place, manifest: dict[str, Any], total: int) -> RunOutcome:
    trials = read_trials(run_dir)
    counts = {str(k): int(v) for k, v in trials["status"].value_counts().items()}
    manifest.update(finished_at=_now(), trials=total, counts=counts)
    try:
        _write_manifest(run_dir, manifest)
    except OSError as error:
        raise ResultsWriteError(run_dir, error) from None
    return RunOutcome(spec, run_dir.uri, total, counts)


def _manifest(spec: SweepSpec, run_id: str, address: str | None) -> dict[str, Any]:
    import ray
    import torch

    resources = ray.cluster_resources()
    accelerators = sorted(
        key.removeprefix("accelerator_type:")
        for node in ray.nodes()
        for key in node.get("Resources", {})
        if key.startswith("accelerator_type:")
    )
    return {
        "run_id": run_id,
        "sweep": spec.name,
        "command": sys.argv,
        "sweeps": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ray": ray.__version__,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "ray_address": address or "embedded",
        "ray_gcs_address": ray.get_runtime_context().gcs_address,
        "devices": {
            "cpus": resources.get("CPU", 0),
            "gpus": resources.get("GPU", 0),
            "gpu_kinds": accelerators,
        },
        "gpus_per_trial": spec.resources.gpus,
        "cpus_per_trial": spec.resources.cpus,
        "started_at": _now(),
    }


def _write_manifest(run_dir: Place, manifest: dict[str, Any]) -> None:
    (run_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
