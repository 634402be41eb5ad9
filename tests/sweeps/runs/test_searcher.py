"""TPE through Tune's OptunaSearch: what a resumed search learns from the rows, and a real
search interrupted and resumed (each configuration once, the search going on)."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from sweeps.plan.spec import parse_spec
from sweeps.runs.searcher import study_from_rows, tpe_searcher
from tests.helpers.processes import interrupted
from tests.sweeps.conftest import SWEEPS, plugin_env

SPACE: dict[str, Any] = {
    "name": "bowl", "trainer": "user_trainers:bowl", "dataset": None, "search": "tpe",
    "base": {"epochs": 2}, "grid": {"optimizer": ["sgd", "adam"], "hidden": [[64], [128, 64]]},
    "sample": {"lr": {"loguniform": [1e-4, 1.0]},
               "momentum": {"uniform": [0.0, 0.99], "when": {"optimizer": "sgd"}}},
}  # fmt: skip


def row(index: int, status: str = "TERMINATED", score: float | None = 0.5, **config: Any):
    return {"trial_id": f"t{index}", "config_index": index, "status": status,
            "val_accuracy": score, **config}  # fmt: skip


def test_the_study_holds_each_finished_configuration_with_its_score() -> None:
    spec = parse_spec(SPACE, "test")
    trials = pd.DataFrame([
        row(0, optimizer="sgd", hidden=np.array([64]), lr=0.01, momentum=0.9, score=0.99),
        row(1, optimizer="adam", hidden=np.array([128, 64]), lr=0.1, momentum=math.nan),
        row(2, status="ERROR", score=None, optimizer="sgd", hidden=np.array([64]), lr=0.5,
            momentum=0.1),
        row(3, status="STOPPED", optimizer="adam", hidden=np.array([64]), lr=1e-3,
            momentum=None, score=0.7),
        row(4, status="DIVERGED", score=math.nan, optimizer="sgd", hidden=np.array([64]),
            lr=0.9, momentum=0.5),
        row(5, optimizer="sgd", hidden=np.array([64]), lr=3.0, momentum=0.5),  # out of range
        row(6, optimizer="sgd", hidden=np.array([32]), lr=0.1, momentum=0.5),  # not a choice
    ])  # fmt: skip
    storage, learnt = study_from_rows(spec, trials)
    assert learnt == 3
    import optuna

    study = optuna.load_study(study_name="sweeps", storage=storage)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert [trial.params for trial in study.trials] == [
        {"optimizer": "sgd", "hidden": "[64]", "lr": 0.01, "momentum": 0.9},
        {"optimizer": "adam", "hidden": "[128, 64]", "lr": 0.1},
        {"optimizer": "adam", "hidden": "[64]", "lr": 1e-3},
    ]
    assert [trial.value for trial in study.trials] == [0.99, 0.5, 0.7]
    assert study_from_rows(spec, pd.DataFrame())[1] == 0


def test_tpe_proposes_after_the_trials_it_was_given() -> None:
    spec = parse_spec({**SPACE, "mode": "min"}, "test")
    trials = pd.DataFrame([row(i, optimizer="adam", hidden=np.array([64]), lr=10 ** -(i % 4 + 1),
                               score=float(i)) for i in range(12)])  # fmt: skip
    searcher = tpe_searcher(spec, trials)
    proposed = searcher.suggest("a")
    assert proposed["search_trial"] == 0  # the first proposal of this attempt
    assert searcher._ot_study.direction.name == "MINIMIZE" and len(searcher._ot_study.trials) == 13


@pytest.mark.slow
def test_an_interrupted_search_resumes_where_it_stopped(tmp_path: Path) -> None:
    spec = tmp_path / "bowl.yaml"
    spec.write_text(yaml.safe_dump({**SPACE, "num_samples": 7, "max_concurrent": 1,
                                    "base": {"epochs": 2, "sleep_s": 0.3}}))  # fmt: skip
    results = tmp_path / "results"
    command = [*SWEEPS, "run", str(spec), "--results", str(results)]
    code, stderr = interrupted(command, plugin_env(), results, "bowl/*/trials/*.parquet", 3)
    assert code == 1, stderr
    assert "search: Optuna's TPE proposes each configuration from the results so far, 1 at" \
           " a time" in stderr  # fmt: skip
    (run_dir,) = (results / "bowl").iterdir()
    before = pd.read_parquet(run_dir / "trials")
    assert 3 <= len(before) < 7

    resumed = subprocess.run([*SWEEPS, "resume", str(run_dir)], env=plugin_env(),
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "the search goes on from the results so far" in resumed.stderr + resumed.stdout
    after = pd.read_parquet(run_dir / "trials").sort_values("config_index")
    assert list(after["config_index"]) == list(range(7))  # each configuration once
    assert set(after["status"]) == {"TERMINATED"}
    kept = after[after["trial_id"].isin(before["trial_id"])]
    pd.testing.assert_frame_equal(
        kept.set_index("trial_id")[["lr", "optimizer", "val_accuracy"]].sort_index(),
        before.set_index("trial_id")[["lr", "optimizer", "val_accuracy"]].sort_index(),
    )
    # A restarted search would draw its first proposals again: a resumed one goes on.
    new = after[~after["trial_id"].isin(before["trial_id"])]
    assert not set(new["lr"]) & set(before["lr"])
    for _, configuration in after.iterrows():
        has_momentum = not pd.isna(configuration["momentum"])
        assert has_momentum == (configuration["optimizer"] == "sgd"), configuration
        assert configuration["hidden"].tolist() in ([64], [128, 64])
    epochs = pd.read_parquet(run_dir / "epochs")
    assert len(epochs) == 7 * 2
