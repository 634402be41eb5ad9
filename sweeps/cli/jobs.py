"""`sweeps submit | jobs | status | logs | stop`: sweeps as queued Ray Jobs on a cluster.

Joined to the `sweeps` app by sweeps.cli.app; the work is in sweeps.cluster.jobs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from analysis.numbers import count
from sweeps.cli.console import console, say
from sweeps.cli.options import (
    CallbackOption,
    CpusOption,
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
from sweeps.cluster.shipping import plan_code
from sweeps.plan.spec import SpecError

# Ray's jobs client (sweeps.cluster.jobs) is imported by the commands that talk to a
# cluster: `sweeps --help` and `sweeps logs RUN_DIR` do not wait for Ray.
if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

app = typer.Typer()

# As `ray job` finds the cluster: the flag, else these, the first one set.
ADDRESS_VARIABLES = ["RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"]
Address = Annotated[
    str,
    typer.Option(
        envvar=ADDRESS_VARIABLES,
        help="The head's jobs API, http://HEAD:8265, or a Ray address (HOST:6379, auto) as"
        " `ray job` takes it.",
    ),
]
TokenFile = Annotated[
    Path | None,
    typer.Option(help="A file holding the cluster's auth token. \\[default: see README]"),
]
JobId = Annotated[str, typer.Argument(help="The job's id: the run id `submit` printed.")]


@app.command("submit")
def submit(
    spec: SpecArgument,
    address: Address,
    results: Annotated[
        str, typer.Option(help="Where the cluster writes results: a shared path or a URI.")
    ],
    assignments: SetOption = None,
    epochs: EpochsOption = None,
    repeats: RepeatsOption = None,
    data_dir: Annotated[
        str | None, typer.Option(help="The data root on the cluster's nodes.")
    ] = None,
    cpus_per_trial: CpusOption = None,
    gpus_per_trial: GpusOption = None,
    max_concurrent: MaxConcurrentOption = None,
    fuse: FuseOption = None,
    max_bundle: MaxBundleOption = None,
    pack: PackOption = None,
    callback: CallbackOption = None,
    working_dir: Annotated[
        Path | None,
        typer.Option(
            help="The folder to ship as the job's working dir, where your trainer's module"
            " is. \\[default: the spec file's folder]"
        ),
    ] = None,
    py_modules: Annotated[
        list[Path] | None,
        typer.Option("--py-modules", metavar="FOLDER", help="A local package to ship; repeatable."),
    ] = None,
    token_file: TokenFile = None,
) -> None:
    """Submit a sweep to a Ray cluster as a Ray Job, queued for a sweep slot.

    It waits PENDING while the cluster's `sweep_slots` are taken. The job takes along the
    spec file's folder (your trainer; or --working-dir) and sweeps itself when it runs from
    a checkout, less secrets (.env, keys, *token*, ...) and what .gitignore ignores: a line
    on stderr for each folder says what goes.

    Examples:

        sweeps submit report-a-batch-size --address http://HEAD:8265 --results s3://bucket/sweeps

        sweeps submit my-model/sweep.yaml --address http://HEAD:8265 --results /shared/sweeps
    """
    from sweeps.cluster import jobs
    from sweeps.plan.groups import configurations
    from sweeps.runs.runner import check_configs, new_run_id
    from sweeps.runs.trainable import import_folders, importable_from

    # The callbacks are checked on the cluster, which needs their packages.
    sweep = overrides(
        assignments, epochs=epochs, repeats=repeats, cpus=cpus_per_trial, gpus=gpus_per_trial,
        max_concurrent=max_concurrent, fuse=fuse, max_bundle=max_bundle, pack=pack,
        callbacks=callback,
    ).resolve(spec)  # fmt: skip
    if "://" not in results and not Path(results).is_absolute():
        raise SpecError(
            f"--results {results!r}: on a cluster give a shared absolute path or a URI"
            " (s3://, gs://); a relative path would stay in the job's temporary directory"
        )
    code = plan_code(spec, working_dir, py_modules)
    # Every check `sweeps run` makes without the cluster's data: a bad value fails here,
    # not after waiting in the cluster's queue. The trainer is imported from what ships.
    with importable_from([*code.import_path(), *import_folders(spec)]):
        check_configs(sweep, configurations(sweep))
    client = _connect(address, token_file)
    jobs.check_slots(client, address)
    for line in code.lines():
        say(line)
    run_id = jobs.call(lambda: jobs.submit(client, sweep, new_run_id(), results, data_dir,
                                           code), address)  # fmt: skip
    say(f"submitted {sweep.name} ({count(sweep.trial_count, 'trial')}) as job {run_id}")
    console.print(run_id, highlight=False)
    say(f"results: {results}/{sweep.name}/{run_id}   follow: sweeps logs {run_id} --follow")


@app.command("jobs")
def list_jobs(address: Address, token_file: TokenFile = None) -> None:
    """List the cluster's jobs, newest first: id, sweep, state, age.

    Example:

        sweeps jobs --address http://HEAD:8265
    """
    from sweeps.cluster import jobs

    client = _connect(address, token_file)
    table = Table("job", "sweep", "state", "age", "message", box=None, pad_edge=False)
    for job in jobs.call(lambda: jobs.list_jobs(client), address):
        sweep = (job.metadata or {}).get("sweep", "-")
        message = " ".join((job.message or "").split())[:60]
        table.add_row(job.submission_id or job.job_id or "-", sweep, str(job.status),
                      jobs.age(job), message)  # fmt: skip
    console.print(table)


@app.command("status")
def status(job_id: JobId, address: Address, token_file: TokenFile = None) -> None:
    """A job's state (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED) and Ray's message."""
    from sweeps.cluster import jobs

    client = _connect(address, token_file)
    info = jobs.call(lambda: client.get_job_info(job_id), address)
    message = " ".join((info.message or "").split())
    console.print(f"{job_id} {info.status}  {message}", highlight=False, soft_wrap=True)


@app.command("logs")
def logs(
    run_or_job: Annotated[
        str,
        typer.Argument(
            metavar="RUN_OR_JOB",
            help="A run directory (a path, or a URI) or a job's id (the run id `submit` printed).",
        ),
    ],
    config: Annotated[
        str | None,
        typer.Argument(
            metavar="CONFIG",
            help="Of a run: one configuration's, by trial_id or config_index. \\[default: all]",
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            envvar=ADDRESS_VARIABLES,
            help="A job's cluster: the head's jobs API, http://HEAD:8265, or a Ray address"
            " (HOST:6379, auto) as `ray job` takes it.",
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="A job's: stream until it ends.")
    ] = False,
    token_file: TokenFile = None,
) -> None:
    """What a run's trainers printed, warned and raised; or a job's output.

    Of a run directory: what each Tune trial printed and warned, and a failure's traceback.

    With CONFIG, only those of the trial that trained it.

    Anything else is a job's id: its output, with --follow streamed until the job ends.

    Examples:

        sweeps logs results/my-sweep/20261122-101500-3f2a 3

        sweeps logs 20261122-101500-3f2a --address http://HEAD:8265 --follow
    """
    from analysis.logs import read_logs
    from analysis.rundir import MANIFEST, RunDataError, RunDir

    if "://" in run_or_job or "/" in run_or_job or os.path.isdir(run_or_job):
        run = RunDir.of(run_or_job)
        if not (run / MANIFEST).is_file():
            raise RunDataError(f"{run.shown!r} is not a run directory (no {MANIFEST})")
        if follow:
            raise SpecError("--follow streams a job's output, not a run directory's")
        found = read_logs(run, config)
        sys.stdout.write("\n".join(log.text.rstrip("\n") + "\n" for log in found))
        if not found:
            of = f"configuration {config} of " if config is not None else ""
            say(f"{of}{run.shown}: nothing printed, warned or raised")
        return
    if config is not None:
        raise SpecError(f"{config!r}: a configuration is named only with a run directory")
    if address is None:  # required for a job, as it always was
        raise SpecError(f"{run_or_job!r} is no run directory; as a job's id it needs --address"
                        f" (or ${' or $'.join(ADDRESS_VARIABLES)})")  # fmt: skip
    from sweeps.cluster import jobs

    job_id = run_or_job
    client = _connect(address, token_file)
    if follow:
        jobs.call(lambda: jobs.follow_logs(client, job_id, sys.stdout.write), address)
    else:
        sys.stdout.write(jobs.call(lambda: client.get_job_logs(job_id), address))


@app.command("stop")
def stop(job_id: JobId, address: Address, token_file: TokenFile = None) -> None:
    """Stop a job: its finished trials stay in the results."""
    from sweeps.cluster import jobs

    client = _connect(address, token_file)
    stopped = jobs.call(lambda: client.stop_job(job_id), address)
    console.print(f"{job_id}: {'stop requested' if stopped else 'already finished'}")


def _connect(address: str, token_file: Path | None) -> JobSubmissionClient:
    """jobs.connect to `address` as found here: Ray's client would let RAY_ADDRESS (or
    RAY_API_SERVER_ADDRESS) override even an address given with --address."""
    from sweeps.cluster import jobs

    hidden = {name: os.environ.pop(name) for name in ADDRESS_VARIABLES if name in os.environ}
    try:
        return jobs.connect(address, token_file)
    finally:
        os.environ.update(hidden)
