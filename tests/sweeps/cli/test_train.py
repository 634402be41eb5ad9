"""sweeps.cli.train: `sweeps train`, one model in this process, the built-in trainer or a
user's own: the config from --set, each epoch's line, the final table, a user's traceback
kept whole. Rich output is read off a fixed-width console as text."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rich.console import Console

from sweeps.cli.train import _epoch_lines, final_table, single_values
from sweeps.plan.spec import SpecError
from tests.sweeps.conftest import run_cli

SWEEPS = str(Path(sys.executable).with_name("sweeps"))  # the venv's console script
# A user's trainer: it prints, warns and reports; x=2 raises (line 12 of the file).
OWN = """\
import warnings


def train(config, dataset, report):
    print(f"starting x={config['x']}")
    for epoch in range(1, config["epochs"] + 1):
        report({"epoch": epoch, "loss": 1 / epoch, "val_accuracy": 0.5,
                "my_metric": 10.0 * config["x"]})
    warnings.warn(f"x={config['x']} looks odd")
    if config["x"] == 2:
        print("about to fail")
        raise ValueError("x=2 is not allowed")
    return {"val_accuracy": 0.5, "my_tag": "fine"}
"""


def text_console() -> Console:
    """A console as a 100-column terminal without colour, writing to a string."""
    return Console(file=io.StringIO(), width=100, color_system=None, highlight=False)


def shown(console: Console) -> str:
    output = console.file
    assert isinstance(output, io.StringIO)
    return output.getvalue()


@pytest.fixture
def printed(monkeypatch: pytest.MonkeyPatch) -> Console:
    """What sweeps.cli.train prints on stdout, caught by a fixed-width console."""
    console = text_console()
    monkeypatch.setattr("sweeps.cli.train.console", console)
    return console


@pytest.fixture
def own_trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """`own_trainer(source)`: a module of a user's written to the current folder (tmp_path),
    its `train` as --trainer names it. Its name is the test's own: a module imported by
    an earlier test would otherwise be found first."""
    name = "own_" + re.sub(r"\W", "_", tmp_path.name)
    monkeypatch.chdir(tmp_path)

    def write(source: str) -> str:
        (tmp_path / f"{name}.py").write_text(source)
        return f"{name}:train"

    yield write
    sys.modules.pop(name, None)


def test_train_on_digits_prints_epochs_and_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("train", "-s", "dataset=digits", "-s", "epochs=2", "-s", "lr=0.5") == 0
    out = capsys.readouterr().out
    assert "epoch 1/2 - " in out and "epoch 2/2 - " in out
    assert "4,810" in out


def test_train_runs_a_trainer_of_ones_own_with_its_metrics_and_its_real_traceback(
    tmp_path: Path,
) -> None:
    """As a user runs it: the console script in the trainer's folder, stdout and stderr one
    pipe, so that warnings and the traceback are as Python prints them."""
    (tmp_path / "chatty.py").write_text(OWN)
    environ = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}

    def sweeps(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SWEEPS, *args], cwd=tmp_path, env={**environ, "COLUMNS": "100"},
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=300)  # fmt: skip

    fine = sweeps("train", "--trainer", "chatty:train", "--set", "x=1", "--set", "epochs=2")
    assert fine.returncode == 0, fine.stdout
    lines = fine.stdout.splitlines()
    assert "epoch 2/2 - loss: 0.5000 - val_accuracy: 0.5000 - my_metric: 10.0000" in lines
    assert "starting x=1" in lines and "UserWarning: x=1 looks odd" in fine.stdout
    assert any(line.split() == ["│", "my_tag", "│", "fine", "│"] for line in lines), lines

    failed = sweeps("train", "--trainer", "chatty:train", "--set", "x=2", "--set", "epochs=1")
    assert failed.returncode == 1
    trace = failed.stdout[failed.stdout.index("Traceback (most recent call last):") :]
    assert f'  File "{tmp_path}/chatty.py", line 12, in train\n' in trace
    assert trace.endswith('    raise ValueError("x=2 is not allowed")\n'
                          "ValueError: x=2 is not allowed\n")  # fmt: skip


def test_set_gives_each_key_its_one_value_read_as_yaml() -> None:
    config = single_values(["lr=1e-3", "hidden=[64,64]", "activation=relu", "epochs=2"])
    assert config == {"lr": 0.001, "hidden": [64, 64], "activation": "relu", "epochs": 2}
    assert single_values(None) == {}


def test_a_key_given_several_values_is_refused_for_one_model() -> None:
    with pytest.raises(SpecError) as raised:
        single_values(["epochs=2", "lr=0.1,0.01"])
    assert str(raised.value) == "--set 'lr=0.1,0.01': one value per key when training one model"


def test_the_final_table_of_the_built_in_trainer() -> None:
    result = {"val_accuracy": 0.97654, "val_loss": 0.1, "test_accuracy": 0.9712,
              "test_loss": 0.123456, "params": 1234567, "train_time_s": 12.345,
              "device": "cpu", "device_name": "x86_64", "threads": 2}  # fmt: skip
    console = text_console()
    console.print(final_table(result))
    assert shown(console) == (
        "                   final                   \n"
        "┌───────────────┬─────────────────────────┐\n"
        "│ val_accuracy  │ 0.9765                  │\n"
        "│ val_loss      │ 0.1000                  │\n"
        "│ test_accuracy │ 0.9712                  │\n"
        "│ test_loss     │ 0.1235                  │\n"
        "│ params        │ 1,234,567               │\n"
        "│ train_time_s  │ 12.35                   │\n"
        "│ device        │ cpu (x86_64, 2 threads) │\n"
        "└───────────────┴─────────────────────────┘\n"
    )


def test_each_epoch_is_one_line_of_its_number_time_and_metrics(printed: Console) -> None:
    report = _epoch_lines(3)
    report({"epoch": 1, "epoch_time_s": 0.1234, "loss": 0.5, "correct": 7, "tag": "warm",
            "weights": [1.0, 2.0]})  # fmt: skip
    report({"epoch": 2, "loss": 0.25, "note": "[not markup]"})
    assert shown(printed).splitlines() == [
        "epoch 1/3 - 0.12s - loss: 0.5000 - correct: 7 - tag: warm",  # no list: not a metric
        "epoch 2/3 - loss: 0.2500 - note: [not markup]",
    ]


def test_an_epoch_line_without_a_number_or_a_count_of_epochs(printed: Console) -> None:
    report = _epoch_lines(None)
    report({"loss": 0.5})
    report({"loss": 0.25})
    many = {f"metric_{index}": float(index) for index in range(12)}
    report(many)
    lines = shown(printed).splitlines()
    assert lines[:2] == ["epoch 1 - loss: 0.5000", "epoch 2 - loss: 0.2500"]
    # Never wrapped at the console's width: one epoch, one line, whatever its length.
    assert len(lines) == 3 and len(lines[2]) > 100 and lines[2].startswith("epoch 3 - metric_0")


def test_ones_own_trainers_metrics_whatever_their_kind(
    own_trainer: Callable[[str], str], printed: Console
) -> None:
    path = own_trainer(
        "def train(config, dataset, report):\n"
        "    return {'acc': 0.912345, 'steps': 1000, 'ok': True, 'config': config,\n"
        "            'no_dataset': dataset is None, 'note': 'n' * 80}\n"
    )
    assert run_cli("train", "--trainer", path, "--set", "hidden=[64,64]") == 0
    assert shown(printed) == (
        "                                    final                                    \n"
        "┌────────────┬──────────────────────────────────────────────────────────────┐\n"
        "│ acc        │ 0.9123                                                       │\n"
        "│ steps      │ 1000                                                         │\n"
        "│ ok         │ True                                                         │\n"
        "│ config     │ {'hidden': [64, 64]}                                         │\n"
        "│ no_dataset │ True                                                         │\n"
        f"│ note       │ {'n' * 59}… │\n"  # 60 characters at most
        "└────────────┴──────────────────────────────────────────────────────────────┘\n"
    )


def test_ones_own_trainer_must_return_a_dict(
    own_trainer: Callable[[str], str], printed: Console, capsys: pytest.CaptureFixture[str]
) -> None:
    path = own_trainer("def train(config, dataset, report):\n    return 0.5\n")
    assert run_cli("train", "--trainer", path) == 1
    assert capsys.readouterr().err == (
        f"error: trainer {path!r} must return a dict of metrics, got float\n"
    )
    assert shown(printed) == ""  # no table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trainer", "{module}"], "--trainer '{module}': give MODULE:FUNCTION, as a spec's"
                                    " trainer"),
        (["--trainer", "{module}:train", "--set", "dataset=cifar10"],
         "--set dataset='cifar10': one of mnist, fashion_mnist, digits, or none"),
        (["--trainer", "{module}:train", "--set", "x=1,2"],
         "--set 'x=1,2': one value per key when training one model"),
    ],
)  # fmt: skip
def test_a_bad_own_trainer_call_is_refused_before_it_runs(
    own_trainer: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    path = own_trainer("def train(config, dataset, report):\n    print('ran')\n    return {}\n")
    module = path.partition(":")[0]
    given = [arg.replace("{module}", module) for arg in args]
    assert run_cli("train", *given) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: {message.replace('{module}', module)}\n"
    assert "ran" not in captured.out
