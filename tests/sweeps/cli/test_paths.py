"""Run directories and results locations that cannot be used: a read-only run, a symlink
loop, a URI whose store is unknown or cannot be reached. From the console script as a user
runs it: one line naming the bad value, exit 2, no traceback, nothing written and no Ray
started."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.fs as pafs
import pytest
import yaml

from analysis import place as place_module
from analysis.place import Place, StorageError
from sweeps.plan.spec import parse_spec, to_yaml
from tests.helpers.runs import write_run
from tests.sweeps.conftest import run_cli

SWEEPS = Path(sys.executable).with_name("sweeps")  # the console script, as a user runs it
# Root passes permission bits: its commands run without the capabilities that let it.
NO_DAC = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
          "--bounding-set=-dac_override,-dac_read_search"]  # fmt: skip
TINY_SPEC = {"name": "tiny", "dataset": "digits", "base": {"epochs": 1},
             "grid": {"batch_size": [64, 32]}}  # fmt: skip


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    """Where a Ray started by the command would make its session folder (short: Ray's
    socket paths); it must stay empty."""
    folder = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sweeps(*args: str | Path, ray_tmp: Path, prefix: list[str] | None = None,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "AWS_EC2_METADATA_DISABLED": "true"}
    return subprocess.run(
        [*(prefix or []), str(SWEEPS), *map(str, args)], capture_output=True, text=True,
        env=env, cwd=cwd, timeout=180, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def assert_one_line(completed: subprocess.CompletedProcess[str], code: int, *says: str) -> None:
    """Exit `code`, nothing on stdout, exactly one line on stderr, `error: ...`, saying
    each of `says`; never a traceback."""
    out, err = completed.stdout, completed.stderr
    assert "Traceback" not in out + err, err
    assert completed.returncode == code, (out, err)
    assert out == "", out
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    for text in says:
        assert text in err, (text, err)


def assert_no_ray(ray_tmp: Path) -> None:
    assert not os.listdir(ray_tmp), os.listdir(ray_tmp)


def interrupted_run(root: Path) -> Path:
    """An interrupted run as `sweeps run` leaves one: the resolved spec, a manifest with no
    finished_at, the rows of one of its two configurations, and its lock file."""
    trial = {"run_id": "run-1", "trial_id": "t_00000", "status": "TERMINATED", "error": None,
             "config_index": 0, "batch_size": 64, "val_accuracy": 0.9, "val_loss": 0.3}  # fmt: skip
    run_dir = write_run(root, pd.DataFrame([trial]), epochs=1)
    spec = parse_spec({"name": "sweep", "dataset": "digits", "base": {"epochs": 1},
                       "grid": {"batch_size": [64, 32]}, "resources": {"gpus": 0},
                       "max_bundle": 1}, "test")  # fmt: skip
    (run_dir / "spec.yaml").write_text(to_yaml(spec))
    manifest = {"run_id": "run-1", "sweep": "sweep", "trials": 2,
                "started_at": "2026-01-01T00:00:00+00:00"}  # fmt: skip
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    (run_dir / ".lock").write_text('{"pid": 1, "host": "h", "since": "2026-01-01"}\n')
    return run_dir


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file and folder under `root`, dot-files too: mode, mtime and contents."""
    entries = {}
    for path in [root, *sorted(root.rglob("*"))]:
        stat = path.lstat()
        data = path.read_bytes() if path.is_file() else b""
        entries[str(path.relative_to(root))] = (stat.st_mode, stat.st_mtime_ns, data)
    return entries


@contextlib.contextmanager
def read_only(targets: list[Path], how: str) -> Iterator[list[str]]:
    """`targets` made read-only: "chmod" takes their write bits (and, as root, runs the
    command without the capabilities that pass them), "mount" (root only) binds the first
    read-only on itself. Yields the command's prefix; skips where neither stops a write."""
    if how == "mount":
        if os.geteuid() != 0:
            pytest.skip("a read-only bind mount needs root")
        (target,) = targets
        if subprocess.run(["mount", "--bind", str(target), str(target)]).returncode != 0:
            pytest.skip("mount --bind is not allowed here")
        try:
            subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], check=True)
            yield []
        finally:
            subprocess.run(["umount", "-l", str(target)], check=False)
        return
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("as root, chmod stops no write without setpriv to drop CAP_DAC_OVERRIDE")
        prefix = NO_DAC
    modes = {path: path.stat().st_mode for path in targets}
    for path in targets:
        path.chmod(modes[path] & ~0o222)
    try:
        # Opened for writing, nothing written: a file's mtime stays as it was.
        probe = targets[0] / "probe" if targets[0].is_dir() else targets[0]
        opened = subprocess.run([*prefix, "sh", "-c", f": >> '{probe}'"], capture_output=True)
        if opened.returncode == 0:
            pytest.skip(f"chmod does not stop writes to {targets[0]} here")
        yield prefix
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


# --- a read-only run directory ----------------------------------------------------------


@pytest.mark.parametrize("how", ["chmod", "mount"])
@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(["--no-plots"], None, id="no-plots"),  # only reads: works
        pytest.param([], "cannot write the plots: '{run}' is ", id="plots"),
        pytest.param(["--no-plots", "--html"], "cannot write report.html: '{run}' is ",
                     id="html"),
    ],
)  # fmt: skip
def test_report_of_a_read_only_run(
    tmp_path: Path, ray_tmp: Path, how: str, args: list[str], says: str | None
) -> None:
    run_dir = interrupted_run(tmp_path)
    before = snapshot(run_dir)
    with read_only([run_dir], how) as prefix:
        completed = sweeps("report", run_dir, *args, ray_tmp=ray_tmp, prefix=prefix)
    if says is None:
        assert completed.returncode == 0, completed.stderr
        assert "sweep run" in completed.stdout and "Traceback" not in completed.stderr
    else:
        assert_one_line(completed, 2, says.format(run=run_dir.resolve()))
    assert snapshot(run_dir) == before


@pytest.mark.parametrize(
    ("how", "protected", "says"),
    [
        pytest.param("chmod", ".", "cannot resume '{run}': it is not writable",
                     id="chmod-folder"),  # its files still are
        pytest.param("chmod", "*", "cannot resume '{run}': it is not writable", id="chmod-all"),
        pytest.param("chmod", "trials", "cannot resume '{run}': trials/ in it is not writable",
                     id="chmod-trials"),
        pytest.param("chmod", ".lock", "cannot resume '{run}': .lock in it is not writable",
                     id="chmod-lock"),
        pytest.param("mount", ".", "cannot resume '{run}': it is on a read-only filesystem",
                     id="mount"),
    ],
)  # fmt: skip
def test_resume_of_a_read_only_run_starts_nothing_and_changes_nothing(
    tmp_path: Path, ray_tmp: Path, how: str, protected: str, says: str
) -> None:
    run_dir = interrupted_run(tmp_path)
    targets = [run_dir, *run_dir.rglob("*")] if protected == "*" else [run_dir / protected]
    before = snapshot(run_dir)
    with read_only([t.resolve() for t in targets], how) as prefix:
        completed = sweeps("resume", run_dir, ray_tmp=ray_tmp, prefix=prefix)
    assert_one_line(completed, 2, says.format(run=run_dir.resolve()))
    assert snapshot(run_dir) == before
    assert_no_ray(ray_tmp)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of two configurations on digits, one epoch each."""
    root = tmp_path_factory.mktemp("real").resolve()
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY_SPEC))
    completed = subprocess.run(
        [str(SWEEPS), "run", str(root / "tiny.yaml"), "--results", str(root / "results")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    (run_dir,) = (root / "results" / "tiny").iterdir()
    assert (run_dir / ".lock").is_file() and (run_dir / "tune").is_dir()
    return run_dir


@pytest.mark.slow
def test_a_real_run_made_read_only_is_reported_but_not_resumed(
    finished_run: Path, ray_tmp: Path
) -> None:
    before = snapshot(finished_run)
    with read_only([finished_run], "chmod") as prefix:  # the folder only: its files are not
        resumed = sweeps("resume", finished_run, ray_tmp=ray_tmp, prefix=prefix)
        reported = sweeps("report", finished_run, ray_tmp=ray_tmp, prefix=prefix)
        printed = sweeps("report", finished_run, "--no-plots", ray_tmp=ray_tmp, prefix=prefix)
    assert_one_line(resumed, 2, f"cannot resume '{finished_run}': it is not writable")
    assert_one_line(reported, 2, f"cannot write the plots: '{finished_run}' is not writable")
    assert printed.returncode == 0 and "2 trials, 2 finished" in printed.stdout, printed.stderr
    assert snapshot(finished_run) == before
    assert_no_ray(ray_tmp)


# --- a symlink loop ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "given", "says"),
    [
        pytest.param(["report", "{loop}"], "{loop}", "run directory", id="report"),
        pytest.param(["resume", "{loop}"], "{loop}", "run directory", id="resume"),
        pytest.param(["threshold", "{loop}"], "{loop}", "run directory", id="threshold"),
        pytest.param(["run", "{spec}", "--results", "{loop}"], "{loop}", "results location",
                     id="run"),
        pytest.param(["run", "{spec}", "--results", "{loop}/sub"], "{loop}/sub",
                     "results location", id="run-below"),
        pytest.param(["run", "{spec}", "--results", "file://{loop}"], "file://{loop}",
                     "results location", id="run-file-uri"),
    ],
)  # fmt: skip
def test_a_symlink_loop_is_named(
    tmp_path: Path, ray_tmp: Path, args: list[str], given: str, says: str
) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY_SPEC))
    values = {"loop": str(loop), "spec": str(spec)}
    completed = sweeps(*(a.format(**values) for a in args), ray_tmp=ray_tmp, cwd=tmp_path)
    assert_one_line(completed, 2, f"{says} '{given.format(**values)}': a symlink loop")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop", "tiny.yaml"]
    assert_no_ray(ray_tmp)


# --- a URI ------------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.mark.parametrize("command", ["run", "report", "resume"])
@pytest.mark.parametrize(
    ("uri", "says"),
    [
        pytest.param("nosuch://bucket/results", "no filesystem for nosuch://", id="nosuch"),
        pytest.param("hdfs://namenode/results", "no filesystem for hdfs://", id="hdfs"),
        # No network needed: an S3 endpoint on loopback that nothing answers.
        pytest.param("s3://sweeps-none/results?endpoint_override=127.0.0.1:{port}&scheme=http"
                     "&region=us-east-1", "cannot reach it: ", id="s3-unreachable"),
    ],
)  # fmt: skip
def test_a_uri_that_cannot_be_used_is_named_before_ray_starts(
    tmp_path: Path, ray_tmp: Path, closed_port: int, command: str, uri: str, says: str
) -> None:
    results = uri.format(port=closed_port)
    if command == "run":
        spec = tmp_path / "tiny.yaml"
        spec.write_text(yaml.safe_dump(TINY_SPEC))
        given, args = results, ["run", spec, "--results", results]
        what = "results location"
    else:
        base, _, query = results.partition("?")
        given = f"{base}/tiny/run-1" + (f"?{query}" if query else "")
        args, what = [command, given], "run directory"
    completed = sweeps(*args, ray_tmp=ray_tmp, cwd=tmp_path)
    assert_one_line(completed, 2, f"{what} '{given}': {says}")
    assert sorted(p.name for p in tmp_path.iterdir()) == (["tiny.yaml"] if command == "run" else [])
    assert_no_ray(ray_tmp)


class SilentStore:
    """A store that does not answer within the test: as GCS does with no network, which
    retries for 15 minutes."""

    def get_file_info(self, path: str) -> pafs.FileInfo:
        time.sleep(5)
        return pafs.FileInfo(path)


def test_a_store_that_does_not_answer_is_one_error_in_bounded_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(place_module, "REACH_TIMEOUT_S", 0.2)
    place = Place(SilentStore(), "bucket/results", "gs://bucket/results")  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(StorageError) as raised:
        place.check_reachable()
    assert time.monotonic() - started < 2
    assert str(raised.value) == (
        "results location 'gs://bucket/results': no answer in 0.2 s"
        " (no network, or no credentials for it?)"
    )


def test_a_store_that_refuses_the_figures_is_one_line_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Where nothing says beforehand that a write will fail (a bucket's policy), the refusal
    is one line too, once the report is printed."""
    run_dir = interrupted_run(tmp_path)

    def refuse(self: Place, data: bytes) -> None:
        raise PermissionError(errno.EACCES, "Access Denied")

    monkeypatch.setattr(Place, "write_bytes", refuse)
    code = run_cli("report", str(run_dir), "--no-plots", "--html")
    out, err = capsys.readouterr()
    assert code == 1 and "sweep run" in out, err
    assert err == f"error: cannot write {run_dir.resolve()}/report.html: Permission denied\n"
    assert not (run_dir / "report.html").exists()
