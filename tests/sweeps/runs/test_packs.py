"""Packs on a real local Ray (2 CPUs), through the CLI in this process: several bundles in
one Tune trial read exactly like a trial each, and a bundle that fails fails alone. On
the CPU packs are `--pack on` only (auto packs on GPUs)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.runs import read_run, write_spec
from tests.sweeps.conftest import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("local_ray")]
KEYS = ["activation", "batch_size", "epoch"]


def test_a_packed_run_reads_exactly_like_an_unpacked_one(tmp_path: Path, capsys) -> None:
    # Batch 16 stays unfused on the CPU; 64 and 256 fuse their two activations: 4 bundles.
    args = ["run", "quickstart", "--epochs", "2", "--set", "batch_size=16,64,256",
            "--set", "activation=relu,tanh", "--max-concurrent", "1"]  # fmt: skip
    assert run_cli(*args, "--pack", "on", "--results", str(tmp_path / "packed")) == 0
    assert "packed: 4 bundles in 1 Tune trial (a process a trial)" in capsys.readouterr().err
    assert run_cli(*args, "--pack", "off", "--results", str(tmp_path / "apart")) == 0
    _, packed, packed_epochs = read_run(tmp_path / "packed")
    _, apart, apart_epochs = read_run(tmp_path / "apart")

    assert list(packed.columns) == list(apart.columns) and (packed.dtypes == apart.dtypes).all()
    assert list(packed_epochs.columns) == list(apart_epochs.columns)
    assert packed["bundle_id"].nunique() == 1 and packed["trial_id"].is_unique
    assert set(packed["status"]) == {"TERMINATED"} and len(packed) == 6

    def by_configuration(trials: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
        named = epochs.merge(trials[["trial_id", "activation", "batch_size"]], on="trial_id")
        dropped = named.drop(columns=["run_id", "trial_id", "epoch_time_s"])
        return dropped.sort_values(KEYS, ignore_index=True)

    pd.testing.assert_frame_equal(
        by_configuration(packed, packed_epochs), by_configuration(apart, apart_epochs),
        rtol=0, atol=1e-5,
    )  # fmt: skip


def test_a_bundle_that_fails_in_a_pack_fails_alone(tmp_path: Path) -> None:
    """A width whose weights cannot be allocated (a stand-in for a GPU out of memory)
    fails in the trial; the pack's other bundle trains on and is written."""
    spec = write_spec(
        tmp_path / "s.yaml", name="packfail", dataset="digits", pack="on", max_concurrent=1,
        base={"epochs": 2, "batch_size": 64}, grid={"hidden": [[32], [10**9]]},
    )  # fmt: skip
    assert run_cli("run", spec, "--results", str(tmp_path / "results")) == 1
    _, trials, epochs = read_run(tmp_path / "results")
    by_width = trials.set_index(trials["hidden"].map(lambda widths: widths[0]))
    assert by_width.loc[32, "status"] == "TERMINATED"
    assert by_width.loc[32, "epochs_completed"] == 2
    assert by_width.loc[10**9, "status"] == "ERROR"
    assert "RuntimeError" in by_width.loc[10**9, "error"]
    assert "\n" not in by_width.loc[10**9, "error"]
    assert trials["bundle_id"].nunique() == 1
    assert len(epochs) == 2 and set(epochs["trial_id"]) == {by_width.loc[32, "trial_id"]}
