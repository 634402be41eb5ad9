from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from analysis.place import Place
from sweeps import __version__
from sweeps.cluster.jobs import JobsError
from sweeps.plan.spec import preset_names
from sweeps.runs.runner import ResultsWriteError
from tests.sweeps.conftest import run_cli


def test_version_from_the_installed_package() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "sweeps", "--version"], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == f"sweeps {__version__}"
    assert __version__ != "0+unknown"  # the package is installed, as the README says


def test_help_carries_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("run", "--help") == 0
    assert "sweeps run report-a-batch-size --set batch_size=64,512" in capsys.readouterr().out


def test_help_lists_every_group_s_commands_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("--help") == 0
    commands = capsys.readouterr().out.split("Commands")[1]
    # A command's row begins with its name; a wrapped description's next row with spaces.
    listed = [line.split()[1] for line in commands.splitlines() if line.startswith("│ ")
              and not line.startswith("│  ")]  # fmt: skip
    assert listed == ["run", "resume", "presets", "show", "train",  # sweeps.cli.app
                      "report", "threshold", "compare",  # sweeps.cli.report
                      "export",  # sweeps.cli.export
                      "submit", "jobs", "status", "logs", "stop"]  # sweeps.cli.jobs  # fmt: skip


@pytest.mark.parametrize(
    ("raised", "code", "err"),
    [
        (KeyboardInterrupt(), 130, ""),
        (typer.Exit(3), 3, ""),
        (JobsError("the jobs API refuses"), 1, "error: the jobs API refuses\n"),
        (ConnectionError("nothing at 10.0.0.1:6379"), 2,
         "error: cannot reach Ray: nothing at 10.0.0.1:6379\n"),
        (ResultsWriteError(Place.of("/r"), OSError(28, "full")), 1,
         "error: cannot write results to /r: No space left on device\n"
         "once it can be written: `sweeps resume /r`\n"),
    ],
)  # fmt: skip
def test_main_maps_what_a_command_raises_to_its_exit_code(
    raised: BaseException,
    code: int,
    err: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def raise_it() -> list[str]:
        raise raised

    monkeypatch.setattr("sweeps.cli.app.preset_names", raise_it)
    assert run_cli("presets") == code
    assert capsys.readouterr().err == err


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def raise_it() -> list[str]:
        raise RuntimeError("a bug")

    monkeypatch.setattr("sweeps.cli.app.preset_names", raise_it)
    with pytest.raises(RuntimeError, match="a bug"):
        run_cli("presets")


def test_presets_lists_every_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("presets") == 0
    out = capsys.readouterr().out
    assert all(name in out for name in preset_names())


def test_show_prints_yaml_that_runs_as_a_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("show", "quickstart") == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["name"] == "quickstart" and shown["grid"]["batch_size"][0] == 8


def bad_specs(tmp_path: Path) -> dict[str, str]:
    """Spec files, each wrong in one way, and what the error must say."""
    base = {"name": "bad", "dataset": "digits", "base": {"epochs": 1}}
    cases = {
        "unknown-key": ({**base, "gird": {"x": [1]}}, "unknown key 'gird'"),
        "empty-axis": ({**base, "grid": {"batch_size": []}}, "grid.batch_size"),
        "wrong-type": ({**base, "repeats": "many"}, "repeats: Input should be a valid integer"),
        "bad-activation": ({**base, "grid": {"activation": ["relu", "swish"]}},
                           "activation must be one of"),
        "batch-too-big": ({**base, "base": {"batch_size": 5000}}, "batch_size must be <= the"),
        "bad-trainer": ({**base, "trainer": "no_such_module:train"},
                        "cannot import 'no_such_module'"),
        "bad-dataset": ({**base, "dataset": "cifar10"}, "dataset must be one of"),
        "negative-gpus": ({**base, "resources": {"gpus": -1}}, "resources.gpus"),
        "two-places": ({**base, "grid": {"epochs": [1, 2]}}, "'epochs' is in both base and grid"),
        "unknown-config-key": ({**base, "base": {"bach_size": 8}}, "unknown config key"),
        "bad-fuse": ({**base, "fuse": "always"}, "fuse: Input should be 'auto' or 'off'"),
        "bad-max-bundle": ({**base, "max_bundle": 0}, "max_bundle"),
        "nan-in-grid": ({**base, "grid": {"lr": [0.1, float("nan")]}},
                        "grid.lr[1] must be a finite number, got nan"),
        "fraction-above-1": ({**base, "resources": {"gpus": 1.5}},
                             "resources.gpus: a fraction must be below 1"),
    }  # fmt: skip
    files = {}
    for name, (data, message) in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        files[str(path)] = message
    (tmp_path / "broken.yaml").write_text("name: x\ngrid: {a: [1,\n")
    files[str(tmp_path / "broken.yaml")] = "not valid YAML"
    (tmp_path / "twice.yaml").write_text("name: x\ndataset: digits\nbase:\n  lr: 1\n  lr: 2\n")
    files[str(tmp_path / "twice.yaml")] = f"{tmp_path / 'twice.yaml'}: duplicate key 'lr' at line 5"
    return files


FLAG_CASES = [
    (["run", "no-such-preset"], "'no-such-preset' is neither a spec file nor a preset"),
    (["run", "missing.yaml"], "spec file 'missing.yaml' does not exist"),
    (["run", "quickstart", "--set", "lr"], "--set expects KEY=VALUE"),
    (["run", "quickstart", "--set", "lr=0"], "lr must be > 0, got 0"),
    (["run", "quickstart", "--epochs", "0"], "epochs must be >= 1, got 0"),
    (["run", "quickstart", "--epochs", "many"], "Invalid value for '--epochs'"),
    (["run", "quickstart", "--repeats", "0"], "repeats: Input should be greater than or equal"),
    (["run", "quickstart", "--max-concurrent", "0"], "max_concurrent"),
    (["run", "quickstart", "--gpus-per-trial", "-0.5"], "resources.gpus"),
    (["run", "quickstart", "--gpus-per-trial", "1.5"], "a whole number (got 1.5)"),
    (["run", "quickstart", "--gpus-per-trial", "nan"], "resources.gpus must be a finite number"),
    (["run", "quickstart", "--set", "lr=.nan"], "base.lr must be a finite number, got nan"),
    (["run", "quickstart", "--set", "lr=0.1,.inf"], "grid.lr[1] must be a finite number, got inf"),
    (["run", "quickstart", "--set", "hidden={a: 1, a: 2}"], "duplicate key 'a'"),
    (["run", "quickstart", "--cpus-per-trial", "0"], "resources.cpus"),
    (["run", "quickstart", "--set", "dataset=digits,mnist"], "--set dataset takes one value"),
    (["run", "quickstart", "--set", "hidden=[0]"], "hidden widths must be integers >= 1"),
    (["run", "quickstart", "--bogus"], "No such option: --bogus"),
    (["run", "quickstart", "--max-bundle", "0"], "max_bundle: Input should be greater than"),
    (["run", "quickstart", "--fuse", "maybe"], "'maybe' is not one of 'auto', 'off'"),
    (["run", "report-a-batch-size", "--data-dir", "{tmp}/nowhere"], "mnist not found"),
    (["resume", "{tmp}"], "is not a run directory"),
    (["run", "quickstart", "--address", "127.0.0.1:9"], "cannot reach Ray: nothing answers at"),
    (["run", "quickstart", "--address", "head-without-port"], "is not HOST:PORT"),
    (["show", "nope"], "no preset 'nope'"),
    (["train", "-s", "batch_size=0"], "batch_size must be >= 1, got 0"),
    (["run", "quickstart", "--results", "nosuchscheme://bucket/x"], "results location"),
    (["report", "{tmp}/nowhere"], "run directory '{tmp}/nowhere' does not exist"),
    (["report", "{tmp}"], "has no trial results"),
    (["report", "{tmp}", "--format", "xml"], "--format must be one of table, markdown, csv"),
    (["threshold", "{tmp}/nowhere"], "does not exist"),
    # Refused before the run is read: {tmp} is no run directory.
    (["threshold", "{tmp}", "--threshold", "-1"], "--threshold must be >= 0, got -1.0"),
    (["threshold", "{tmp}", "--threshold", "nan"], "--threshold must be a finite number, got nan"),
    (["threshold", "{tmp}", "--threshold", "inf"], "--threshold must be a finite number, got inf"),
    (["compare", "{tmp}/a", "{tmp}/b"], "run directory '{tmp}/a' does not exist"),
    (["run", "quickstart", "--run-id", "../../x"], "--run-id must be a plain name"),
    (["run", "quickstart", "--results", "{tmp}/a-file/results"], "a-file' is a file"),
    (["run", "quickstart", "--cpus-per-trial", "64"], "a trial asks for 64 CPUs"),
    # Everything `run` checks, `submit` checks before contacting the cluster (port 9: none).
    (["submit", "quickstart", "--set", "batch_size=-16", "--address", "http://127.0.0.1:9",
      "--results", "/shared/sweeps"], "batch_size must be >= 1, got -16"),
    (["submit", "quickstart", "--set", "lr=.nan", "--address", "http://127.0.0.1:9",
      "--results", "/shared/sweeps"], "base.lr must be a finite number, got nan"),
]  # fmt: skip


def test_bad_input_is_one_line_exit_2_and_starts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    started: list[str] = []
    real_init = ray.init

    def count_init(*args: Any, **kwargs: Any) -> Any:
        started.append("ray.init")
        return real_init(*args, **kwargs)

    monkeypatch.setattr(ray, "init", count_init)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    results = tmp_path / "results"
    cases = [([a.replace("{tmp}", str(tmp_path)) for a in args],
              msg.replace("{tmp}", str(tmp_path))) for args, msg in FLAG_CASES]  # fmt: skip
    cases += [(["run", path], message) for path, message in bad_specs(tmp_path).items()]
    assert len(cases) >= 15
    for args, message in cases:
        if args[0] == "run" and "--results" not in args:
            args = [*args, "--results", str(results)]
        code = run_cli(*args)
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert message in err, (args, err)
        lines = err.strip().splitlines()
        if lines[0].startswith("starting Ray (local, "):  # the one case that needs Ray up
            lines = lines[1:]
        assert len(lines) == 1, (args, err)
        assert lines[0].startswith("error: "), (args, err)
    assert not results.exists()
    # Only a trial too large for every node needs Ray up to be known (then nothing is written).
    assert len(started) == 1
