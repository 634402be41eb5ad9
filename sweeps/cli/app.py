"""The `sweeps` command line: thin over the library; errors become one line and an exit code.

This module is the app: `run`, `resume`, `presets`, `show`, with the commands of
sweeps.cli.train, sweeps.cli.report and sweeps.cli.jobs joined to it, and `main`, where
every error becomes one line. Exit codes: 0 success, 1 a failure while working (some
trials failed, an interrupted run), 2 bad input (a spec, flag, file or address), in which
case nothing was started.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from typer.exceptions import TyperException

from analysis.numbers import count
from sweeps.cli import export as export_cli
from sweeps.cli import jobs as jobs_cli
from sweeps.cli import report as report_cli
from sweeps.cli import train as train_cli
from sweeps.cli.console import console, errors, fail, say
from sweeps.cli.options import (
    CallbackOption,
    CpusOption,
    DashboardOption,
    DataDirOption,
    EpochsOption,
    FuseOption,
    GpusOption,
    MaxBundleOption,
    MaxConcurrentOption,
    PackOption,
    RepeatsOption,
    SetOption,
    SpecArgument,
    overrides,
)
from sweeps.plan.spec import SpecError, load_spec, preset_names, preset_path
from sweeps.version import __version__

app = typer.Typer(
    help="Hyperparameter sweeps for PyTorch on Ray Tune, with results as Parquet.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)
# Added without a name, a group's commands join this app's: `sweeps --help` lists them
# after this module's own, in this order.
app.add_typer(train_cli.app)
app.add_typer(report_cli.app)
app.add_typer(export_cli.app)
app.add_typer(jobs_cli.app)

AddressOption = Annotated[
    str | None,
    typer.Option(help="Join the Ray cluster at this address instead of starting one."),
]


def _version(value: bool) -> None:
    if value:
        console.print(f"sweeps {__version__}")
        raise typer.Exit()


@app.callback()
def callback(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Hyperparameter sweeps for PyTorch on Ray Tune, with results as Parquet."""


@app.command("run")
def run(
    spec: SpecArgument,
    assignments: SetOption = None,
    epochs: EpochsOption = None,
    repeats: RepeatsOption = None,
    results: Annotated[
        str | None, typer.Option(help="Results root. \\[default: the spec's, ./results]")
    ] = None,
    data_dir: DataDirOption = None,
    cpus_per_trial: CpusOption = None,
    gpus_per_trial: GpusOption = None,
    max_concurrent: MaxConcurrentOption = None,
    fuse: FuseOption = None,
    max_bundle: MaxBundleOption = None,
    pack: PackOption = None,
    callback: CallbackOption = None,
    address: AddressOption = None,
    dashboard: DashboardOption = False,
    run_id: Annotated[str | None, typer.Option(hidden=True)] = None,  # set by `submit`
) -> None:
    """Run a sweep: a Ray Tune grid on an embedded Ray (or --address), results as Parquet.

    Examples:

        sweeps run quickstart

        sweeps run report-a-batch-size --set batch_size=64,512 --repeats 3

        sweeps run my-sweep.yaml --set lr=0.01,0.1 --set hidden=[128,128] --gpus-per-trial 0.25

        sweeps run report-a-activations --fuse off

        sweeps run quickstart --callback wandb --dashboard
    """
    from sweeps.record.loggers import check_callbacks
    from sweeps.runs.runner import run_sweep
    from sweeps.runs.trainable import import_folders

    sweep = overrides(
        assignments, epochs=epochs, repeats=repeats, cpus=cpus_per_trial, gpus=gpus_per_trial,
        max_concurrent=max_concurrent, fuse=fuse, max_bundle=max_bundle, pack=pack,
        callbacks=callback,
    ).resolve(spec)  # fmt: skip
    check_callbacks(sweep)
    outcome = run_sweep(
        sweep, results=results, address=address, data_dir=_text(data_dir), run_id=run_id,
        say=say, dashboard=dashboard, import_path=import_folders(spec),
    )  # fmt: skip
    _conclude(outcome)


@app.command("resume")
def resume(
    run_dir: Annotated[
        str, typer.Argument(help="The run directory (or URI) of an interrupted run.")
    ],
    data_dir: DataDirOption = None,
    address: AddressOption = None,
    dashboard: DashboardOption = False,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            help="Train every failed (ERROR) configuration again, not only those whose"
            " worker died or could not import the trainer.",
        ),
    ] = False,
) -> None:
    """Continue an interrupted run: finished trials are kept, the rest run.

    Examples:

        sweeps resume results/quickstart/20261122-101500-3f2a

        sweeps resume results/quickstart/20261122-101500-3f2a --retry-failed
    """
    from analysis.rundir import RunDir
    from sweeps.record.loggers import check_callbacks
    from sweeps.runs.manifest import read_run
    from sweeps.runs.resume import resume_sweep

    # The loggers the run was started with.
    check_callbacks(read_run(RunDir.of(run_dir).place)[0])
    outcome = resume_sweep(run_dir, address=address, data_dir=_text(data_dir),
                           retry_failed=retry_failed, say=say, dashboard=dashboard)  # fmt: skip
    _conclude(outcome)


@app.command("presets")
def presets() -> None:
    """List the built-in sweeps: one per experiment of the two reports, and quickstart."""
    table = Table("preset", "trials", "description", box=None, pad_edge=False)
    for name in preset_names():
        sweep = load_spec(name)
        table.add_row(name, str(sweep.trial_count), sweep.description)
    console.print(table)


@app.command("show")
def show(name: Annotated[str, typer.Argument(help="A preset name.")]) -> None:
    """Print a preset's YAML, to copy and edit.

    Example:

        sweeps show quickstart > my-sweep.yaml
    """
    sys.stdout.write(preset_path(name).read_text())


def _conclude(outcome: Any) -> None:
    """The summary table, the errors, where the results are; exit 1 unless all finished,
    or when no trial reported the spec's metric."""
    from analysis.render import Whole
    from analysis.rundir import Status
    from sweeps.record.progress import summary_table
    from sweeps.record.results import read_trials

    trials = read_trials(outcome.run_dir)
    if len(trials):
        sweep = outcome.spec
        # Piped or in a log, at its full width: no id or number is cut.
        summary = Whole(summary_table(trials, sweep.swept, sweep.metric, sweep.mode))
        console.print(summary, crop=False)
    for _, row in trials[trials["status"].isin([Status.FAILED, Status.DIVERGED])].iterrows():
        verb = "failed" if row["status"] == Status.FAILED else "diverged"
        errors.print(f"trial {row['trial_id']} {verb}: {escape(str(row['error']))}",
                     highlight=False, soft_wrap=True)  # fmt: skip
    for line in outcome.metric_warnings():
        errors.print(f"warning: {escape(line)}", highlight=False, soft_wrap=True)
    done, diverged = outcome.counts.get(Status.DONE, 0), outcome.counts.get(Status.DIVERGED, 0)
    console.print(
        f"{count(outcome.total, 'trial')}: {done} finished,"
        + (f" {outcome.stopped} stopped early," if outcome.stopped else "")
        + (f" {diverged} diverged," if diverged else "")
        + f" {outcome.failed} failed, {outcome.total - outcome.finished} not run."
        f" Results: {outcome.run_dir}",
        highlight=False, soft_wrap=True,
    )  # fmt: skip
    if outcome.finished < outcome.total:
        errors.print(
            f"interrupted: continue with `sweeps resume {outcome.run_dir}`",
            highlight=False, soft_wrap=True,
        )  # fmt: skip
    no_metric = outcome.metric_error()
    if no_metric is not None:
        fail(no_metric)
    if outcome.failed or outcome.finished < outcome.total or no_metric is not None:
        raise typer.Exit(1)


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def main(argv: list[str] | None = None) -> None:
    """The console script. Every error is one line on stderr and an exit code: Click's usage
    errors and the library's bad input 2, failures while working 1; anything else is a bug
    and keeps its traceback."""
    try:
        code = app(args=argv, prog_name="sweeps", standalone_mode=False)
    except TyperException as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # bare `sweeps`: the help, as usual
            errors.print(error.format_message(), highlight=False, markup=False)
            sys.exit(0)
        fail(" ".join(error.format_message().split()))
        sys.exit(error.exit_code)
    except typer.Abort:
        errors.print("aborted")
        sys.exit(130)
    except Exception as error:
        code = _exit_code(error)
        if code is None:
            raise
    # A command's typer.Exit(code) comes back as its code; Ctrl-C as 130.
    sys.exit(code if isinstance(code, int) else 0)


def _exit_code(error: Exception) -> int | None:
    """A library error printed as one line; its exit code, or None for a bug."""
    if isinstance(error, (SpecError, report_cli.BadInput)) or _raised(error, _INPUT_ERRORS):
        fail(str(error))
        return 2
    if _raised(error, {"sweeps.runs.runner": "ResultsWriteError"}):
        fail(str(error))
        errors.print(f"once it can be written: `sweeps resume {error.run_dir}`",
                     highlight=False, soft_wrap=True)  # fmt: skip
        return 1
    if isinstance(error, report_cli.WriteFailed) or _raised(error, _WORK_ERRORS):
        fail(str(error))  # refused while working
        return 1
    if isinstance(error, ConnectionError):  # `--address` names no Ray cluster
        fail(f"cannot reach Ray: {error}")
        return 2
    return None


# The library's exceptions, each by the module that defines it. An error of a module that
# was never imported was never raised: a failing `sweeps report` finds its exit code without
# importing Ray and torch.
_INPUT_ERRORS = {  # bad input: exit 2, nothing started
    "analysis.place": "StorageError",
    "analysis.rundir": "RunDataError",
    "sweeps.cluster.jobs": "JobsInputError",
    "sweeps.cluster.resources": "ResourceError",
    "sweeps.cluster.shipping": "ShippingError",
    "sweeps.runs.runlock": "RunInUse",
    "sweeps.runs.trainable": "TrainerImportError",
    "trainers.config": "ConfigError",
    "trainers.data": "DataNotFoundError",
}
_WORK_ERRORS = {"sweeps.cluster.jobs": "JobsError"}  # refused while working: exit 1


def _raised(error: Exception, classes: dict[str, str]) -> bool:
    """Whether `error` is one of `classes` (module: class name), of the modules imported."""
    return any(
        module in sys.modules and isinstance(error, getattr(sys.modules[module], name))
        for module, name in classes.items()
    )
