"""What each Tune trial printed, warned and raised, kept as text in the run directory:
<run>/logs/<Tune trial id>.txt (analysis.logs reads it; `sweeps logs RUN` shows it).

A trial sends what it printed with its reports (sweeps.record.protocol `output`); a trial
that fails, its last output and its traceback through Tune (sweeps.record.fanout). Each
trial is one process: a fused bundle or a pack trains several configurations in it,
whose output is then theirs together, and the file's first line names them all. A file
is written whole, as an object store takes it (it has no append): when configurations of
its trial end, and when the run ends (an interrupted trial's output so far). The driver
keeps each trial's text, its last `LIMIT` characters: a progress bar redrawn for hours
costs neither its memory nor the file more.
"""

from __future__ import annotations

from analysis.logs import LOGS, SUFFIX
from analysis.place import Place
from sweeps.record.events import Configuration

LIMIT = 1_000_000  # characters of a trial's output kept: the last ones, where a failure is
AGAIN = "# --- the trial starts again ---\n"


class TrialLogs:
    """The text of each Tune trial of a run, written to `<run_dir>/logs/`."""

    def __init__(self, run_dir: Place) -> None:
        self.folder = run_dir / LOGS
        self._texts: dict[str, str] = {}
        self._cut: dict[str, int] = {}  # characters left out, from the start
        self._members: dict[str, dict[int, Configuration]] = {}
        self._unwritten: set[str] = set()

    def started(self, configuration: Configuration, retry: bool) -> None:
        group = configuration.group
        self._members.setdefault(group, {})[configuration.position] = configuration
        text = self._texts.get(group, "")
        if retry and text and not text.endswith(AGAIN):
            self.add(group, ("" if text.endswith("\n") else "\n") + AGAIN)

    def add(self, group: str, text: str) -> None:
        """More of what trial `group` printed."""
        if not text:
            return
        whole = self._texts.get(group, "") + text
        if len(whole) > LIMIT:
            self._cut[group] = self._cut.get(group, 0) + len(whole) - LIMIT
            whole = whole[-LIMIT:]
        self._texts[group] = whole
        self._unwritten.add(group)

    def write(self, group: str) -> str | None:
        """Trial `group`'s file, written if it has news: where it is (a path or a URI), or
        None when the trial has printed nothing."""
        if group not in self._texts:
            return None
        place = self.folder / f"{group}{SUFFIX}"
        if group in self._unwritten:
            place.write_text(self._header(group) + self._texts[group])
            self._unwritten.discard(group)
        return place.uri

    def flush(self) -> None:
        """Write what has not been written: trials still running when the run ended."""
        for group in sorted(self._unwritten):
            self.write(group)

    def _header(self, group: str) -> str:
        members = [self._members[group][p] for p in sorted(self._members.get(group, {}))]
        named = ", ".join(f"{member.id} (config_index {member.index})" for member in members)
        if len(members) > 1:
            line = (f"# Tune trial {group} trained configurations {named} in one process:"
                    " what follows is all of theirs")  # fmt: skip
        else:
            line = f"# Tune trial {group} trained configuration {named or group}"
        cut = self._cut.get(group)
        return line + (f"\n# (its first {cut} characters are left out)" if cut else "") + "\n"


def naming_log(error: str | None, log: str | None) -> str | None:
    """A failed configuration's one-line error, naming the file with its traceback."""
    return f"{error} (traceback in {log})" if error and log else error
