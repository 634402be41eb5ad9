"""Where the CLI writes: `console` (stdout) for results, `errors` (stderr) for everything
about them, so that a piped table or JSON holds only data."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

console = Console()
errors = Console(stderr=True)


def say(message: str) -> None:
    """A progress or status line, dim on stderr."""
    errors.print(escape(message), highlight=False, soft_wrap=True, style="dim")


def fail(message: str) -> None:
    """`error: message` on one line of stderr: what `sweeps` prints before exiting 1 or 2."""
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
