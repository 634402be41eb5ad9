"""The options more than one command takes, each declared once: `run` and `submit` make the
same sweep from the same flags, as one `Overrides`.

Each is an Annotated alias that a command names in its own signature, where Typer reads
the CLI from: one line a command, which keeps the parameter's type and its place in the
command's `--help`.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from sweeps.plan.overrides import Overrides

SpecArgument = Annotated[
    str, typer.Argument(metavar="SPEC_OR_PRESET", help="A YAML file or a preset's name.")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s", metavar="KEY=VALUE",
        help="Set a config value, or sweep it with KEY=V1,V2,...; repeatable.",
    ),
]  # fmt: skip
EpochsOption = Annotated[int | None, typer.Option(help="Epochs of every trial.")]
RepeatsOption = Annotated[int | None, typer.Option(help="Run the grid N times, seeds 0..N-1.")]
CpusOption = Annotated[float | None, typer.Option(help="CPUs each trial reserves.")]
GpusOption = Annotated[
    float | None, typer.Option(help="GPU share of each trial: 0.25 packs four on one GPU.")
]


class Fuse(str, enum.Enum):
    auto = "auto"
    off = "off"


FuseOption = Annotated[
    Fuse | None,
    typer.Option(
        help="auto: train configurations that differ only in activation, lr, loss,"
        " initializer or seed as one fused model per trial; off: one trial each."
        " \\[default: the spec's, auto]",
        case_sensitive=False,
    ),
]


class Pack(str, enum.Enum):
    auto = "auto"
    on = "on"
    off = "off"


PackOption = Annotated[
    Pack | None,
    typer.Option(
        help="auto: on a GPU, train the bundles in as few trials as keep every GPU busy,"
        " their kernels overlapping on CUDA streams; on: pack on CPUs too; off: one trial"
        " a bundle. \\[default: the spec's, auto]",
        case_sensitive=False,
    ),
]
MaxBundleOption = Annotated[
    int | None,
    typer.Option(help="Configurations per fused trial, at most. \\[default: the spec's, auto]"),
]
MaxConcurrentOption = Annotated[int | None, typer.Option(help="Trials at once, at most.")]
DataDirOption = Annotated[
    Path | None,
    typer.Option(envvar="SWEEPS_DATA_DIR", help="Data root holding MNIST/raw/."),
]


class Callback(str, enum.Enum):
    tensorboard = "tensorboard"
    wandb = "wandb"
    mlflow = "mlflow"


CallbackOption = Annotated[
    list[Callback] | None,
    typer.Option(
        "--callback", metavar="NAME", case_sensitive=False,
        help="Also log each configuration to wandb or mlflow (Ray's loggers; configured by"
        " their environment variables), beside the spec's callbacks (tensorboard by"
        " default); repeatable.",
    ),
]  # fmt: skip
DashboardOption = Annotated[
    bool,
    typer.Option(
        "--dashboard",
        help="Start the embedded Ray with its dashboard (on 127.0.0.1) and print its URL;"
        " with --address, print the cluster's.",
    ),
]


def overrides(
    assignments: list[str] | None,
    *,
    epochs: int | None,
    repeats: int | None,
    cpus: float | None,
    gpus: float | None,
    max_concurrent: int | None,
    fuse: Fuse | None,
    max_bundle: int | None,
    pack: Pack | None,
    callbacks: list[Callback] | None,
) -> Overrides:
    """The shared options of `run` and `submit` as one object."""
    return Overrides(
        tuple(assignments or ()), epochs=epochs, repeats=repeats, cpus=cpus, gpus=gpus,
        max_concurrent=max_concurrent, fuse=fuse and fuse.value, max_bundle=max_bundle,
        pack=pack and pack.value, callbacks=tuple(name.value for name in callbacks or ()),
    )  # fmt: skip
