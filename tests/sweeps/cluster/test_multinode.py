"""A sweep on a multi-node Ray cluster (ray.cluster_utils.Cluster) that loses a node."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from sweeps.plan.spec import parse_spec
from sweeps.runs.runner import run_sweep
from tests.sweeps.conftest import PLUGINS, plugin_env

pytestmark = pytest.mark.slow


def test_trials_of_a_lost_worker_node_are_retried_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray
    from ray.cluster_utils import Cluster

    for key, value in plugin_env().items():  # inherited by the cluster's workers
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(PLUGINS)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    doomed = cluster.add_node(num_cpus=1)
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    marks = tmp_path / "marks"
    marks.mkdir()
    spec = parse_spec(
        {"name": "lossy", "trainer": "user_trainers:marked", "dataset": None,
         "base": {"epochs": 4, "sleep_s": 0.5, "marks": str(marks)},
         "grid": {"x": [1, 2, 3, 4, 5, 6]},
         "max_failures": 10, "resources": {"cpus": 1, "gpus": 0}},
        "test",
    )  # fmt: skip
    results = tmp_path / "results"
    finished_at_removal: list[int] = []

    def remove_a_node_mid_sweep() -> None:
        deadline = time.monotonic() + 120
        # Once a trial has ended and both nodes train another: Tune retries a trial that
        # was running, while one lost as it starts is recorded as failed (see README).
        while True:
            finished = len(list(results.glob("lossy/*/trials/*.parquet")))
            if finished and len(list(marks.iterdir())) >= finished + 2:
                break
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        finished_at_removal.append(finished)
        cluster.remove_node(doomed)  # it takes a running trial down

    remover = threading.Thread(target=remove_a_node_mid_sweep)
    try:
        ray.init(address=cluster.address)
        remover.start()
        outcome = run_sweep(spec, results=results, address=cluster.address, say=lambda m: None)
        remover.join()
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert finished_at_removal and 1 <= finished_at_removal[0] < 5  # removed mid-sweep
    trials = pd.read_parquet(Path(outcome.run_dir) / "trials")
    assert sorted(trials["x"]) == [1, 2, 3, 4, 5, 6] and trials["trial_id"].is_unique
    assert set(trials["status"]) == {"TERMINATED"}, trials[["x", "status", "error"]].to_string()
    assert outcome.failed == 0
    epochs = pd.read_parquet(Path(outcome.run_dir) / "epochs")
    assert (epochs.groupby("trial_id")["epoch"].apply(list) == [[1, 2, 3, 4]] * 6).all()
