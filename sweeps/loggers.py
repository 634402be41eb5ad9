"""Each configuration's epochs where users already look: TensorBoard, W&B, MLflow.

A Tune trial trains a group of configurations (a fused bundle, a pack: sweeps.plan), so
Tune's own loggers, which log a trial, would log one curve for several models, under
the config `{"group": i}`. `PerConfiguration` decodes the trial's reports
(sweeps.protocol) and hands each configuration to the loggers as if it were a trial of
its own, named by its `trial_id` in the Parquet rows:

    <run_dir>/tensorboard/<trial_id>/   epoch scalars, config as hparams (sweeps.tensorboard)
    W&B, MLflow                          Ray's WandbLoggerCallback, MLflowLoggerCallback

The loggers are Ray's `LoggerCallback`s, called per configuration; W&B and MLflow are
imported only when a spec asks for them (`callbacks:`), and configured the way their
users already configure them, through their environment variables.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
import logging
import os
from collections.abc import Mapping
from typing import Any

from ray import tune
from ray.tune.logger import LoggerCallback

from sweeps.plan import RunPlan
from sweeps.protocol import EPOCH, Report, decode, scalars
from sweeps.results import EPOCH_NAMES, config_column, configuration_id, metric_column
from sweeps.spec import SpecError, SweepSpec
from sweeps.storage import Place
from sweeps.tensorboard import STEP, TENSORBOARD, TensorBoardLogger

# What each optional logger imports, and the extra of ours that installs it.
NEEDS = {"wandb": ("wandb", "wandb"), "mlflow": ("mlflow", "mlflow")}
# Final values that are bookkeeping, not curves.
_NOT_CURVES = {"epoch", "epochs_completed", "params", "threads"}
_DATABASES = {"sqlite", "postgresql", "mysql", "mssql"}  # MLflow's SQLAlchemy stores

log = logging.getLogger(__name__)


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


def curves(metrics: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, float]:
    """A report's numbers under their Parquet column names (`loss` is `train_loss`; a
    metric named like a config key or a column of ours is `metric_<name>`), bookkeeping
    left out."""
    keys = {config_column(key) for key in config}
    named = {}
    for name, value in scalars(metrics).items():
        if isinstance(value, bool) or not isinstance(value, int | float) or name in _NOT_CURVES:
            continue
        named[EPOCH_NAMES.get(name) or metric_column(name, keys)] = value
    return named


@dataclasses.dataclass
class _State:
    members: list[Member]
    steps: list[int]  # the last epoch each member reported
    tags: list[set[str]]  # what each member's epochs reported
    open: set[int]  # members not ended yet


class PerConfiguration(tune.Callback):
    """Tune's trial events, as each configuration's, fed to Ray `LoggerCallback`s."""

    def __init__(
        self, loggers: dict[str, LoggerCallback], plan: RunPlan, run_dir: Place, run_id: str
    ) -> None:
        self.loggers, self.plan, self.run_dir, self.run_id = loggers, plan, run_dir, run_id
        self.trials: dict[str, _State] = {}

    def setup(self, **info: Any) -> None:
        self._each("setup", **info)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        indices = self.plan.groups[trial.config["group"]]
        known = self.trials.get(trial.trial_id)
        if known is None:  # (a retry keeps its members: the loggers know them)
            where = self.run_dir.path if self.run_dir.local else trial.local_path
            os.makedirs(where, exist_ok=True)
            members = [
                Member(configuration_id(trial.trial_id, k, len(indices)),
                       dict(self.plan.configs[index]), where, self.run_id)
                for k, index in enumerate(indices)
            ]  # fmt: skip
        else:
            members = known.members
        count = len(members)
        self.trials[trial.trial_id] = _State(members, [0] * count, [set() for _ in members],
                                             set(range(count)))  # fmt: skip
        for member in members:
            self._each("log_trial_start", member)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.on_trial_start(iteration, trials, trial)  # a retry starts from scratch

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        report, state = decode(result), self.trials.get(trial.trial_id)
        if report is None or state is None:
            return
        for number, (position, metrics) in enumerate(report.placed()):
            self._report(state, position, metrics, report.kind == EPOCH)
            if report.kind != EPOCH and report.positions is not None:
                # A pack's bundle ended; the rest of the pack may take hours.
                self._end(state, position, failed=_failed(report, number))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end_all(trial.trial_id, failed=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end_all(trial.trial_id, failed=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._each("on_experiment_end", trials=[], **info)

    def _report(self, state: _State, position: int, metrics: dict[str, Any], epoch: bool) -> None:
        member = state.members[position]
        named = curves(metrics, member.config)
        if epoch:
            step = metrics.get("epoch")
            state.steps[position] = step if isinstance(step, int) else state.steps[position] + 1
            state.tags[position].update(named)
        else:  # the final report: what the epochs did not say (test_loss, test_accuracy)
            named = {name: value for name, value in named.items()
                     if name not in state.tags[position]}  # fmt: skip
        if named:
            step = state.steps[position]
            self._each("log_trial_result", step, member, {**named, STEP: step})

    def _end(self, state: _State, position: int, failed: bool) -> None:
        if position in state.open:
            state.open.discard(position)
            self._each("log_trial_end", state.members[position], failed)

    def _end_all(self, trial_id: str, failed: bool) -> None:
        state = self.trials.get(trial_id)
        for position in sorted(state.open) if state else []:
            self._end(state, position, failed)

    def _each(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Call every logger; one that raises stops logging, and the run goes on: the
        Parquet rows are the record, a logger only a view of it."""
        for name, logger in list(self.loggers.items()):
            try:
                getattr(logger, method)(*args, **kwargs)
            except Exception as error:
                del self.loggers[name]
                if isinstance(logger, TensorBoardLogger):
                    logger.abandon()
                reason = " ".join(f"{type(error).__name__}: {error}".split())
                log.warning("%s stopped logging: %s", name, reason)


def _failed(report: Report, number: int) -> bool:
    return bool(report.errors and report.errors[number])


# --- the loggers of a run ---------------------------------------------------------------


def run_loggers(plan: RunPlan, run_dir: Place, run_id: str) -> list[tune.Callback]:
    """The Tune callback that logs each configuration of `plan` to the spec's `callbacks`;
    none if it names none."""
    spec = plan.spec
    loggers: dict[str, LoggerCallback] = {}
    if TENSORBOARD in spec.callbacks:
        loggers[TENSORBOARD] = TensorBoardLogger(run_dir)
    if "wandb" in spec.callbacks:
        # The driver's WANDB_MODE and WANDB_DIR reach the logging actors, which run in
        # Ray's environment (on a cluster, not the driver's).
        options = {key: os.environ[name] for key, name in (("mode", "WANDB_MODE"),
                   ("dir", "WANDB_DIR")) if os.environ.get(name)}  # fmt: skip
        if "dir" in options:  # the actor works in the run directory: relative to here
            options["dir"] = os.path.abspath(options["dir"])
        project = os.environ.get("WANDB_PROJECT") or spec.name
        loggers["wandb"] = _wandb_logger(project=project, **options)
    if "mlflow" in spec.callbacks:
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or spec.name
        tags = {"sweeps.sweep": spec.name, "sweeps.run_id": run_id}
        loggers["mlflow"] = MLflowLoggerCallback(experiment_name=experiment, tags=tags)
    return [PerConfiguration(loggers, plan, run_dir, run_id)] if loggers else []


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
