"""Run a sweep on Ray Tune: an embedded local Ray, or a cluster at `address`.

The driver loads the dataset once and checks every configuration against it before
anything starts or is written; then it makes the run directory, starts (or joins) Ray,
and hands Tune one trainable with the dataset in the object store.

    <results>/<sweep name>/<run id>/spec.yaml       the resolved spec
                                    manifest.json   versions, host, devices, times
                                    trials/ epochs/ Parquet (see sweeps.results)
                                    tune/           Tune's own state, for `resume`
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from sweeps import __version__
from sweeps.fusion import Bundle, auto_bundle_size, fusable_spec, plan_bundles
from sweeps.progress import LiveProgress
from sweeps.results import ParquetWriter, trial_schema
from sweeps.spec import (
    DEFAULT_TRAINER,
    SpecError,
    SweepSpec,
    expand,
    parse_spec,
    read_yaml,
    to_yaml,
)
from sweeps.storage import Place
from sweeps.trainable import resolve_trainer

# Tune's CSV/JSON/TensorBoard loggers duplicate what the Parquet writer keeps, and its
# console output engine prints banners whatever `verbose` says; our display replaces both.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# Save Tune's experiment state at every step (its default waits 10 s or more): a driver
# killed with -9 then resumes without re-running the trials that had finished.
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0")
AUTO_GPU_FRACTION = 0.25
TUNE_DIR = "tune"

Say = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    spec: SweepSpec  # as resolved for the run
    run_dir: str  # a local path or a URI
    total: int  # trials the spec stands for
    counts: dict[str, int]  # trials written, by status

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


def check_configs(spec: SweepSpec, dataset: Any) -> None:
    """Every configuration of the built-in trainer, checked before any trial starts."""
    if spec.trainer != DEFAULT_TRAINER:
        return
    from trainers import ConfigError, check_config

    checked: set[str] = set()
    for config in expand(spec):
        key = repr(sorted(config.items()))
        if key in checked:
            continue
        checked.add(key)
        try:
            check_config(config, dataset)
        except ConfigError as error:
            raise SpecError(f"{spec.name}: {error}") from None


def new_run_id() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def run_dir_of(spec: SweepSpec, results: str | Path | None, run_id: str) -> Place:
    return Place.of(results or spec.results) / spec.name / run_id


def run_sweep(
    spec: SweepSpec,
    *,
    results: str | Path | None = None,
    address: str | None = None,
    data_dir: str | None = None,
    run_id: str | None = None,
    say: Say = print,
) -> RunOutcome:
    """Run every trial of `spec`; the outcome counts what was written."""
    resolve_trainer(spec.trainer)  # a typo in `trainer` fails here, not in every trial
    dataset = load_shared_dataset(spec, data_dir)
    check_configs(spec, dataset)
    check_address(address)
    run_id = run_id or new_run_id()
    run_dir = run_dir_of(spec, results, run_id)
    if run_dir.exists():
        raise SpecError(f"run directory {run_dir.uri!r} already exists")
    with _ray_session(address):
        run_dir.mkdir()  # once Ray is up: a cluster that cannot be joined leaves nothing
        spec = _resolve_bundle_size(_resolve_gpus(spec, address, say))
        bundles = _bundles(spec)
        (run_dir / "spec.yaml").write_text(to_yaml(spec))
        manifest = _manifest(spec, run_id, address)
        _write_manifest(run_dir, manifest)
        say(f"run {run_id}: {spec.trial_count} trials -> {run_dir}")
        if bundles:
            fused = [len(bundle) for bundle in bundles if len(bundle) > 1]
            say(
                f"fused: {sum(fused)} of them train in {_count(len(fused), 'bundle')} of up to"
                f" {spec.max_bundle}; {_count(len(bundles), 'Tune trial')} in all"
            )
        _fit(_tuner(spec, run_dir, run_id, dataset, bundles))
        return _finish(spec, run_dir, manifest)


def resume_sweep(
    run_dir: str | Path,
    *,
    address: str | None = None,
    data_dir: str | None = None,
    say: Say = print,
) -> RunOutcome:
    """Continue an interrupted run: finished trials are kept, the others run again."""
    from ray import tune

    run_dir = Place.of(run_dir)
    needed = [run_dir / "spec.yaml", run_dir / "manifest.json", run_dir / TUNE_DIR]
    if not all(place.exists() for place in needed):
        raise SpecError(
            f"{run_dir.uri!r} is not a run directory (no spec.yaml, manifest.json and tune/)"
        )
    check_address(address)
    spec = parse_spec(read_yaml((run_dir / "spec.yaml").read_text()), f"{run_dir}/spec.yaml")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    dataset = load_shared_dataset(spec, data_dir)
    bundles = _bundles(spec)  # the spec saved is resolved: the same bundles again
    with _ray_session(address):
        say(f"resuming run {manifest['run_id']} in {run_dir}")
        path, filesystem = (run_dir / TUNE_DIR).for_tune()
        tuner = tune.Tuner.restore(
            path,
            storage_filesystem=filesystem,
            trainable=_trainable(spec, dataset, bundles),
            param_space=_param_space(spec, bundles),
        )
        manifest.setdefault("resumed_at", []).append(_now())
        _fit(tuner)
        return _finish(spec, run_dir, manifest)


def _fit(tuner: Any) -> None:
    # Tune logs every failed trial and its own bookkeeping; the Parquet rows and our
    # summary carry the trial errors, so its logger speaks only for itself when it fails.
    tune_logger = logging.getLogger("ray.tune")
    level = tune_logger.level
    tune_logger.setLevel(logging.CRITICAL)
    try:
        tuner.fit()
    finally:
        tune_logger.setLevel(level)


def _finish(spec: SweepSpec, run_dir: Place, manifest: dict[str, Any]) -> RunOutcome:
    trials = read_trials(run_dir)
    counts = trials["status"].value_counts().to_dict() if len(trials) else {}
    manifest.update(finished_at=_now(), trials=spec.trial_count, counts=counts)
    _write_manifest(run_dir, manifest)
    counts = {str(k): int(v) for k, v in counts.items()}
    return RunOutcome(spec, run_dir.uri, spec.trial_count, counts)


def read_trials(run_dir: str | Place) -> pd.DataFrame:
    """The trials written so far (local path or URI); an empty frame before the first."""
    trials = Place.of(run_dir) if isinstance(run_dir, str) else run_dir
    frame = (trials / "trials").read_parquet()
    return frame if len(frame) else pd.DataFrame(columns=["trial_id", "status"])


def check_address(address: str | None, timeout_s: float = 5.0) -> None:
    """ConnectionError unless something listens at a `HOST:PORT` (or `ray://HOST:PORT`)
    address: ray.init would retry a dead one for minutes. `auto` and None pass."""
    if address is None or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConnectionError(f"--address {address!r} is not HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise ConnectionError(f"nothing answers at {address!r} ({error})") from None


@contextlib.contextmanager
def _ray_session(address: str | None) -> Iterator[None]:
    """Ray for the length of a run: an embedded one sized to this machine, or `address`
    joined; a Ray this process had already initialised is used and left running."""
    import ray

    if _init_ray(address):
        try:
            yield
        finally:
            ray.shutdown()
    else:
        yield


def _init_ray(address: str | None) -> bool:
    """Start (or join) Ray unless this process already has; True if it did."""
    import ray

    if ray.is_initialized():
        return False
    ray.init(
        address=address,
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,  # trial output goes to files; the live display stays clean
    )
    return True


def _resolve_gpus(spec: SweepSpec, address: str | None, say: Say) -> SweepSpec:
    import ray

    visible = ray.cluster_resources().get("GPU", 0)
    gpus = spec.resources.gpus
    if gpus == "auto":
        gpus = AUTO_GPU_FRACTION if visible else 0.0
    elif gpus > 0 and not visible and address is None:
        say(f"no GPU on this machine: running on CPUs instead of {gpus} GPU per trial")
        gpus = 0.0
    if gpus == 0:
        say(f"trials run on CPUs ({spec.resources.cpus:g} each)")
    resources = spec.resources.model_copy(update={"gpus": gpus})
    return spec.model_copy(update={"resources": resources})


def _resolve_bundle_size(spec: SweepSpec) -> SweepSpec:
    """`max_bundle: auto` made a number: enough bundles for every trial slot the cluster
    has now. Left as it is where nothing may fuse."""
    import ray

    if spec.max_bundle != "auto" or not fusable_spec(spec):
        return spec
    gpus, resources = float(spec.resources.gpus), ray.cluster_resources()
    if gpus > 0:
        slots = int(resources.get("GPU", 0) / gpus)
    else:
        slots = int(resources.get("CPU", 0) // spec.resources.cpus)
    if spec.max_concurrent is not None:
        slots = min(slots, spec.max_concurrent)
    size = auto_bundle_size(spec, slots, on_gpu=gpus > 0)
    return spec.model_copy(update={"max_bundle": size})


def _bundles(spec: SweepSpec) -> list[Bundle] | None:
    if not isinstance(spec.max_bundle, int):
        return None
    return plan_bundles(spec, on_gpu=float(spec.resources.gpus) > 0)


def _param_space(spec: SweepSpec, bundles: list[Bundle] | None) -> dict[str, Any]:
    from ray import tune

    if bundles:
        return {"bundle": tune.grid_search(list(range(len(bundles))))}
    space: dict[str, Any] = {"dataset": spec.dataset} if spec.dataset is not None else {}
    space.update(spec.base)
    space.update({key: tune.grid_search(values) for key, values in spec.grid.items()})
    for key, sampled in spec.sample.items():
        if sampled.choice is not None:
            space[key] = tune.choice(sampled.choice)
        elif sampled.uniform is not None:
            space[key] = tune.uniform(*sampled.uniform)
        elif sampled.loguniform is not None:
            space[key] = tune.loguniform(*sampled.loguniform)
    if spec.repeats > 1:
        space["seed"] = tune.grid_search(spec.seeds)
    return space


def _trainable(spec: SweepSpec, dataset: Any, bundles: list[Bundle] | None) -> Any:
    from ray import tune

    from sweeps.trainable import run_bundle, run_trial

    gpus = float(spec.resources.gpus)  # resolved by now
    resources = {"cpu": spec.resources.cpus, "gpu": gpus}
    shared = {"dataset": dataset, "cpus": spec.resources.cpus, "gpus": gpus}
    if bundles:
        trainable = tune.with_parameters(run_bundle, bundles=bundles, **shared)
    else:
        trainable = tune.with_parameters(run_trial, trainer=spec.trainer, **shared)
    return tune.with_resources(trainable, resources)


def _tuner(
    spec: SweepSpec, run_dir: Place, run_id: str, dataset: Any, bundles: list[Bundle] | None
) -> Any:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    scheduler = None
    if spec.scheduler == "asha":
        epochs = [c.get("epochs", 20) for c in expand(spec)]
        scheduler = ASHAScheduler(
            metric=spec.metric,
            mode=spec.mode,
            grace_period=spec.grace_period,
            max_t=max(epochs) + 1,  # + the trial's final report, which must not be cut
        )
    gpus = float(spec.resources.gpus)
    writer = ParquetWriter(run_dir, run_id, trial_schema(spec), gpus, bundles)
    storage_path, storage_filesystem = run_dir.for_tune()
    progress = LiveProgress(spec.trial_count, spec.swept, spec.metric, spec.mode, bundles)
    return tune.Tuner(
        _trainable(spec, dataset, bundles),
        param_space=_param_space(spec, bundles),
        tune_config=tune.TuneConfig(
            num_samples=spec.num_samples,
            scheduler=scheduler,
            # A trial's process stays for the next one: torch is imported and the dataset
            # fetched once per worker, not once per trial.
            reuse_actors=True,
            # Tune ignores max_concurrent_trials when given a search_alg: limit it here.
            search_alg=BasicVariantGenerator(
                max_concurrent=spec.max_concurrent or 0,
                random_state=int(spec.base.get("seed", 0)),
            ),
        ),
        run_config=tune.RunConfig(
            name=TUNE_DIR,
            storage_path=storage_path,
            storage_filesystem=storage_filesystem,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            callbacks=[writer, progress],
            log_to_file=True,
        ),
    )


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
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
