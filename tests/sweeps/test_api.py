"""sweeps as a library: `sweeps.api.run` runs a sweep as `sweeps run` does, on real Ray,
and returns the run as analysis.load_run reads it; quiet unless asked, the library's
exceptions and warnings where the command line prints lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis import Run, load_run
from sweeps.api import NoMetricError, SweepWarning, overrides_of, run
from sweeps.plan.spec import SpecError, load_spec

STEADY = {"name": "steady", "trainer": "user_trainers:steady", "dataset": None,
          "base": {"epochs": 2}, "grid": {"x": [1, 2]}}  # fmt: skip


def test_the_overrides_are_the_flags_of_sweeps_run() -> None:
    spec = overrides_of({
        "set": {"lr": [0.01, 0.1], "hidden": [[64, 64]], "activation": "tanh"},
        "epochs": 2, "repeats": 3, "cpus_per_trial": 2, "max_concurrent": 1,
        "callback": "tensorboard", "fuse": None,
    }).apply(load_spec("quickstart"))  # fmt: skip
    assert spec.grid["lr"] == [0.01, 0.1]
    assert spec.base["hidden"] == [64, 64] and spec.base["activation"] == "tanh"
    assert spec.base["epochs"] == 2 and spec.repeats == 3 and spec.max_concurrent == 1
    assert spec.resources.cpus == 2 and "tensorboard" in spec.callbacks
    assert spec.fuse == load_spec("quickstart").fuse  # None: as the spec says
    as_flags = overrides_of({"set": ["lr=0.01,0.1", "hidden=[64,64]"]})
    assert as_flags.apply(load_spec("quickstart")).grid["lr"] == [0.01, 0.1]


def test_bad_input_is_the_librarys_exception_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"unknown override 'epoch'; overrides: set, epochs"):
        run("quickstart", epoch=2)
    with pytest.raises(SpecError, match=r"'no-such-sweep' is neither a spec file nor a preset"):
        run("no-such-sweep")
    with pytest.raises(SpecError, match=r"activation must be one of .*; got 'swish'"):
        run("quickstart", set={"activation": "swish"}, results=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.slow
@pytest.mark.usefixtures("local_ray")
def test_run_returns_the_run_that_load_run_reads_and_prints_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    result = run(STEADY, results=tmp_path, set={"x": [1, 2, 3]}, epochs=3)
    printed = capfd.readouterr()
    assert isinstance(result, Run)
    assert "done" not in printed.err and "trials" not in printed.err, printed.err
    assert printed.out == ""
    assert sorted(result.trials["x"]) == [1, 2, 3] and len(result.epochs) == 9
    assert set(result.trials["status"]) == {"TERMINATED"}
    assert set(result.trials["epochs_completed"]) == {3}
    again = load_run(result.path)
    assert again.id == result.id and again.trials.equals(result.trials)
    assert Path(result.path).parent == tmp_path / "steady"


@pytest.mark.slow
@pytest.mark.usefixtures("local_ray")
def test_progress_is_printed_when_asked(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    result = run(STEADY, results=str(tmp_path), progress=True)
    err = capfd.readouterr().err
    assert f"run {result.id}: 2 trials" in err and "2/2 ended  2 done" in err, err


@pytest.mark.slow
@pytest.mark.usefixtures("local_ray")
def test_a_metric_no_trial_reported_raises_and_one_some_did_not_warns(tmp_path: Path) -> None:
    renamed = {**STEADY, "name": "renamed", "trainer": "user_trainers:reports_val_acc"}
    none = r"no trial reported the metric 'val_accuracy'.*they reported: .*val_acc, val_loss$"
    with pytest.raises(NoMetricError, match=none) as raised:
        run(renamed, results=tmp_path)
    assert len(load_run(raised.value.run_dir).trials) == 2  # the rows are there all the same
    with pytest.warns(SweepWarning, match=r"^trial \S+ ended without the metric 'val_accuracy'"):
        result = run(renamed, results=tmp_path, set=["renamed=[2]"])
    assert result.trials["val_accuracy"].notna().sum() == 1


def test_sweeps_run_is_the_api_without_slowing_the_command_line() -> None:
    import subprocess
    import sys

    import sweeps

    assert sweeps.run is run
    # The package the console script imports first does not import the API (pandas, ...).
    probe = "import sys, sweeps; print('sweeps.api' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert shown.stdout.strip() == "False", shown.stderr
