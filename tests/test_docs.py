"""The docs cannot drift from the code: README.md and docs/*.md are checked against it.

Runnable blocks. A fenced block whose info string is ``console runnable`` is run::

    ```console runnable
    $ sweeps run no-such-sweep  # exit 2
    error: 'no-such-sweep' is neither a spec file nor a preset; presets: quickstart, ...
    ```

- A line ``$ sweeps ...`` is a command; the lines after it, up to the next command, are
  what it prints (stdout and stderr together). Any other ``$ `` line is an error.
- It must exit 0, or with the code a trailing ``# exit N`` states.
- Each line it shows must be a line of its output, compared word by word (whitespace
  collapsed): a word holding a digit stands for any word (run ids, times and metrics
  change from run to run), ``...`` for anything (a line of ``...`` alone shows that lines
  were left out), and every other word must be there as written.
- A run id (``20261203-173216-42f7``) in a command stands for the run that the block's
  last ``sweeps run`` made, so ``sweeps report results/<sweep>/<that id>`` reports on it.
- Each block runs in a temporary directory of its own (its ``results/`` too), its
  commands in order, through bash with the console script next to this interpreter
  (``.venv/bin/sweeps``) first on PATH, ``SWEEPS_DATA_DIR`` set to the real MNIST,
  ``COLUMNS=120``, ``OMP_NUM_THREADS=1`` and no GPU visible (``CUDA_VISIBLE_DEVICES=``):
  the outputs shown are a CPU-only machine's. Blocks run two at a time.
- A block whose ``sweeps run`` or ``resume`` is expected to start (not exit 2) starts Ray:
  it is marked slow.

Keep runnable blocks to commands that finish in seconds: this file must run in under
60 s on 2 CPUs (one real run, the README's, is the most it affords).

The other checks: every ``sweeps`` command the pages show, runnable or not, names a
command the CLI has and only options that command takes (a placeholder such as
``COMMAND`` is not checked); every whole spec shown in a ``yaml`` block parses; every page
under docs/ is linked from the README; every relative link (and ``#anchor``) in the
README and docs/ resolves.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
SWEEPS = Path(sys.executable).parent / "sweeps"
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"

FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
RUN_ID = re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{4}\b")
RUN_LINE = re.compile(r"^run (\S+): \d+ trials?", re.M)
EXIT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")
COMMAND_TIMEOUT_S = 300


@dataclass(frozen=True)
class Command:
    line: str  # as written, after "$ ", without the "# exit N" comment
    exit_code: int
    expected: tuple[str, ...]  # the output lines the block shows


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    lineno: int  # of the opening fence
    commands: tuple[Command, ...]

    @property
    def id(self) -> str:
        return f"{self.page}:{self.lineno}"

    @property
    def starts_ray(self) -> bool:
        return any(
            re.match(r"sweeps (run|resume)\b", c.line) and c.exit_code != 2 for c in self.commands
        )

    @property
    def needs_data(self) -> bool:
        return any(re.match(r"sweeps (run|resume|train)\b", c.line) for c in self.commands)


@dataclass
class Fence:
    lineno: int
    info: str
    lines: list[str] = field(default_factory=list)


def fences(text: str) -> list[Fence]:
    """The fenced blocks of a Markdown text, their lines dedented by the fence's indent."""
    found: list[Fence] = []
    current: Fence | None = None
    indent = marker = ""
    for lineno, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if current is None:
            if match:
                indent, marker = match.group(1), match.group(2)
                current = Fence(lineno, match.group(3).strip())
        elif match and match.group(2).startswith(marker) and not match.group(3).strip():
            found.append(current)
            current = None
        else:
            current.lines.append(line[len(indent) :] if line.startswith(indent) else line)
    return found


def parse_block(page: str, fence: Fence) -> Block:
    commands: list[Command] = []
    line = ""
    code = 0
    expected: list[str] = []
    for text in fence.lines:
        if text.startswith("$ "):
            if line:
                commands.append(Command(line, code, tuple(expected)))
            line, expected = text[2:].strip(), []
            exit_comment = EXIT.search(line)
            code = int(exit_comment.group(1)) if exit_comment else 0
            line = EXIT.sub("", line)
            if not line.startswith("sweeps "):
                raise ValueError(f"{page}:{fence.lineno}: not a sweeps command: $ {line}")
        elif not line:
            if text.strip():
                raise ValueError(f"{page}:{fence.lineno}: output before the first $ command")
        else:
            expected.append(text)
    if not line:
        raise ValueError(f"{page}:{fence.lineno}: a runnable block without a $ sweeps command")
    commands.append(Command(line, code, tuple(expected)))
    return Block(page, fence.lineno, tuple(commands))


def runnable_blocks() -> list[Block]:
    blocks = []
    for path in PAGES:
        page = path.relative_to(ROOT).as_posix()
        for fence in fences(path.read_text()):
            if fence.info.split()[1:2] == ["runnable"]:
                blocks.append(parse_block(page, fence))
    return blocks


BLOCKS = runnable_blocks()


def line_pattern(expected: str) -> re.Pattern[str] | None:
    """The regex a shown output line stands for (None: it shows nothing, `...` alone)."""
    words = expected.split()
    if all(word == "..." for word in words):
        return None
    parts = []
    for word in words:
        if any(ch.isdigit() for ch in word):
            parts.append(r"\S+")
        else:
            parts.append(".*".join(re.escape(piece) for piece in word.split("...")))
    pattern = ""
    for i, part in enumerate(parts):
        if i:
            loose = "..." in words[i - 1] or "..." in words[i]
            pattern += r"\s*" if loose else r"\s+"
        pattern += part
    return re.compile(pattern)


@dataclass
class Result:
    command: str  # as run, run ids substituted
    exit_code: int
    output: str
    seconds: float


def run_command(command: str, cwd: Path, env: dict[str, str]) -> Result:
    """`command` through bash in `cwd`; on a timeout its whole process group is killed."""
    started = time.monotonic()
    process = subprocess.Popen(
        ["bash", "-c", command], cwd=cwd, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = process.communicate(timeout=COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        output += f"\n[killed after {COMMAND_TIMEOUT_S} s]"
    return Result(command, process.returncode, output, time.monotonic() - started)


def run_block(block: Block, env: dict[str, str]) -> list[Result]:
    """The block's commands in order, in a temporary directory; stops at the first that
    exits other than it should."""
    results = []
    with tempfile.TemporaryDirectory(prefix="sweeps-docs-") as tmp:
        run_id = None
        for command in block.commands:
            line = RUN_ID.sub(run_id, command.line) if run_id else command.line
            result = run_command(line, Path(tmp), env)
            results.append(result)
            made = RUN_LINE.findall(result.output)
            run_id = made[-1] if made else run_id
            if result.exit_code != command.exit_code:
                break
    return results


def data_dir() -> Path | None:
    root = Path(os.environ.get("SWEEPS_DATA_DIR") or SHARED_MNIST)
    return root if (root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists() else None


@pytest.fixture(scope="module")
def block_runs(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[list[Result]]]]:
    """Starts every selected runnable block, two at a time (the Ray ones first): block id
    -> its results, to come. A block that needs MNIST is not run where there is none."""
    selected = [
        item.callspec.params["block"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_runnable_block"
        and item.module is request.module
    ]
    mnist = data_dir()
    path = os.pathsep.join((str(SWEEPS.parent), os.environ.get("PATH", "")))
    # One thread a command: two run at once, and torch's threads on a busy CPU wait on
    # each other (an epoch of `sweeps train` took 10-30 s with 2 threads, 1 s with one).
    # No GPU visible: the docs show runs on CPUs, and so they run, on any machine.
    env = {
        **os.environ, "PATH": path, "COLUMNS": "120", "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }  # fmt: skip
    if mnist is not None:
        env["SWEEPS_DATA_DIR"] = str(mnist)
    assert shutil.which("sweeps", path=path) == str(SWEEPS), f"no console script at {SWEEPS}"
    executor = ThreadPoolExecutor(max_workers=2)
    runs = {
        block.id: executor.submit(run_block, block, env)
        for block in sorted(selected, key=lambda b: not b.starts_ray)
        if mnist is not None or not block.needs_data
    }
    yield runs
    executor.shutdown(wait=True, cancel_futures=True)


def test_runnable_blocks_found() -> None:
    assert len(BLOCKS) >= 5, [block.id for block in BLOCKS]
    assert {block.page for block in BLOCKS} >= {"README.md", "docs/experiments.md"}


# The commands every page shows, runnable or not.

INLINE_CODE = re.compile(r"(`+)((?:(?!\n\s*\n).)+?)\1", re.S)
COMMAND_START = re.compile(r"(?:^|\$ |/bin/)sweeps(?= |$)(.*)")
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def without_fences(text: str) -> str:
    """The text with every fenced block blanked (its line count kept)."""
    lines = text.splitlines()
    for fence in fences(text):
        for i in range(fence.lineno - 1, fence.lineno + len(fence.lines) + 1):
            if i < len(lines):
                lines[i] = ""
    return "\n".join(lines)


def shown_commands(path: Path) -> list[str]:
    """Every `sweeps ...` command line in the page's fenced blocks and inline code."""
    text = path.read_text()
    found = []
    for fence in fences(text):
        if fence.info.split()[:1] in (["python"], ["yaml"]):
            continue
        joined = "\n".join(fence.lines).replace("\\\n", " ")
        for line in joined.splitlines():
            match = COMMAND_START.match(line.strip())
            if match:
                found.append("sweeps" + match.group(1))
    for match in INLINE_CODE.finditer(without_fences(text)):
        code = " ".join(match.group(2).split())
        if code == "sweeps" or code.startswith("sweeps "):
            found.append(code)
    return found


def cli_command():  # -> click.Group
    """The CLI as click sees it, from the `sweeps` console script's module."""
    import typer

    (script,) = metadata.entry_points(group="console_scripts", name="sweeps")
    module = __import__(script.module, fromlist=["_"])
    (app,) = [value for value in vars(module).values() if isinstance(value, typer.Typer)]
    return typer.main.get_command(app)


def option_names(command) -> set[str]:
    names = {"--help"}
    for param in command.params:
        names.update(getattr(param, "opts", []), getattr(param, "secondary_opts", []))
    return names


def test_shown_commands_exist(block_runs: dict[str, Future[list[Result]]]) -> None:
    # block_runs: the runnable blocks run meanwhile.
    group = cli_command()
    wrong = []
    count = 0
    for path in PAGES:
        for shown in shown_commands(path):
            count += 1
            line = re.split(r"\s(?:\||>|&&|;|#)\s?", shown)[0]
            words = line.split()
            command = group
            if len(words) > 1 and not words[1].startswith("-") and not words[1].isupper():
                command = group.commands.get(words[1])
                if command is None:
                    wrong.append(f"{path.name}: `{shown}`: no command {words[1]!r}")
                    continue
            unknown = set(OPTION.findall(" ".join(words[1:]))) - option_names(command)
            if unknown:
                wrong.append(f"{path.name}: `{shown}`: no option {', '.join(sorted(unknown))}")
    assert not wrong, "\n".join(wrong)
    assert count > 50, f"only {count} sweeps commands found in the pages"


def test_shown_specs_parse() -> None:
    """Every YAML block with a `name:` and a `base:` or `grid:` is a whole spec: it parses."""
    import yaml

    from sweeps.plan.spec import parse_spec

    specs = 0
    for path in PAGES:
        for fence in fences(path.read_text()):
            if fence.info.split()[:1] != ["yaml"]:
                continue
            data = yaml.safe_load("\n".join(fence.lines))
            if isinstance(data, dict) and "name" in data and {"base", "grid"} & set(data):
                specs += 1
                parse_spec(data, f"{path.relative_to(ROOT)}:{fence.lineno}")
    assert specs, "no spec shown in the docs"


# Links.

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for a page's headings: a repeated one gets -1, -2, ..."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in without_fences(path.read_text()).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(f"{slug}-{count}" if count else slug)
    return found


def links(path: Path) -> list[str]:
    text = INLINE_CODE.sub("", without_fences(path.read_text()))
    return LINK.findall(text)


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = ROOT / "README.md"
    linked = {(readme.parent / target.split("#")[0]).resolve() for target in links(readme)}
    unlinked = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"


def test_relative_links_resolve() -> None:
    broken = []
    for path in PAGES:
        for target in links(path):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
                continue
            file, _, anchor = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            if not resolved.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}: no such file")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{path.relative_to(ROOT)}: {target}: no such heading")
    assert not broken, "\n".join(broken)


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines < 250, f"README.md has {lines} lines: move the detail to docs/"


def _markers(block: Block) -> list[pytest.MarkDecorator]:
    return [pytest.mark.slow] if block.starts_ray else []


@pytest.mark.parametrize(
    "block", [pytest.param(b, id=b.id, marks=_markers(b)) for b in BLOCKS]
)  # fmt: skip
def test_runnable_block(
    block: Block, block_runs: dict[str, Future[list[Result]]], request: pytest.FixtureRequest
) -> None:
    if block.needs_data:
        request.getfixturevalue("mnist_dir")  # skips (or fails in CI) where MNIST is not
    results = block_runs[block.id].result()
    for command, result in zip(block.commands, results, strict=False):
        shown = f"{block.id}: $ {result.command} ({result.seconds:.1f} s)"
        assert result.exit_code == command.exit_code, (
            f"{shown} exited {result.exit_code}, the docs say {command.exit_code}:\n"
            + result.output[-4000:]
        )
        lines = [" ".join(line.split()) for line in result.output.splitlines()]
        missing = [
            expected
            for expected in command.expected
            if (pattern := line_pattern(expected)) is not None
            and not any(pattern.fullmatch(line) for line in lines)
        ]
        assert not missing, (
            f"{shown}: lines the docs show that it did not print:\n"
            + "\n".join(missing)
            + "\n--- it printed:\n"
            + result.output[-4000:]
        )
