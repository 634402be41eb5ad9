from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from sweeps import __version__
from sweeps.cli import app, parse_assignments

runner = CliRunner()


def test_version_from_the_installed_console_script() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "sweeps", "--version"], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == f"sweeps {__version__}"
    assert __version__ != "0+unknown"  # the package is installed, as the README says


def test_help_lists_commands_with_examples() -> None:
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "sweeps train --set dataset=digits" in result.output


def test_set_values_are_yaml() -> None:
    parsed = parse_assignments(["hidden=[64, 64]", "lr=0.1", "activation=relu", "shuffle=false"])
    assert parsed == {"hidden": [64, 64], "lr": 0.1, "activation": "relu", "shuffle": False}


def test_train_on_digits_prints_epochs_and_summary() -> None:
    args = ["train", "-s", "dataset=digits", "-s", "epochs=2", "-s", "lr=0.5"]
    result = runner.invoke(app, args, env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "epoch 1/2 - " in result.output and "epoch 2/2 - " in result.output
    assert "params" in result.output and "4,810" in result.output


def test_bad_input_is_one_line_and_exit_2(tmp_path) -> None:
    cases = {
        ("-s", "batch_size=0"): "error: batch_size must be >= 1, got 0",
        ("-s", "lr"): "error: --set expects KEY=VALUE, got 'lr'",
        ("-s", "activation=swish"): "error: activation must be one of",
        ("--data-dir", str(tmp_path / "none"), "-s", "download=false"): "mnist not found under",
    }
    for args, message in cases.items():
        result = runner.invoke(app, ["train", *args], env={"COLUMNS": "80"})
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
