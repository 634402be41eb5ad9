"""Each configuration's epochs where users already look, read back from real runs of the
console script: TensorBoard event files, an offline W&B run, an MLflow file store, and
Ray's dashboard answering while the run is on."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import struct
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import ray
import yaml

from tests.helpers.tensorboard import read_events

SWEEPS = [sys.executable, "-m", "sweeps"]
# Two fused bundles of two (activation fuses; batch sizes do not) packed into one Tune
# trial: four configurations whose trial ids are `<trial>-<position>`.
PACK = {
    "name": "logged", "dataset": "digits", "pack": "on", "max_concurrent": 1,
    "base": {"epochs": 2, "hidden": [16]},
    "grid": {"activation": ["relu", "tanh"], "batch_size": [64, 128]},
}  # fmt: skip
CONFIG_KEYS = ["activation", "batch_size"]
DASHBOARD = re.compile(
    r"Ray dashboard: (http://127\.0\.0\.1:\d+) \(until the run ends\);"
    r" log in with the token `ray get-auth-token` prints$"
)
RUN_TIMEOUT_S = 300


@dataclasses.dataclass
class Logged:
    """One run logged to all three, with the dashboard on, and what it left."""

    run_dir: Path
    trials: pd.DataFrame
    epochs: pd.DataFrame
    wandb_dir: Path
    mlflow_uri: str
    dashboard_lines: list[str]
    dashboard_answers: dict[str, Any]  # what it answered, by request, while the run was on
    stderr: str  # where a logger that stopped logging says why


def logger_env(root: Path) -> dict[str, str]:
    """This environment with W&B offline and MLflow on a file store, all under `root`, and
    none of the variables that would rename what the tests look for."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("WANDB_", "MLFLOW_"))}  # fmt: skip
    return {
        **env,
        "WANDB_MODE": "offline", "WANDB_DIR": str(root / "wandb"),
        "WANDB_CONFIG_DIR": str(root / "wandb-config"), "WANDB_CACHE_DIR": str(root / "cache"),
        "WANDB_DATA_DIR": str(root / "wandb-data"),
        "MLFLOW_TRACKING_URI": (root / "mlruns").as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true",
    }  # fmt: skip


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Logged:
    root = tmp_path_factory.mktemp("loggers")
    (root / "wandb").mkdir()
    spec = root / "logged.yaml"
    spec.write_text(yaml.safe_dump(PACK))
    command = [*SWEEPS, "run", str(spec), "--results", str(root / "results"),
               "--callback", "wandb", "--callback", "mlflow", "--dashboard"]  # fmt: skip
    # Token auth, as a token in ~/.ray/auth_token turns on: the dashboard asks for it.
    token = secrets.token_hex(32)
    env = {**logger_env(root), "HOME": str(root), "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": token}  # fmt: skip
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    watchdog = threading.Timer(RUN_TIMEOUT_S, process.kill)
    watchdog.start()
    try:
        lines, answers = _dashboard_while_running(process, token)
        stdout, stderr = process.communicate()
    finally:
        watchdog.cancel()
        process.kill()
    assert process.returncode == 0, "".join(lines) + stderr
    assert "4 trials: 4 finished, 0 failed, 0 not run" in stdout, stdout
    (run_dir,) = (root / "results" / "logged").iterdir()
    trials = pd.read_parquet(run_dir / "trials")
    epochs = pd.read_parquet(run_dir / "epochs")
    return Logged(run_dir, trials, epochs, root / "wandb", (root / "mlruns").as_uri(),
                  [line for line in lines if "dashboard" in line], answers,
                  "".join(lines) + stderr)  # fmt: skip


def _dashboard_while_running(
    process: subprocess.Popen[str], token: str
) -> tuple[list[str], dict[str, Any]]:
    """The run's stderr up to its dashboard line, and what the dashboard answers then:
    its page, and its API without the token and with it."""
    lines: list[str] = []
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line)
        found = DASHBOARD.search(line.rstrip("\n"))
        if found:
            bearer = {"Authorization": f"Bearer {token}"}
            return lines, {
                "page": _fetch(found[1] + "/"),
                "api without the token": _fetch(found[1] + "/api/version"),
                "api": _fetch(found[1] + "/api/version", bearer),
            }
    return lines, {}


def _fetch(url: str, headers: dict[str, str] | None = None) -> str | int:
    """The body of a GET, the HTTP status that refused it, or why nothing answered."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code
    except OSError as error:  # the dashboard test says so; the loggers' tests go on
        return f"{url}: {type(error).__name__}: {error}"


def expected_curves(logged: Logged, name: str) -> dict[str, dict[int, float]]:
    """The Parquet record: trial_id -> {epoch: value}."""
    return {trial_id: dict(zip(rows["epoch"], rows[name], strict=True))
            for trial_id, rows in logged.epochs.groupby("trial_id")}  # fmt: skip


def assert_close(got: dict[str, dict[int, float]], want: dict[str, dict[int, float]]) -> None:
    assert got.keys() == want.keys()
    for trial_id, steps in want.items():
        assert got[trial_id].keys() == steps.keys(), trial_id
        for step, value in steps.items():
            assert got[trial_id][step] == pytest.approx(value, rel=1e-6), (trial_id, step)


@pytest.mark.slow  # the run starts Ray
def test_the_run_is_one_pack_of_fused_bundles(logged: Logged) -> None:
    """What the other tests rely on: four configurations `<trial>-<k>`, one Tune trial."""
    trials = logged.trials
    assert len(trials) == 4 and set(trials["status"]) == {"TERMINATED"}
    assert trials["bundle_id"].nunique() == 1
    (bundle,) = set(trials["bundle_id"])
    assert sorted(trials["trial_id"]) == [f"{bundle}-{k}" for k in range(4)]
    assert len(logged.epochs) == 4 * 2


# --- TensorBoard --------------------------------------------------------------------------


@pytest.mark.slow  # the run starts Ray
def test_tensorboard_has_each_configurations_epochs_and_hparams(logged: Logged) -> None:
    root = logged.run_dir / "tensorboard"
    folders = {path.name: read_events(path) for path in root.iterdir()}
    assert folders.keys() == set(logged.trials["trial_id"])  # one per configuration
    for name in ("train_loss", "val_accuracy"):
        got = {trial_id: folder.scalars[name] for trial_id, folder in folders.items()}
        assert_close(got, expected_curves(logged, name))
    for row in logged.trials.itertuples():
        folder = folders[row.trial_id]
        # The final report's figures, which no epoch has, at the last epoch's step.
        assert folder.scalars["test_accuracy"] == pytest.approx({2: row.test_accuracy})
        assert folder.hparams == {"activation": row.activation,
                                  "batch_size": float(row.batch_size), "epochs": 2.0,
                                  "hidden": "[16]", "dataset": "digits"}  # fmt: skip
        assert folder.status == "STATUS_SUCCESS"


# --- W&B ----------------------------------------------------------------------------------

WANDB_BLOCK = 32768  # the .wandb file is a LevelDB log: 32 KiB blocks of records
WANDB_FULL, WANDB_LAST = 1, 4  # a record whole, or the last piece of one split (2, 3 first)


def wandb_records(path: Path) -> Iterator[Any]:
    """The records of an offline run's transaction log (what `wandb sync` uploads); wandb
    ships no reader of it in Python any more."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    position, pending = 7, b""
    while position + 7 <= len(data):
        room = WANDB_BLOCK - position % WANDB_BLOCK
        if room < 7:  # a block's tail too short for a header is padding
            position += room
            continue
        crc, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if (crc, length, kind) == (0, 0, 0):
            break
        body = data[position + 7 : position + 7 + length]
        assert zlib.crc32(bytes([kind]) + body) == crc, path
        position += 7 + length
        pending += body
        if kind in (WANDB_FULL, WANDB_LAST):
            yield wandb_internal_pb2.Record.FromString(pending)
            pending = b""


@dataclasses.dataclass
class WandbRun:
    project: str
    group: str
    name: str
    config: dict[str, Any]
    history: dict[str, dict[int, float]]  # key -> {step: value}


def read_wandb_run(path: Path) -> WandbRun:
    run = None
    history: dict[str, dict[int, float]] = {}
    for record in wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
        elif kind == "history":
            row = {item.key or "/".join(item.nested_key): json.loads(item.value_json)
                   for item in record.history.item}  # fmt: skip
            for key, value in row.items():
                history.setdefault(key, {})[row["_step"]] = value
    assert run is not None, f"{path} has no run record"
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    return WandbRun(run.project, run.run_group, run.display_name, config, history)


@pytest.mark.slow  # the run starts Ray
def test_wandb_offline_has_a_run_per_configuration(logged: Logged) -> None:
    files = list(logged.wandb_dir.glob("wandb/offline-run-*/run-*.wandb"))
    runs = {path.stem.removeprefix("run-"): read_wandb_run(path) for path in files}
    assert len(files) == len(runs), logged.stderr
    assert runs.keys() == set(logged.trials["trial_id"]), logged.stderr
    for name in ("train_loss", "val_accuracy"):
        got = {trial_id: run.history[name] for trial_id, run in runs.items()}
        assert_close(got, expected_curves(logged, name))
    for row in logged.trials.itertuples():
        run = runs[row.trial_id]
        assert (run.project, run.group, run.name) == ("logged", row.run_id, row.trial_id)
        assert {key: run.config[key] for key in CONFIG_KEYS} == {
            "activation": row.activation, "batch_size": row.batch_size}  # fmt: skip
        assert run.history["test_accuracy"] == pytest.approx({2: row.test_accuracy})


# --- MLflow -------------------------------------------------------------------------------


@pytest.mark.slow  # the run starts Ray
def test_mlflow_has_a_run_per_configuration(
    logged: Logged, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 reads it here too
    client = MlflowClient(tracking_uri=logged.mlflow_uri)
    experiment = client.get_experiment_by_name("logged")  # the sweep's name
    assert experiment is not None, logged.stderr
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    assert runs.keys() == set(logged.trials["trial_id"])
    for name in ("train_loss", "val_accuracy"):
        got = {trial_id: {m.step: m.value for m in client.get_metric_history(run.info.run_id,
               name)} for trial_id, run in runs.items()}  # fmt: skip
        assert_close(got, expected_curves(logged, name))
    for row in logged.trials.itertuples():
        run = runs[row.trial_id]
        assert run.info.status == "FINISHED"
        assert run.data.tags["sweeps.run_id"] == row.run_id
        assert run.data.tags["sweeps.sweep"] == "logged"
        assert {key: run.data.params[key] for key in CONFIG_KEYS} == {
            "activation": row.activation, "batch_size": str(row.batch_size)}  # fmt: skip
        assert run.data.metrics["test_accuracy"] == pytest.approx(row.test_accuracy)


# --- Ray's dashboard ----------------------------------------------------------------------


@pytest.mark.slow  # the run starts Ray
def test_dashboard_url_answers_while_the_run_is_on(logged: Logged) -> None:
    assert len(logged.dashboard_lines) == 1, logged.dashboard_lines
    answers = logged.dashboard_answers
    assert answers, f"no dashboard line as expected: {logged.dashboard_lines}"
    assert "<title>Ray Dashboard</title>" in answers["page"]
    assert answers["api without the token"] == 401
    assert json.loads(answers["api"])["ray_version"] == ray.__version__


# --- a logger that cannot start -----------------------------------------------------------


def without(module: str) -> list[str]:
    """The console script with `module` not importable, as if not installed."""
    code = (f"import runpy, sys; sys.modules[{module!r}] = None;"
            " runpy.run_module('sweeps', run_name='__main__', alter_sys=True)")  # fmt: skip
    return [sys.executable, "-c", code]


CANNOT_START = {
    "wandb not installed": (
        without("wandb"), ["--callback", "wandb"], {},
        "error: callbacks: wandb needs `pip install sweeps[wandb]`",
    ),
    # The spec's key, as one name: the same check as the flag.
    "no W&B key": (
        SWEEPS, [], {"callbacks": "wandb"},
        "error: callbacks: wandb has no API key: run `wandb login`, set WANDB_API_KEY,"
        " or WANDB_MODE=offline",
    ),
    "MLflow file store not allowed": (
        SWEEPS, ["--callback", "mlflow"], {},
        "error: callbacks: mlflow cannot use the tracking store 'file://{root}/mlruns':"
        " MLflow refuses file stores unless MLFLOW_ALLOW_FILE_STORE=true; or"
        " MLFLOW_TRACKING_URI=http://HOST:5000 for a tracking server",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CANNOT_START)
def test_a_logger_that_cannot_start_stops_the_run_before_it_starts(
    case: str, tmp_path: Path
) -> None:
    command, flags, spec_keys, message = CANNOT_START[case]
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({**PACK, **spec_keys}))
    env = {**logger_env(tmp_path), "HOME": str(tmp_path)}  # no ~/.netrc, no W&B login
    del env["WANDB_MODE"], env["MLFLOW_ALLOW_FILE_STORE"]
    env.pop("NETRC", None)
    completed = subprocess.run(
        [*command, "run", str(spec), "--results", str(tmp_path / "results"), *flags],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.splitlines() == [message.format(root=tmp_path)]
    written = {path.name for path in tmp_path.iterdir()} - {"spec.yaml", "wandb-config"}
    assert written == set(), written  # no results, no W&B run, no MLflow store
