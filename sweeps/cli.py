"""The `sweeps` command line: thin over the library, errors become one line and an exit code.

Exit codes: 0 success, 1 a failure while working, 2 bad input (nothing was started).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from sweeps import __version__

app = typer.Typer(
    help="Hyperparameter sweeps for PyTorch on Ray Tune, with results as Parquet.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)
console = Console()
errors = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"sweeps {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Hyperparameter sweeps for PyTorch on Ray Tune, with results as Parquet."""


def fail(message: str, code: int) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """`key=value` pairs, each value read as a YAML scalar or list: `hidden=[64,64]`."""
    parsed: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {assignment!r}")
        try:
            parsed[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise ValueError(f"--set {assignment!r}: not a YAML value ({error})") from error
    return parsed


@app.command()
def train(
    assignments: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", metavar="KEY=VALUE", help="A config value; repeatable."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(envvar="SWEEPS_DATA_DIR", help="Data root holding MNIST/raw/."),
    ] = None,
) -> None:
    """Train one model, no Ray: a quick check of a config before sweeping it.

    Config keys and defaults: `python -c "import trainers; print(trainers.DEFAULTS)"`.

    Examples:

        sweeps train --set dataset=digits --set epochs=10 --set lr=0.1

        sweeps train -s hidden=[1000,1000] -s activation=relu -s optimizer=adam
    """
    from trainers import DEFAULTS, ConfigError, DataNotFoundError
    from trainers import train as train_model

    try:
        config = parse_assignments(assignments or [])
    except ValueError as error:
        raise fail(str(error), 2) from None
    if data_dir is not None:
        config["data_dir"] = str(data_dir)
    epochs = config.get("epochs", DEFAULTS["epochs"])

    def report(metrics: dict[str, Any]) -> None:
        console.print(
            f"epoch {metrics['epoch']}/{epochs} - {metrics['epoch_time_s']:.2f}s"
            f" - loss: {metrics['loss']:.4f} - accuracy: {metrics['accuracy']:.4f}"
            f" - val_loss: {metrics['val_loss']:.4f}"
            f" - val_accuracy: {metrics['val_accuracy']:.4f}",
            highlight=False,
            soft_wrap=True,
        )

    try:
        result = train_model(config, report=report)
    except (ConfigError, DataNotFoundError) as error:
        raise fail(str(error), 2) from None
    console.print(summary_table(result))


def summary_table(result: dict[str, Any]) -> Table:
    table = Table(title="final", show_header=False)
    for key in ("val_accuracy", "val_loss", "test_accuracy", "test_loss"):
        table.add_row(key, f"{result[key]:.4f}")
    table.add_row("params", f"{result['params']:,}")
    table.add_row("train_time_s", f"{result['train_time_s']:.2f}")
    table.add_row(
        "device", f"{result['device']} ({result['device_name']}, {result['threads']} threads)"
    )
    return table
