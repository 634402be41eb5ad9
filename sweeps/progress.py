"""What a person watches while a sweep runs, and the summary table at the end.

In a terminal, a live display on stderr redrawn at most four times a second: the counts,
elapsed time and an ETA, each running configuration's epoch and latest metric, the best
so far. Anywhere else (`> log 2>&1`, a pipe, a Ray Job's log) a live display shows nothing
until it stops, so there each configuration gets one plain line as it ends (its id, swept
values, metric, time) and a status line comes every `status_every_s()` seconds.

Everything counts configurations, not Tune trials: a trial `{"group": i}` trains
`plan.members(i)` (a fused bundle, or a pack of bundles) and reports them as `members`
(sweeps.protocol). A configuration's id is its trials row's (sweeps.results): the Tune
trial id, with `-<position>` in a group of several.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import pandas as pd
from ray import tune
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from analysis.render import rich_table
from sweeps.plan import Config, RunPlan
from sweeps.protocol import EPOCH, decode, divergence, scalars
from sweeps.results import configuration_id
from sweeps.spec import DEFAULT_TRAINER, SpecError

_DONE, _FAILED, _DIVERGED = "TERMINATED", "ERROR", "DIVERGED"
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


BAR_WIDTH = 20
MAX_ROWS = 10  # running configurations the live display lists; a pack may train hundreds
MIN_CONFIG_WIDTH = 12  # narrower than this, the config column goes: ids and numbers stay

Key = tuple[str, int]  # (Tune trial id, position among its members)


def make_console() -> Console:
    """Where progress goes: stderr, the data (the summary table) going to stdout."""
    return Console(stderr=True)


class LiveProgress(tune.Callback):
    """A Tune callback showing the sweep's progress, configuration by configuration."""

    def __init__(self, swept: list[str], metric: str, mode: str, plan: RunPlan) -> None:
        self.total = plan.pending
        self.swept, self.metric, self.mode = swept, metric, mode
        self.plan = plan
        self._console: Console | None = None
        self._live: Live | None = None
        self._started = self._drawn = self._said = time.monotonic()
        self._status_every_s = status_every_s()
        self._trial_started: dict[str, float] = {}  # Tune trial id -> its attempt's start
        self._first_start: float | None = None  # the pace counts from here, not Ray's start
        self._epochs: dict[Key, list[dict[str, Any]]] = {}  # a running member's reports
        self._ended: set[Key] = set()
        self._counts = {_DONE: 0, _DIVERGED: 0, _FAILED: 0}
        self._work_done = 0  # epochs of the ended configurations (1 where epochs are unknown)
        self._best: tuple[float, str] | None = None  # among the ended configurations
        default = _default_epochs(plan.spec.trainer)
        self._planned = [_epochs_of(config, default) for config in plan.configs]
        self._total_work = sum(self._planned[i] or 1 for group in plan.groups for i in group)

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment; consoles and live displays do not.
        return {**self.__dict__, "_console": None, "_live": None}

    def setup(self, **info: Any) -> None:
        self._started = self._drawn = self._said = time.monotonic()
        self._console = make_console()
        if self._console.is_terminal:
            self._live = Live(console=self._console, refresh_per_second=4, transient=False)
            self._live.start()

    def members(self, trial: Any) -> list[Config]:
        """The configurations a trial trains."""
        return self.plan.members(trial.config["group"])

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._trial_started[trial.trial_id] = time.monotonic()
        if self._first_start is None:
            self._first_start = time.monotonic()
        for position in range(len(self.members(trial))):
            self._epochs.pop((trial.trial_id, position), None)  # a retry starts from scratch

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.on_trial_start(iteration, trials, trial)

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        report = decode(result)
        if report is None:
            return
        for note in report.notes:
            self._print(Text(f"note: {note} (trial {trial.trial_id})"))
        for number, (position, metrics) in enumerate(report.placed()):
            key = (trial.trial_id, position)
            if key in self._ended:
                continue  # a retried pack trains again what its first attempt finished
            if report.kind == EPOCH:
                self._epochs.setdefault(key, []).append(scalars(metrics))
            else:
                error = report.errors[number] if report.errors else None
                self._end(trial, position, scalars(metrics), error)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # Stopped early (ASHA), a configuration ends with no final report of its own.
        for position in range(len(self.members(trial))):
            self._end(trial, position, {}, None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from sweeps.callbacks import error_message

        message = error_message(trial)
        for position in range(len(self.members(trial))):
            self._end(trial, position, {}, message)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        if self._live is not None and now - self._drawn >= 0.25:
            self._drawn = now
            self._live.update(self.render(trials))
        elif (
            self._live is None
            and self._console is not None
            and now - self._said >= self._status_every_s
        ):
            self._said = now
            self._print(self.status_line(trials))

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self._live is not None:
            self._live.update(self.render(trials))
            self._live.stop()
            self._live = None
        elif self._console is not None:
            self._print(self.status_line(trials, ended=True))

    def _end(self, trial: Any, position: int, final: dict[str, Any], error: str | None) -> None:
        key = (trial.trial_id, position)
        if key in self._ended:
            return
        self._ended.add(key)
        epochs = self._epochs.pop(key, [])
        members = self.members(trial)
        index = self.plan.groups[trial.config["group"]][position]
        self._work_done += self._planned[index] or 1
        why = error or divergence(epochs, final)
        status = _FAILED if error else (_DIVERGED if why else _DONE)
        self._counts[status] += 1
        value = _value({**(epochs[-1] if epochs else {}), **final}.get(self.metric))
        config = self._config(members[position])
        if status == _DONE and value is not None and self._better(value):
            self._best = value, config
        if self._live is not None:
            return  # the live display counts it; the summary table lists it at the end
        seconds = time.monotonic() - self._trial_started.get(trial.trial_id, self._started)
        member_id = configuration_id(trial.trial_id, position, len(members))
        verb = {_DONE: "done", _DIVERGED: "diverged", _FAILED: "failed"}[status]
        outcome = (f"{self.metric} {_number(value)}" if value is not None and status == _DONE
                   else why or f"{self.metric} -")  # fmt: skip
        count = f"{len(self._ended)}/{self.total} {verb}"
        self._print(
            _line(self._clock(), count, member_id, config, outcome, f"in {_duration(seconds)}")
        )

    def status_line(self, trials: list, ended: bool = False) -> Text:
        """The counts, the ETA and the best so far, on one line for a log."""
        done, diverged, running, pending, failed = self._tally(trials)
        shown = f" {diverged} diverged," if diverged else ""  # the old line where none did
        counts = f"{done} done,{shown} {running} running, {pending} pending, {failed} failed"
        if ended:
            return _line(self._clock(), f"{len(self._ended)}/{self.total} ended", counts)
        eta = self._eta(trials)
        best = self._best_so_far(trials)
        return _line(
            self._clock(), f"{len(self._ended)}/{self.total}", counts,
            f"eta {_hms(eta)}" if eta is not None else "",
            f"best {self.metric} {_number(best[0])}  {best[1]}" if best is not None else "",
        )  # fmt: skip

    def render(self, trials: list) -> RenderableType:
        """The live display: the counts and ETA, the running configurations, the best."""
        done, diverged, running, pending, failed = self._tally(trials)
        eta = self._eta(trials)
        line = Text.assemble(
            f"{len(self._ended)}/{self.total}  ",
            (f"{done} done", "green"), (f"  {diverged} diverged", "yellow") if diverged else "",
            "  ", (f"{running} running", "cyan"),
            f"  {pending} pending",
            (f"  {failed} failed", "red") if failed else "",
            f"  {self._clock()}", f"  eta {_hms(eta)}" if eta is not None else "",
        )  # fmt: skip
        width = self._console.width if self._console is not None else 80
        parts: list[RenderableType] = [line]
        if line.cell_len + BAR_WIDTH + 1 <= width:  # the bar only where the line stays whole
            bar = Table.grid(padding=(0, 1))
            bar.add_row(ProgressBar(total=self.total, completed=len(self._ended),
                                    width=BAR_WIDTH), line)  # fmt: skip
            parts = [bar]
        rows = self._running_rows(trials)
        if rows:
            parts.append(running_table(rows, self.metric, width))
        best = self._best_so_far(trials)
        if best is not None:
            parts.append(Text(f"best {self.metric} {_number(best[0])}  {best[1]}", style="dim"))
        return Group(*parts)

    def _running_rows(self, trials: list) -> list[tuple[str, str, str, str]]:
        """(id, epoch, latest metric, config) of each running configuration, MAX_ROWS at
        most and then a row saying how many more."""
        rows = []
        for trial, position, epochs in self._running(trials):
            members = self.members(trial)
            member_id = configuration_id(trial.trial_id, position, len(members))
            planned = self._planned[self.plan.groups[trial.config["group"]][position]]
            last = epochs[-1] if epochs else {}
            epoch = str(last.get("epoch", len(epochs))) if epochs else "-"
            value = _value(last.get(self.metric))
            rows.append((member_id, f"{epoch}/{planned}" if planned else epoch,
                         _number(value) if value is not None else "-",
                         self._config(members[position])))  # fmt: skip
        if len(rows) > MAX_ROWS:
            rows = [*rows[:MAX_ROWS], (f"+{len(rows) - MAX_ROWS} more", "", "", "")]
        return rows

    def _running(self, trials: list) -> list[tuple[Any, int, list[dict[str, Any]]]]:
        return [(trial, position, self._epochs.get((trial.trial_id, position), []))
                for trial in trials if trial.status == "RUNNING"
                for position in range(len(self.members(trial)))
                if (trial.trial_id, position) not in self._ended]  # fmt: skip

    def _tally(self, trials: list) -> tuple[int, int, int, int, int]:
        """Configurations done, diverged, running, pending and failed."""
        # Ended configurations are counted from the callbacks: on an interrupt Tune marks
        # the unfinished trials TERMINATED too.
        running = len(self._running(trials))
        pending = max(self.total - len(self._ended) - running, 0)
        counts = self._counts
        return counts[_DONE], counts[_DIVERGED], running, pending, counts[_FAILED]

    def _eta(self, trials: list) -> float | None:
        """Seconds left at the pace so far, measured in epochs where they are known."""
        work = self._work_done
        for trial, position, epochs in self._running(trials):
            planned = self._planned[self.plan.groups[trial.config["group"]][position]]
            work += min(len(epochs), planned) if planned else 0
        if work == 0 or len(self._ended) >= self.total or self._first_start is None:
            return None
        elapsed = time.monotonic() - self._first_start
        return elapsed * (self._total_work - work) / work

    def _best_so_far(self, trials: list) -> tuple[float, str] | None:
        best = self._best
        for trial, position, epochs in self._running(trials):
            value = _value(epochs[-1].get(self.metric)) if epochs else None
            if value is not None and (best is None or self._better(value, best[0])):
                best = value, self._config(self.members(trial)[position])
        return best

    def _better(self, value: float, than: float | None = None) -> bool:
        than = than if than is not None else (self._best[0] if self._best else None)
        return than is None or (value > than if self.mode == "max" else value < than)

    def _config(self, config: Config) -> str:
        return " ".join(f"{key}={config.get(key)}" for key in self.swept)  # fields: 2 spaces

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


def _default_epochs(trainer: str) -> int | None:
    if trainer != DEFAULT_TRAINER:
        return None  # a user's trainer: epochs only where the config says
    from trainers import DEFAULTS

    return int(DEFAULTS["epochs"])


def _epochs_of(config: Config, default: int | None) -> int | None:
    epochs = config.get("epochs", default)
    return (
        epochs if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0 else None
    )


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
    columns = list(dict.fromkeys(["trial_id", *swept, "status", *metrics]))
    ordered = trials.sort_values(metric, ascending=mode == "min", na_position="last")
    shown = ordered[columns].assign(status=ordered["status"].replace({_DONE: "done"}))
    return rich_table(shown.reset_index(drop=True))
