"""`sweeps train`: one model, in this process, no Ray: the built-in trainer or your own.

Joined to the `sweeps` app by sweeps.cli.app.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from sweeps.cli.console import console, fail
from sweeps.cli.options import DataDirOption
from sweeps.plan.overrides import parse_override
from sweeps.plan.spec import SpecError
from sweeps.record.protocol import Scalar, scalars

app = typer.Typer()


@app.command("train")
def train(
    assignments: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", metavar="KEY=VALUE", help="A config value; repeatable."),
    ] = None,
    data_dir: DataDirOption = None,
    trainer: Annotated[
        str | None,
        typer.Option(
            metavar="MODULE:FUNCTION",
            help="Your own trainer, imported from the current folder first."
            " \\[default: the built-in one]",
        ),
    ] = None,
) -> None:
    """Train one model, no Ray: a quick check of a config before sweeping it.

    Config keys and defaults: `python -c "import trainers; print(trainers.DEFAULTS)"`.

    Your own trainer (--trainer) gets the config and the dataset `--set dataset=NAME` names.

    What it raises is printed with its whole traceback (exit 1).

    Examples:

        sweeps train --set dataset=digits --set epochs=10 --set lr=0.1

        sweeps train -s hidden=[1000,1000] -s activation=relu -s optimizer=adam

        sweeps train --trainer mytrain:train --set epochs=2 --set lr=0.1
    """
    from sweeps.plan.spec import DEFAULT_TRAINER

    config = single_values(assignments)
    if trainer is not None and trainer != DEFAULT_TRAINER:
        _train_own(trainer, config, None if data_dir is None else str(data_dir))
        return
    from trainers import DEFAULTS
    from trainers import train as train_model

    if data_dir is not None:
        config["data_dir"] = str(data_dir)
    report = _epoch_lines(config.get("epochs", DEFAULTS["epochs"]))
    console.print(final_table(train_model(config, report=report)))


def _train_own(trainer: str, config: dict[str, Any], data_dir: str | None) -> None:
    """A user's trainer on one config in this process, as a sweep's trial calls it; what
    it raises keeps its traceback: it is the user's to debug, not a one-line error."""
    import traceback

    from sweeps.runs.trainable import import_folders, importable_from, resolve_trainer
    from trainers import load_dataset
    from trainers.config import DATASETS

    if ":" not in trainer:
        raise SpecError(f"--trainer {trainer!r}: give MODULE:FUNCTION, as a spec's trainer")
    name = config.get("dataset")
    if name is not None and name not in DATASETS:
        raise SpecError(f"--set dataset={name!r}: one of {', '.join(DATASETS)}, or none")
    with importable_from(import_folders()):
        function = resolve_trainer(trainer)
        dataset = load_dataset(name, data_dir) if name is not None else None
        try:
            result = function(config, dataset, _epoch_lines(config.get("epochs")))
        except Exception:
            traceback.print_exc()
            raise typer.Exit(1) from None
    if not isinstance(result, dict):
        fail(f"trainer {trainer!r} must return a dict of metrics, got {type(result).__name__}")
        raise typer.Exit(1)
    table = Table(title="final", show_header=False)
    plain = scalars(result)
    for key, value in result.items():
        shown = _number(plain[key]) if key in plain else repr(value)
        table.add_row(Text(str(key)), Text(shown if len(shown) <= 60 else f"{shown[:59]}…"))
    console.print(table)


def _epoch_lines(epochs: Any) -> Callable[[dict[str, Any]], None]:
    """A trainer's `report`, printing Keras' line for each epoch: its number and time,
    then every other metric the trainer reported."""
    counted = itertools.count(1)

    def report(metrics: dict[str, Any]) -> None:
        values = scalars(metrics)
        number, seconds = values.pop("epoch", next(counted)), values.pop("epoch_time_s", None)
        words = [f"epoch {number}" + (f"/{epochs}" if epochs else "")]
        words += [f"{seconds:.2f}s"] if isinstance(seconds, int | float) else []
        words += [f"{key}: {_number(value)}" for key, value in values.items()]
        console.print(" - ".join(words), highlight=False, soft_wrap=True, markup=False)

    return report


def _number(value: Scalar) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def single_values(assignments: list[str] | None) -> dict[str, Any]:
    """`--set key=value` for one model: each key takes exactly one value."""
    config: dict[str, Any] = {}
    for assignment in assignments or []:
        key, values = parse_override(assignment)
        if len(values) != 1:
            raise SpecError(f"--set {assignment!r}: one value per key when training one model")
        config[key] = values[0]
    return config


def final_table(result: dict[str, Any]) -> Table:
    table = Table(title="final", show_header=False)
    for key in ("val_accuracy", "val_loss", "test_accuracy", "test_loss"):
        table.add_row(key, f"{result[key]:.4f}")
    table.add_row("params", f"{result['params']:,}")
    table.add_row("train_time_s", f"{result['train_time_s']:.2f}")
    table.add_row(
        "device", f"{result['device']} ({result['device_name']}, {result['threads']} threads)"
    )
    return table
