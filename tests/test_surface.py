"""The CLI's surface, snapshotted: what a restructuring of sweeps/ and trainers/ must keep.

Three snapshots under tests/surface/, each compared byte for byte:

- help/<command>.txt: the `--help` of `sweeps` (help/sweeps.txt) and of every command and
  sub-command (help/<group>/<command>.txt for a nested one), found by walking the Typer
  app of the `sweeps` console script's entry point as Click sees it, so a new command
  gets a snapshot and a removed one leaves a stale file that fails the test.
- errors.txt: a table of bad inputs (ERROR_CASES), each run as a user runs it, from a
  temporary working directory with the files the case needs: its argv, exit code, stdout
  and stderr. Every one is a one-line error today, and the test holds them to that.
- parquet.txt (slow: it starts Ray): one tiny real run, then the column names and Arrow
  types of every Parquet file of the run and the run directory's layout.

Regenerate the snapshots (then read their diff before committing it):

    SWEEPS_UPDATE_SURFACE=1 .venv/bin/pytest tests/test_surface.py

Otherwise each test compares and fails with a unified diff of snapshot and now.

Every command runs under a fixed environment (surface_env: COLUMNS=100, TERM=dumb,
NO_COLOR=1, _TYPER_FORCE_DISABLE_TERMINAL=1, a C.UTF-8 locale, an empty HOME, nothing
else of the caller's), with stdin from /dev/null and stdout and stderr piped. Temporary
paths, run ids, trial ids, timestamps and the host name are replaced by placeholders.

How the commands run. Each `sweeps` process spends seconds importing torch and Ray, too
long for some fifty commands, so a driver (this file run as a script, `_serve`) does what
the console script does up to `main()` once, its imports, imports the heavy third-party
modules that commands import lazily (PRELOAD: Ray Tune, scikit-learn's datasets), and
then forks a child per command:
the child takes the case's working directory, environment and argv, gets stdin from
/dev/null and stdout and stderr on pipes, and runs the console script's own code as
`__main__`, exiting as the interpreter would (the exit status, the traceback of an
uncaught exception, the atexit handlers). Anything the imports printed is printed first
in each child, as a fresh process would. `test_forked_commands_match_fresh_processes`
checks a few cases both ways; SWEEPS_SURFACE_FRESH=1 runs every command as a fresh
`sweeps` process instead (exact, and minutes slower).
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import dataclasses
import difflib
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

SURFACE = Path(__file__).resolve().parent / "surface"
REPO = Path(__file__).resolve().parents[1]
UPDATE = os.environ.get("SWEEPS_UPDATE_SURFACE", "") not in ("", "0")
FRESH = os.environ.get("SWEEPS_SURFACE_FRESH", "") not in ("", "0")
SCRIPT = Path(sys.executable).with_name("sweeps")  # the venv's console script
CASE_TIMEOUT_S = 120  # a loaded machine takes tens of seconds to start `sweeps`
JOBS = max(1, min(4, os.cpu_count() or 1))


# ---------------------------------------------------------------------------------------
# The fixed environment and the two ways of running a command


def surface_env(home: Path) -> dict[str, str]:
    """The whole environment of a command: nothing of the caller's (no RAY_ADDRESS,
    SWEEPS_DATA_DIR, FORCE_COLOR, GITHUB_ACTIONS, TERMINAL_WIDTH, ...)."""
    return {
        "PATH": os.pathsep.join((str(SCRIPT.parent), "/usr/local/bin", "/usr/bin", "/bin")),
        "HOME": str(home),  # no ~/.ray/auth_token, no user config
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "COLUMNS": "100",
        "LINES": "50",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "_TYPER_FORCE_DISABLE_TERMINAL": "1",  # typer.rich_utils: never a terminal
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",  # leave no __pycache__ in the checkout
        "TMPDIR": tempfile.gettempdir(),
    }


@dataclasses.dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str
    seconds: float


@dataclasses.dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    cwd: str
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)  # beside surface_env


def run_fresh(commands: Sequence[Command], base_env: Mapping[str, str]) -> list[Outcome]:
    """Each command as its own `sweeps` process, as a user runs it."""

    def one(command: Command) -> Outcome:
        started = time.monotonic()
        completed = subprocess.run(
            [str(SCRIPT), *command.argv], cwd=command.cwd, env={**base_env, **command.env},
            stdin=subprocess.DEVNULL, capture_output=True, timeout=CASE_TIMEOUT_S,
        )  # fmt: skip
        return Outcome(
            completed.returncode, _text(completed.stdout), _text(completed.stderr),
            time.monotonic() - started,
        )  # fmt: skip

    with ThreadPoolExecutor(JOBS) as pool:
        return list(pool.map(one, commands))


def _python() -> str:
    """The console script's interpreter, from its #! line."""
    return SCRIPT.read_text().splitlines()[0].removeprefix("#!").strip()


class Driver:
    """The forking driver (`_serve`), started once: `run` hands it commands."""

    def __init__(self, base_env: Mapping[str, str]) -> None:
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.process = subprocess.Popen(
            [_python(), __file__, "--serve", str(SCRIPT)], env=dict(base_env), cwd=REPO,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors, text=True,
        )  # fmt: skip

    def run(self, commands: Sequence[Command]) -> list[Outcome]:
        request = {"jobs": JOBS, "timeout": CASE_TIMEOUT_S,
                   "commands": [dataclasses.asdict(c) for c in commands]}  # fmt: skip
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            self.process.wait(timeout=30)
            self.errors.seek(0)
            pytest.fail(f"the surface driver died:\n{_text(self.errors.read())}")
        return [Outcome(**outcome) for outcome in json.loads(answer)]

    def close(self) -> None:
        # Killed: it holds nothing to save, and an interpreter with torch and Ray loaded
        # takes seconds to exit. Its children have all been waited for.
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.kill()
        self.process.wait()
        self.errors.close()


Runner = Callable[[Sequence[Command]], list[Outcome]]


@pytest.fixture(scope="module")
def base_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if not SCRIPT.is_file():
        pytest.fail(f"no console script at {SCRIPT}: install the package (pip install -e .)")
    return surface_env(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def forked(base_env: dict[str, str]) -> Iterator[Runner]:
    driver = Driver(base_env)
    try:
        yield driver.run
    finally:
        driver.close()


@pytest.fixture(scope="module")
def runner(request: pytest.FixtureRequest, base_env: dict[str, str]) -> Runner:
    if FRESH:
        return lambda commands: run_fresh(commands, base_env)
    return request.getfixturevalue("forked")


# ---------------------------------------------------------------------------------------
# Snapshots


def check_snapshot(path: Path, actual: str) -> None:
    """Compare with the snapshot at `path`, or write it with SWEEPS_UPDATE_SURFACE=1."""
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != actual.encode():
            path.write_bytes(actual.encode())
        return
    if not path.is_file():
        pytest.fail(f"no snapshot {_shown(path)}: make it with SWEEPS_UPDATE_SURFACE=1")
    expected = path.read_bytes().decode()
    if expected != actual:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True),
            f"{_shown(path)} (snapshot)", f"{_shown(path)} (now)",
        )  # fmt: skip
        pytest.fail(
            f"{_shown(path)} differs from the snapshot (SWEEPS_UPDATE_SURFACE=1 rewrites it"
            f" if the change is meant):\n{''.join(diff)}",
            pytrace=False,
        )


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def normalise(text: str, places: Mapping[str, str]) -> str:
    """`places` (a path -> its placeholder) replaced, the longest first, each also as its
    resolved path."""
    pairs: dict[str, str] = {}
    for path, placeholder in places.items():
        pairs[path] = placeholder
        pairs[os.path.realpath(path)] = placeholder
    for path in sorted(pairs, key=len, reverse=True):
        text = text.replace(path, pairs[path])
    return text


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


# ---------------------------------------------------------------------------------------
# a. --help of every command


def discover_commands(runner: Runner, base_env: Mapping[str, str]) -> list[tuple[str, ...]]:
    """The command paths of the console script's Typer app: () for `sweeps` itself."""
    if FRESH:  # the console script knows no such flag: this file walks the app
        listed = subprocess.run(
            [_python(), __file__, "--surface-commands"], env=dict(base_env), cwd=REPO,
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
        )  # fmt: skip
        outcome = Outcome(listed.returncode, listed.stdout, listed.stderr, 0.0)
    else:  # the driver's child does, instead of the console script
        (outcome,) = runner([Command(("--surface-commands",), str(REPO))])
    assert outcome.code == 0, outcome.stderr
    return [tuple(path) for path in json.loads(outcome.stdout)]


def help_file(path: tuple[str, ...]) -> Path:
    return SURFACE / "help" / (Path(*path) if path else Path("sweeps")).with_suffix(".txt")


def test_help_of_every_command(runner: Runner, base_env: dict[str, str]) -> None:
    paths = discover_commands(runner, base_env)
    assert () in paths and len(paths) > 1 and ("sweeps",) not in paths
    outcomes = runner([Command((*path, "--help"), str(REPO)) for path in paths])
    places = {str(REPO): "<REPO>", base_env["HOME"]: "<HOME>", sys.prefix: "<VENV>"}
    failures = []
    for path, outcome in zip(paths, outcomes, strict=True):
        shown = " ".join(("sweeps", *path, "--help"))
        assert outcome.code == 0 and not outcome.stderr, f"{shown}: {outcome}"
        try:
            check_snapshot(help_file(path), normalise(outcome.stdout, places))
        except pytest.fail.Exception as failure:
            failures.append(str(failure))
    wanted = {help_file(path) for path in paths}
    stale = sorted(set((SURFACE / "help").rglob("*.txt")) - wanted)
    if UPDATE:
        for path in stale:
            path.unlink()
    elif stale:
        failures.append(f"snapshots of no command: {', '.join(map(_shown, stale))}")
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


# ---------------------------------------------------------------------------------------
# b. Bad input: one line each


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]
    files: Mapping[str, str | bytes] = dataclasses.field(default_factory=dict)  # path -> text
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)


def case(name: str, *argv: str, files: Mapping[str, str | bytes] | None = None,
         env: Mapping[str, str] | None = None) -> Case:  # fmt: skip
    return Case(name, argv, files or {}, env or {})


# A spec that is valid, on the bundled digits (no download): the bad cases change one thing.
GOOD = "name: tiny\ndataset: digits\nbase: {hidden: [16], epochs: 1}\ngrid: {lr: [0.1, 0.5]}\n"
NOT_A_RUN = {"notarun/notes.txt": "not a run\n"}
ERROR_CASES = [
    # The spec file
    case("spec: missing file", "run", "missing.yaml"),
    case("spec: neither a file nor a preset", "run", "nosuch"),
    case("spec: YAML syntax error", "run", "bad.yaml", files={"bad.yaml": "name: [tiny\n"}),
    case("spec: duplicate key", "run", "dup.yaml", files={"dup.yaml": GOOD + "name: again\n"}),
    case("spec: not a mapping", "run", "list.yaml", files={"list.yaml": "- a\n- b\n"}),
    case("spec: not UTF-8", "run", "latin1.yaml", files={"latin1.yaml": b"name: caf\xe9\n"}),
    case("spec: unknown key", "run", "s.yaml", files={"s.yaml": GOOD + "bogus: 1\n"}),
    case("spec: batch_size 0", "run", "s.yaml",
         files={"s.yaml": GOOD.replace("epochs: 1", "epochs: 1, batch_size: 0")}),
    case("spec: repeats not an integer", "run", "s.yaml", files={"s.yaml": GOOD + "repeats: x\n"}),
    case("spec: unknown dataset", "run", "s.yaml",
         files={"s.yaml": GOOD.replace("digits", "cifar")}),
    case("spec: lr not finite", "run", "s.yaml",
         files={"s.yaml": GOOD.replace("[0.1, 0.5]", "[0.1, .nan]")}),
    # `run`'s flags
    case("flag: --epochs 0", "run", "quickstart", "--epochs", "0"),
    case("flag: --epochs not an integer", "run", "quickstart", "--epochs", "one"),
    case("flag: --set without =", "run", "quickstart", "--set", "lr"),
    case("flag: --set not YAML", "run", "quickstart", "--set", "hidden=[64"),
    case("flag: bad --pack", "run", "quickstart", "--pack", "maybe"),
    case("flag: bad --fuse", "run", "quickstart", "--fuse", "on"),
    case("flag: --max-concurrent 0", "run", "quickstart", "--max-concurrent", "0"),
    case("flag: unknown --callback", "run", "quickstart", "--callback", "slack"),
    case("flag: unknown option", "run", "quickstart", "--bogus"),
    case("flag: --address not an address", "run", "quickstart", "--address", "nowhere"),
    case("env: bad SWEEPS_STATUS_EVERY_S", "run", "quickstart",
         env={"SWEEPS_STATUS_EVERY_S": "soon"}),
    case("cli: unknown command", "frobnicate"),
    case("cli: run without a spec", "run"),
    # presets and one model
    case("show: unknown preset", "show", "nosuch"),
    case("train: two values for one key", "train", "--set", "lr=0.1,0.2"),
    case("train: unknown config key", "train", "--set", "widht=3"),
    case("train: data not found", "train", "-s", "dataset=mnist", "-s", "download=false",
         "--data-dir", "nodata", files={"nodata/README": "no MNIST here\n"}),
    # Reading runs
    case("report: missing run directory", "report", "results/none/run"),
    case("report: not a run directory", "report", "notarun", files=NOT_A_RUN),
    case("report: unknown --format", "report", "notarun", "--format", "xml", files=NOT_A_RUN),
    case("threshold: negative --threshold", "threshold", "notarun", "--threshold", "-1",
         files=NOT_A_RUN),
    case("compare: missing run directory", "compare", "results/a", "results/b"),
    case("resume: missing run directory", "resume", "results/none/run"),
    case("resume: not a run directory", "resume", "notarun", files=NOT_A_RUN),
    # Jobs on a cluster: addresses that are wrong before anything is asked of the network
    case("jobs: --address not an address", "jobs", "--address", "nowhere"),
    case("logs: no --address", "logs", "no-such-job"),
    case("logs: --address ray:// without a port", "logs", "no-such-job", "--address",
         "ray://head"),
    case("status: missing --token-file", "status", "job-1", "--address", "http://head:8265",
         "--token-file", "missing-token"),
    case("submit: relative --results", "submit", "quickstart", "--address",
         "http://head:8265", "--results", "results"),
]  # fmt: skip


def case_places(case_dir: Path, base_env: Mapping[str, str]) -> dict[str, str]:
    return {str(case_dir): "<TMP>", base_env["HOME"]: "<HOME>", str(REPO): "<REPO>",
            sys.prefix: "<VENV>"}  # fmt: skip


def describe(case: Case, outcome: Outcome, places: Mapping[str, str]) -> str:
    lines = [f"## {case.name}", f"$ sweeps {' '.join(_quoted(arg) for arg in case.argv)}"]
    lines += [f"env: {key}={value}" for key, value in case.env.items()]
    for name, content in case.files.items():
        shown = content if isinstance(content, str) else repr(content)
        lines += [f"file {name}:", *(f"  | {line}" for line in shown.splitlines())]
    lines.append(f"exit: {outcome.code}")
    for stream, text in (("stdout", outcome.stdout), ("stderr", outcome.stderr)):
        lines.append(f"{stream}:" + ("" if text else " (empty)"))
        lines += [f"  {line}" for line in normalise(text, places).splitlines()]
    return "\n".join(lines) + "\n"


def _quoted(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


def test_bad_input_is_one_line(runner: Runner, base_env: dict[str, str], tmp_path: Path) -> None:
    names = [case.name for case in ERROR_CASES]
    assert len(set(names)) == len(names), "case names must be unique"
    commands = []
    for index, case in enumerate(ERROR_CASES):
        case_dir = tmp_path / f"case{index:02d}"
        case_dir.mkdir()
        for name, content in case.files.items():
            (case_dir / name).parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                (case_dir / name).write_bytes(content)
            else:
                (case_dir / name).write_text(content)
        commands.append(Command(case.argv, str(case_dir), dict(case.env)))
    outcomes = runner(commands)
    triples = list(zip(ERROR_CASES, commands, outcomes, strict=True))
    blocks = [describe(c, o, case_places(Path(command.cwd), base_env)) for c, command, o in triples]
    check_snapshot(SURFACE / "errors.txt", "\n".join(blocks))
    # The contract the snapshot records: nothing on stdout, one `error:` line on stderr,
    # exit 2 (bad input) or 1, and nothing left behind in the working directory.
    broken = []
    for case, command, outcome in triples:
        lines = outcome.stderr.splitlines()
        left = sorted(str(p.relative_to(command.cwd)) for p in Path(command.cwd).rglob("*"))
        made = [p for p in left if p not in case.files and not any(
            name.startswith(p + "/") for name in case.files)]  # fmt: skip
        if (outcome.stdout or len(lines) != 1 or not lines[0].startswith("error: ")
                or outcome.code not in (1, 2) or made):  # fmt: skip
            broken.append(f"{case.name}: exit {outcome.code}, made {made}, stdout"
                          f" {outcome.stdout!r}, stderr {outcome.stderr!r}")  # fmt: skip
    assert not broken, "\n".join(broken)


# ---------------------------------------------------------------------------------------
# The forking driver against fresh processes


def test_forked_commands_match_fresh_processes(
    forked: Runner, base_env: dict[str, str], tmp_path: Path
) -> None:
    """Two commands through the driver and as fresh `sweeps` processes (side by side):
    the same bytes, the same exit code. One is `run`, which imports Ray Tune (preloaded in
    the driver), loads the digits and reads its environment at call time."""
    commands = [
        Command(("--help",), str(tmp_path)),
        Command(("run", "quickstart"), str(tmp_path), {"SWEEPS_STATUS_EVERY_S": "soon"}),
    ]
    fresh = run_fresh(commands, base_env)
    differ = [
        f"sweeps {' '.join(command.argv)}:\n  forked: {one}\n  fresh:  {other}"
        for command, one, other in zip(commands, forked(commands), fresh, strict=True)
        if (one.code, one.stdout, one.stderr) != (other.code, other.stdout, other.stderr)
    ]
    assert not differ, "\n".join(differ)


# ---------------------------------------------------------------------------------------
# c. The Parquet files and the layout of a run

# Pinned so the layout is the same on any machine: no GPU, and two bundles of two fused
# configurations (the lrs of a batch size), whatever the CPU count would make of `auto`.
TINY = """\
name: tiny
dataset: digits
base: {model: mlp, hidden: [16]}
grid:
  batch_size: [256, 512]
  lr: [0.1, 0.5]
resources: {cpus: 1, gpus: 0}
max_bundle: 2
"""


@pytest.mark.slow
def test_parquet_schema_and_run_layout(base_env: dict[str, str], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    (tmp_path / "tiny.yaml").write_text(TINY)
    results = tmp_path / "results"
    completed = subprocess.run(
        [str(SCRIPT), "run", "tiny.yaml", "--epochs", "1", "--results", str(results)],
        cwd=tmp_path, env=base_env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    (run_dir,) = (results / "tiny").iterdir()
    files = sorted(p for p in run_dir.rglob("*") if p.is_file())
    parquet = [p for p in files if p.suffix == ".parquet"]
    trial_ids = set(pq.read_table(run_dir / "trials", columns=["trial_id"])["trial_id"].to_pylist())
    experiments = {trial_id.rsplit("_", 1)[0] for trial_id in trial_ids}

    def placeholder(path: Path) -> str:
        text = str(path.relative_to(results))
        text = text.replace(run_dir.name, "<RUN_ID>")
        for experiment in experiments:  # Ray's trial ids: <experiment>_<index>
            text = text.replace(experiment, "<EXP>")
        text = re.sub(r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}", "<TIME>", text)
        text = re.sub(r"(events\.out\.tfevents)\.\d+\.[^/]+", r"\1.<TIME>.<HOST>", text)
        return text.replace(socket.gethostname(), "<HOST>")

    lines = ["# The Parquet files of a run: `sweeps run` of this spec, --epochs 1", "",
             *(f"  | {line}" for line in TINY.splitlines()), ""]  # fmt: skip
    by_schema: dict[tuple[str, str], list[str]] = {}
    for path in parquet:
        schema = pq.read_schema(path)
        fields = [f"  {field.name}: {field.type}" + ("" if field.nullable else " not null")
                  for field in schema]  # fmt: skip
        keys = sorted(key.decode() for key in (schema.metadata or {}))
        fields.append(f"  (metadata keys: {', '.join(keys) or 'none'})")
        folder = placeholder(path.parent)
        by_schema.setdefault((folder, "\n".join(fields)), []).append(placeholder(path))
    for (folder, fields), names in sorted(by_schema.items()):
        lines.append(f"## {folder}/: {len(names)} file{'s' * (len(names) > 1)}")
        lines += [f"#   {name.removeprefix(folder + '/')}" for name in names]
        lines += [fields, ""]
    empty = [p for p in run_dir.rglob("*") if p.is_dir() and not any(p.iterdir())]
    layout = sorted([placeholder(p) for p in files] + [placeholder(p) + "/" for p in empty])
    lines += ["# The run's files (and empty folders), under the results root", *layout]
    text = "\n".join(lines) + "\n"
    assert run_dir.name not in text and not any(t in text for t in trial_ids)
    check_snapshot(SURFACE / "parquet.txt", text)


# ---------------------------------------------------------------------------------------
# The driver: `python tests/test_surface.py --serve SCRIPT`, one JSON request a line on
# stdin, one JSON answer a line on stdout. Standard library only, and nothing above.


PRELOAD = ("ray.tune", "sklearn.datasets")


def _serve(script: str) -> None:
    sys.path[0] = str(Path(script).parent)  # as for the console script itself
    code = compile(Path(script).read_text(), script, "exec")
    # The console script's imports, once; what they print, every child prints first.
    preload = {"__name__": "__surface_preload__", "__file__": script, "__builtins__": builtins}
    preamble = _captured(lambda: exec(code, preload))
    # Third-party modules that commands import lazily, Ray Tune above all (seconds): once
    # here, not in every child. What they print is dropped: a fresh process prints it
    # later, if at all (test_forked_commands_match_fresh_processes would tell).
    _captured(lambda: [__import__(name) for name in PRELOAD])
    for line in sys.stdin:
        request = json.loads(line)
        answer = _fork_all(request["commands"], request["jobs"], request["timeout"],
                           lambda command: _child(command, code, script, preamble))  # fmt: skip
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def _captured(action: Callable[[], object]) -> tuple[bytes, bytes]:
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            action()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        out.seek(0)
        err.seek(0)
        return out.read(), err.read()


def _fork_all(
    commands: list[dict[str, Any]], jobs: int, timeout: float, child: Callable[[dict], int]
) -> list[dict[str, Any]]:
    """Each command in a forked child, `jobs` at a time; its outcome as a dict."""
    answers: list[dict[str, Any]] = [{} for _ in commands]
    pending = list(enumerate(commands))
    running: dict[int, dict[str, Any]] = {}  # pid -> its state
    selector = selectors.DefaultSelector()
    while pending or running:
        while pending and len(running) < jobs:
            index, command = pending.pop(0)
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the child: never returns
                status = 70
                try:
                    for key in list(selector.get_map().values()):
                        os.close(key.fd)  # the other children's pipes
                    os.close(out_r)
                    os.close(err_r)
                    os.dup2(out_w, 1)
                    os.dup2(err_w, 2)
                    os.close(out_w)
                    os.close(err_w)
                    status = child(command)
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(status)
            os.close(out_w)
            os.close(err_w)
            running[pid] = {"index": index, "out": [], "err": [], "open": 2,
                            "started": time.monotonic(), "killed": False}  # fmt: skip
            selector.register(out_r, selectors.EVENT_READ, (pid, "out"))
            selector.register(err_r, selectors.EVENT_READ, (pid, "err"))
        for key, _ in selector.select(timeout=0.2):
            pid, stream = key.data
            data = os.read(key.fd, 65536)
            if data:
                running[pid][stream].append(data)
            else:
                selector.unregister(key.fd)
                os.close(key.fd)
                running[pid]["open"] -= 1
        for pid, state in list(running.items()):
            seconds = time.monotonic() - state["started"]
            if state["open"] == 0:
                _, status = os.waitpid(pid, 0)
                answers[state["index"]] = {
                    "code": os.waitstatus_to_exitcode(status),
                    "stdout": _text(b"".join(state["out"])),
                    "stderr": _text(b"".join(state["err"]))
                    + (f"\n[killed after {timeout} s]" if state["killed"] else ""),
                    "seconds": seconds,
                }
                del running[pid]
            elif seconds > timeout and not state["killed"]:
                state["killed"] = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
    selector.close()
    return answers


def _child(command: dict[str, Any], code: Any, script: str, preamble: tuple[bytes, bytes]) -> int:
    """In the forked child: the console script as `__main__`, as a fresh process runs it."""
    os.setpgid(0, 0)  # a group of its own, to be killed whole
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdin = sys.__stdin__ = open(0, closefd=False)  # noqa: SIM115 (the interpreter's own)
    os.chdir(command["cwd"])
    os.environ.update(command["env"])
    os.write(1, preamble[0])
    os.write(2, preamble[1])
    if command["argv"] == ["--surface-commands"]:
        status = _list_commands()
    else:
        sys.argv = [script, *command["argv"]]
        status = _as_main(code, script)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    return status


def _as_main(code: Any, script: str) -> int:
    """Run `code` as the interpreter runs a script: its exit status."""
    try:
        exec(code, {"__name__": "__main__", "__file__": script, "__builtins__": builtins})
    except SystemExit as exit_:
        if exit_.code is None:
            return 0
        if isinstance(exit_.code, int):
            return exit_.code & 0xFF
        print(exit_.code, file=sys.stderr)
        return 1
    except BaseException as error:  # as the interpreter reports it: by sys.excepthook,
        # which Typer replaces, from the script's frame on (not this function's)
        trace = error.__traceback__.tb_next if error.__traceback__ else None
        sys.excepthook(type(error), error.with_traceback(trace), trace)
        return 1
    return 0


def _list_commands() -> int:
    """The command paths of the console script's app, as JSON on stdout: walked as Click
    sees it (typer.main.get_command; Typer's own Click or the click package, so by duck
    typing), hidden commands too."""
    from importlib.metadata import entry_points

    import typer.main

    (point,) = entry_points(group="console_scripts", name="sweeps")
    module = __import__(point.module, fromlist=["app"])
    root = typer.main.get_command(module.app)

    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        yield path
        if hasattr(command, "list_commands"):  # a group
            name = path[-1] if path else "sweeps"
            with command.context_class(command, info_name=name) as context:
                for sub_name in command.list_commands(context):
                    sub = command.get_command(context, sub_name)
                    if sub is not None:
                        yield from walk(sub, (*path, sub_name))

    print(json.dumps(list(walk(root, ()))))
    return 0


def _main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        _serve(sys.argv[2])
    elif sys.argv[1:2] == ["--surface-commands"]:
        sys.path[0] = str(SCRIPT.parent)
        sys.exit(_list_commands())
    else:
        sys.exit(f"usage: {sys.argv[0]} --serve SCRIPT | --surface-commands")


if __name__ == "__main__":
    _main()
