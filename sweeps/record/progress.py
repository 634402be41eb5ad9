"""What a person watches while a sweep runs, and the summary table at the end.

In a terminal, a live display on stderr redrawn at most four times a second: the counts,
elapsed time and an ETA, each running configuration's epoch and latest metric, the best
so far. Anywhere else (`> log 2>&1`, a pipe, a Ray Job's log) a live display shows nothing
until it stops, so there each configuration gets one plain line as it ends (its id, swept
values, metric, time), the first epoch reported one too (the workers train), and a status
line comes every `status_every_s()` seconds.

Everything counts configurations, not Tune trials: it listens to the events of
sweeps.record.fanout. A configuration's id is its trials row's: the Tune trial id, with
`-<position>` in a group of several.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any

import pandas as pd
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from analysis.numbers import value_text
from analysis.render import rich_table
from analysis.rundir import FINISHED, Status
from analysis.threshold import infer_mode
from sweeps.plan.groups import Config, RunPlan
from sweeps.plan.spec import SpecError
from sweeps.record.events import Configuration, Ended, Epoch, Listener, Started

# Off a terminal, a status line this often: a log of an hours-long sweep shows it is alive.
STATUS_EVERY_ENV = "SWEEPS_STATUS_EVERY_S"


def status_every_s() -> float:
    """Seconds between status lines off a terminal: $SWEEPS_STATUS_EVERY_S, else 30.
    Checked before a run starts (SpecError: exit 2, nothing started)."""
    text = os.environ.get(STATUS_EVERY_ENV, "30")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:
        raise SpecError(f"{STATUS_EVERY_ENV} must be a number of seconds > 0, got {text!r}")
    return value


VERBS = {Status.DONE: "done", Status.STOPPED: "stopped", Status.DIVERGED: "diverged",
         Status.FAILED: "failed"}  # fmt: skip
BAR_WIDTH = 20
MAX_ROWS = 10  # running configurations the live display lists; a pack may train hundreds
MIN_CONFIG_WIDTH = 12  # narrower than this, the config column goes: ids and numbers stay


@dataclasses.dataclass
class _Running:
    """A configuration between its start and its end, as the display shows it."""

    configuration: Configuration
    started: float  # time.monotonic() at its last attempt's start
    epochs: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def make_console() -> Console:
    """Where progress goes: stderr, the data (the summary table) going to stdout."""
    return Console(stderr=True)


class LiveProgress(Listener):
    """The sweep's progress, configuration by configuration."""

    def __init__(self, swept: list[str], metric: str, mode: str, plan: RunPlan) -> None:
        self.total = plan.pending
        self.swept, self.metric, self.mode = swept, metric, mode
        self._console: Console | None = None
        self._live: Live | None = None
        self._started = self._drawn = self._said = time.monotonic()
        self._status_every_s = status_every_s()
        self._first_start: float | None = None  # the pace counts from here, not Ray's start
        self._first_epoch = False  # whether any configuration has reported an epoch
        self._running: dict[str, _Running] = {}  # by id, in the order they started
        self._ended = 0
        self._counts = dict.fromkeys(Status, 0)
        self._work_done = 0  # epochs of the ended configurations (1 where epochs are unknown)
        self._best: tuple[float, str] | None = None  # among the ended configurations
        self._planned = plan.epochs
        self._total_work = sum(self._planned[i] or 1 for group in plan.groups for i in group)

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment; consoles and live displays do not.
        return {**self.__dict__, "_console": None, "_live": None}

    def setup(self) -> None:
        self._started = self._drawn = self._said = time.monotonic()
        self._console = make_console()
        if self._console.is_terminal:
            self._live = Live(console=self._console, refresh_per_second=4, transient=False)
            self._live.start()

    def started(self, event: Started) -> None:
        configuration = event.configuration
        now = time.monotonic()
        if self._first_start is None:
            self._first_start = now
        self._running[configuration.id] = _Running(configuration, now)  # a retry: from scratch

    def epoch(self, event: Epoch) -> None:
        running = self._running.get(event.configuration.id)
        if running is not None:
            running.epochs.append(event.metrics)
        if not self._first_epoch and self._live is None and self._console is not None:
            # Off a terminal, the line that says the workers train: a configuration's own
            # line comes only at its end, many epochs later.
            configuration = event.configuration
            value = _value(event.metrics.get(self.metric))
            started = running.started if running is not None else self._started
            self._print(
                _line(self._clock(), "first epoch", configuration.id,
                      self._config(configuration.config), f"{self.metric} {_number(value)}",
                      f"in {_duration(time.monotonic() - started)}")
            )  # fmt: skip
        self._first_epoch = True

    def note(self, group: str, text: str) -> None:
        self._print(Text(f"note: {text} (trial {group})"))

    def ended(self, name: str, events: list[Ended]) -> None:
        for event in events:
            self._end(event)

    def tick(self) -> None:
        now = time.monotonic()
        if self._live is not None and now - self._drawn >= 0.25:
            self._drawn = now
            self._live.update(self.render())
        elif (
            self._live is None
            and self._console is not None
            and now - self._said >= self._status_every_s
        ):
            self._said = now
            self._print(self.status_line())

    def finished(self) -> None:
        if self._live is not None:
            self._live.update(self.render())
            self._live.stop()
            self._live = None
        elif self._console is not None:
            self._print(self.status_line(ended=True))

    def _end(self, event: Ended) -> None:
        configuration, status = event.configuration, event.status
        running = self._running.pop(configuration.id, None)
        self._ended += 1
        self._work_done += self._planned[configuration.index] or 1
        self._counts[status] += 1
        value = _value(event.last.get(self.metric))
        config = self._config(configuration.config)
        if status in FINISHED and value is not None and self._better(value):
            self._best = value, config
        if self._live is not None:
            return  # the live display counts it; the summary table lists it at the end
        started = running.started if running is not None else self._started
        outcome = (f"{self.metric} {_number(value)}" if value is not None and status in FINISHED
                   else event.why or f"{self.metric} {self._absent(event)}")  # fmt: skip
        if status == Status.STOPPED:
            planned = self._planned[configuration.index]
            outcome += f" after {len(event.epochs)}{f' of {planned}' if planned else ''} epochs"
        count = f"{self._ended}/{self.total} {VERBS[status]}"
        seconds = time.monotonic() - started
        self._print(
            _line(self._clock(), count, configuration.id, config, outcome,
                  f"in {_duration(seconds)}")
        )  # fmt: skip

    def status_line(self, ended: bool = False) -> Text:
        """The counts, the ETA and the best so far, on one line for a log."""
        done, stopped, diverged, running, pending, failed = self._tally()
        # The old line where none stopped early or diverged.
        shown = (f" {stopped} stopped early," if stopped else "") + (
            f" {diverged} diverged," if diverged else ""
        )
        counts = f"{done} done,{shown} {running} running, {pending} pending, {failed} failed"
        if ended:
            return _line(self._clock(), f"{self._ended}/{self.total} ended", counts)
        eta = self._eta()
        best = self._best_so_far()
        return _line(
            self._clock(), f"{self._ended}/{self.total}", counts,
            f"eta {_hms(eta)}" if eta is not None else "",
            f"best {self.metric} {_number(best[0])}  {best[1]}" if best is not None else "",
        )  # fmt: skip

    def render(self) -> RenderableType:
        """The live display: the counts and ETA, the running configurations, the best."""
        done, stopped, diverged, running, pending, failed = self._tally()
        eta = self._eta()
        line = Text.assemble(
            f"{self._ended}/{self.total}  ",
            (f"{done} done", "green"),
            (f"  {stopped} stopped early", "blue") if stopped else "",
            (f"  {diverged} diverged", "yellow") if diverged else "",
            "  ", (f"{running} running", "cyan"),
            f"  {pending} pending",
            (f"  {failed} failed", "red") if failed else "",
            f"  {self._clock()}", f"  eta {_hms(eta)}" if eta is not None else "",
        )  # fmt: skip
        width = self._console.width if self._console is not None else 80
        parts: list[RenderableType] = [line]
        if line.cell_len + BAR_WIDTH + 1 <= width:  # the bar only where the line stays whole
            bar = Table.grid(padding=(0, 1))
            bar.add_row(ProgressBar(total=self.total, completed=self._ended,
                                    width=BAR_WIDTH), line)  # fmt: skip
            parts = [bar]
        rows = self._running_rows()
        if rows:
            parts.append(running_table(rows, self.metric, width))
        best = self._best_so_far()
        if best is not None:
            parts.append(Text(f"best {self.metric} {_number(best[0])}  {best[1]}", style="dim"))
        return Group(*parts)

    def _running_rows(self) -> list[tuple[str, str, str, str]]:
        """(id, epoch, latest metric, config) of each running configuration, MAX_ROWS at
        most and then a row saying how many more."""
        rows = []
        for running in self._running.values():
            configuration, epochs = running.configuration, running.epochs
            planned = self._planned[configuration.index]
            last = epochs[-1] if epochs else {}
            epoch = str(last.get("epoch", len(epochs))) if epochs else "-"
            value = _value(last.get(self.metric))
            rows.append((configuration.id, f"{epoch}/{planned}" if planned else epoch,
                         _number(value) if value is not None else "-",
                         self._config(configuration.config)))  # fmt: skip
        if len(rows) > MAX_ROWS:
            rows = [*rows[:MAX_ROWS], (f"+{len(rows) - MAX_ROWS} more", "", "", "")]
        return rows

    def _tally(self) -> tuple[int, int, int, int, int, int]:
        """Configurations done, stopped early, diverged, running, pending and failed."""
        running = len(self._running)
        pending = max(self.total - self._ended - running, 0)
        counts = self._counts
        return (counts[Status.DONE], counts[Status.STOPPED], counts[Status.DIVERGED], running,
                pending, counts[Status.FAILED])  # fmt: skip

    def _absent(self, event: Ended) -> str:
        """Why an ended configuration shows no metric value: "-" for one it reported (not
        a number), "not reported" where it never named it (`val_acc` for `val_accuracy`)."""
        return "-" if self.metric in event.last else "not reported"

    def _eta(self) -> float | None:
        """Seconds left at the pace so far, measured in epochs where they are known."""
        work = self._work_done
        for running in self._running.values():
            planned = self._planned[running.configuration.index]
            work += min(len(running.epochs), planned) if planned else 0
        if work == 0 or self._ended >= self.total or self._first_start is None:
            return None
        elapsed = time.monotonic() - self._first_start
        return elapsed * (self._total_work - work) / work

    def _best_so_far(self) -> tuple[float, str] | None:
        best = self._best
        for running in self._running.values():
            epochs = running.epochs
            value = _value(epochs[-1].get(self.metric)) if epochs else None
            if value is not None and (best is None or self._better(value, best[0])):
                best = value, self._config(running.configuration.config)
        return best

    def _better(self, value: float, than: float | None = None) -> bool:
        than = than if than is not None else (self._best[0] if self._best else None)
        return than is None or (value > than if self.mode == "max" else value < than)

    def _config(self, config: Config) -> str:
        # fields: 2 spaces
        # A key only some configurations have (`when`) is left out where it is not.
        return " ".join(f"{key}={value_text(config[key])}" for key in self.swept if key in config)

    def _clock(self) -> str:
        return _hms(time.monotonic() - self._started)

    def _print(self, text: Text) -> None:
        console = self._console or make_console()
        console.print(text, highlight=False, soft_wrap=True)


def running_table(rows: list[tuple[str, str, str, str]], metric: str, width: int) -> RenderableType:
    """The running configurations, never cutting an id or a number: the config column
    folds, or goes when the console is too narrow for it; narrower still, a row is a line
    that wraps between its id and numbers."""
    headers = ("trial", "epoch", metric)
    needed = sum(max(len(header), *(len(row[i]) for row in rows))
                 for i, header in enumerate(headers)) + 2 * len(headers)  # fmt: skip
    if needed > width:
        return Group(*(Text("  ".join(cell for cell in row[:3] if cell)) for row in rows))
    table = Table(box=None, pad_edge=False, padding=(0, 1), show_edge=False)
    for header, justify in zip(headers, ("left", "right", "right"), strict=True):
        table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    config = width - needed >= MIN_CONFIG_WIDTH
    if config:
        table.add_column("config", overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in (row if config else row[:3])))
    return table


def _line(*parts: str) -> Text:
    """A line for a log: its parts two spaces apart, the empty ones left out."""
    return Text("  ".join(part for part in parts if part))


def _value(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not math.isnan(value) else None


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e6 else f"{value:.4g}"


def _hms(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _duration(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 60 else _hms(seconds)


def summary_table(trials: pd.DataFrame, swept: list[str], metric: str, mode: str) -> Table:
    """One row per trial, best first: the swept parameters, status and headline metrics."""
    metrics = [c for c in (metric, "val_accuracy", "val_loss", "train_time_s")
               if c in trials.columns]  # fmt: skip
    if trials["status"].eq(Status.STOPPED).any():  # how far each got, beside the others
        metrics.append("epochs_completed")
    columns = list(dict.fromkeys(["trial_id", *swept, "status", *metrics]))
    ordered = trials  # a metric no trial reported has no column: the rows as they are
    if metric in trials.columns:
        ordered = trials.sort_values(metric, ascending=mode == "min", na_position="last")
    words = {Status.DONE.value: "done", Status.STOPPED.value: "stopped"}
    shown = ordered[columns].assign(status=ordered["status"].replace(words))
    # Swept values with the digits that tell them apart (7.9e-05 and 0.00011, not 0.0001
    # twice), metrics with those their best and runner-up need.
    modes = {column: mode if column == metric else infer_mode(column)
             for column in (metric, "val_accuracy", "val_loss") if column in columns}  # fmt: skip
    return rich_table(shown.reset_index(drop=True), keys=swept, metrics=modes)
