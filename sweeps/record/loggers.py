"""Each configuration's epochs where users already look: TensorBoard, W&B, MLflow.

A Tune trial trains a group of configurations (a fused bundle, a pack: sweeps.plan.groups),
so Tune's own loggers, which log a trial, would log one curve for several models, under
the config `{"group": i}`. Here each configuration is handed to the loggers as if it were
a trial of its own, named by its `trial_id` in the Parquet rows:

    <run_dir>/tensorboard/<trial_id>/   epoch scalars, config as hparams (sweeps.record.tensorboard)
    W&B, MLflow                          Ray's WandbLoggerCallback, MLflowLoggerCallback

W&B and MLflow are imported only when a spec asks for them (`callbacks:`), and configured
the way their users already configure them, through their environment variables.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
import os
import tempfile
from typing import Any

from ray.tune.logger import LoggerCallback

from analysis.place import Place
from sweeps.plan.spec import SpecError, SweepSpec
from sweeps.record.curves import CurveListener
from sweeps.record.events import Configuration
from sweeps.record.tensorboard import TENSORBOARD, TensorBoardLogger

# What each optional logger imports, and the extra of ours that installs it.
NEEDS = {"wandb": ("wandb", "wandb"), "mlflow": ("mlflow", "mlflow")}
_DATABASES = {"sqlite", "postgresql", "mysql", "mssql"}  # MLflow's SQLAlchemy stores
STEP = "training_iteration"  # where Ray's loggers look for the step: the epoch here


# --- checks at the CLI's edge ---------------------------------------------------------


def check_callbacks(spec: SweepSpec) -> None:
    """SpecError, one line, unless every logger the spec names can start here: its package
    installed, W&B logged in (or offline), MLflow's tracking store one it can open."""
    for name in spec.callbacks:
        module, extra = NEEDS.get(name, (None, None))
        if module and importlib.util.find_spec(module) is None:
            raise SpecError(f"callbacks: {name} needs `pip install sweeps[{extra}]`")
    if "wandb" in spec.callbacks:
        _check_wandb()
    if "mlflow" in spec.callbacks:
        _check_mlflow()


def _check_wandb() -> None:
    from ray.air.integrations.wandb import _set_api_key

    # Ray looks the key up through an API wandb deprecates, and wandb warns so on stderr
    # once a process: spent here, silenced, it shows neither in this error nor mid-run.
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            _set_api_key()  # what the callback's setup does, after the run has started
    except ValueError:
        raise SpecError(
            "callbacks: wandb has no API key: run `wandb login`, set WANDB_API_KEY,"
            " or WANDB_MODE=offline"
        ) from None


def _check_mlflow() -> None:
    import mlflow

    uri = mlflow.get_tracking_uri()
    try:
        from mlflow.tracking._tracking_service.utils import _get_store
    except ImportError:  # another MLflow: the callback's setup will say
        return
    try:
        _get_store(uri)
    except Exception as error:
        raise SpecError(
            f"callbacks: mlflow cannot use the tracking store {uri!r}: {_store_fix(uri, error)}"
        ) from None


def _store_fix(uri: str, error: Exception) -> str:
    """Why MLflow refused the store at `uri`, and what to set instead."""
    text = " ".join(str(error).split())
    elsewhere = "MLFLOW_TRACKING_URI=http://HOST:5000 for a tracking server"
    if "MLFLOW_ALLOW_FILE_STORE" in text:  # MLflow 3.13 put file stores behind a switch
        return f"MLflow refuses file stores unless MLFLOW_ALLOW_FILE_STORE=true; or {elsewhere}"
    scheme = uri.partition(":")[0].partition("+")[0]
    if scheme in _DATABASES and importlib.util.find_spec("sqlalchemy") is None:
        # mlflow-skinny (our extra) has no database stores; MLflow 3 defaults to sqlite.
        return (
            f"a {scheme} store needs the full MLflow (`pip install mlflow`); or"
            f" {elsewhere}, or file:///PATH with MLFLOW_ALLOW_FILE_STORE=true"
        )
    return f"{text.split('. ')[0]}; set {elsewhere}"


# --- one configuration as Ray's loggers see a trial -------------------------------------


@dataclasses.dataclass(eq=False)  # hashed by identity: the loggers key their state by it
class Member:
    """A configuration as a trial: what Ray's loggers read of a Trial."""

    trial_id: str  # its trial_id in the Parquet rows
    config: dict[str, Any]
    local_path: str  # where W&B's logging actor works (it chdirs there)
    experiment_dir_name: str  # W&B's group, unless WANDB_RUN_GROUP: the run id

    def __str__(self) -> str:
        return self.trial_id


class RayLogger(CurveListener):
    """One of Ray's `LoggerCallback`s (W&B's, MLflow's), called per configuration."""

    def __init__(self, name: str, logger: LoggerCallback, run_dir: Place, run_id: str) -> None:
        super().__init__()
        self.name, self.logger, self.run_id = name, logger, run_id
        # W&B's actor works in a local folder: the run directory, or one of its own.
        self.where = run_dir.path if run_dir.local else tempfile.mkdtemp(prefix="sweeps-logs-")
        self.members: dict[str, Member] = {}

    def setup(self) -> None:
        self._guard(self.logger.setup)

    def begin(self, configuration: Configuration) -> None:
        member = self.members.get(configuration.id)
        if member is None:  # (a retry keeps its member: the logger knows it)
            os.makedirs(self.where, exist_ok=True)
            member = Member(configuration.id, dict(configuration.config), self.where, self.run_id)
            self.members[configuration.id] = member
        self.logger.log_trial_start(member)

    def log(self, configuration: Configuration, step: int, values: dict[str, float]) -> None:
        self.logger.log_trial_result(step, self.members[configuration.id], {**values, STEP: step})

    def close(self, configuration: Configuration, failed: bool) -> None:
        self.logger.log_trial_end(self.members[configuration.id], failed)

    def finished(self) -> None:
        self._guard(lambda: self.logger.on_experiment_end(trials=[]))


# --- the loggers of a run ---------------------------------------------------------------


def run_loggers(spec: SweepSpec, run_dir: Place, run_id: str) -> list[CurveListener]:
    """A listener for each of the spec's `callbacks`."""
    loggers: list[CurveListener] = []
    if TENSORBOARD in spec.callbacks:
        loggers.append(TensorBoardLogger(run_dir))
    if "wandb" in spec.callbacks:
        # The driver's WANDB_MODE and WANDB_DIR reach the logging actors, which run in
        # Ray's environment (on a cluster, not the driver's).
        options = {key: os.environ[name] for key, name in (("mode", "WANDB_MODE"),
                   ("dir", "WANDB_DIR")) if os.environ.get(name)}  # fmt: skip
        if "dir" in options:  # the actor works in the run directory: relative to here
            options["dir"] = os.path.abspath(options["dir"])
        project = os.environ.get("WANDB_PROJECT") or spec.name
        loggers.append(RayLogger("wandb", _wandb_logger(project=project, **options), run_dir,
                                 run_id))  # fmt: skip
    if "mlflow" in spec.callbacks:
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or spec.name
        tags = {"sweeps.sweep": spec.name, "sweeps.run_id": run_id}
        logger = MLflowLoggerCallback(experiment_name=experiment, tags=tags)
        loggers.append(RayLogger("mlflow", logger, run_dir, run_id))
    return loggers


def _wandb_logger(**options: Any) -> LoggerCallback:
    """Ray's WandbLoggerCallback, whose logging actors wait for W&B to write their run.

    Ray kills a configuration's logging actor as soon as its `wandb.finish()` returns, but
    that only asks W&B's service process to close the run; the service dies with the
    actor, and a run it had not closed yet loses what it had not written (offline, now
    and then, the whole run). `wandb.teardown()` returns once the service has closed the
    run and exited. (The classes are made here: wandb is imported only when asked for.)
    """
    from ray.air.integrations.wandb import WandbLoggerCallback, _WandbLoggingActor

    class LoggingActor(_WandbLoggingActor):
        def run(self) -> None:
            try:
                super().run()
            finally:
                self._wandb.teardown()

    class Logger(WandbLoggerCallback):
        _logger_actor_cls = LoggingActor

    return Logger(**options)
