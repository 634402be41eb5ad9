"""What a person watches: a live line of trial counts and the best so far, in place of
Tune's verbose tables, and the summary table at the end."""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd
from ray import tune
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from analysis.render import rich_table
from sweeps.plan import RunPlan
from sweeps.protocol import decode

_DONE, _FAILED = "TERMINATED", "ERROR"


class LiveProgress(tune.Callback):
    """A Tune callback that redraws the sweep's state at most four times a second.

    It counts configurations: a trial `{"group": i}` trains `plan.members(i)` and
    reports their metrics as `members` (sweeps.protocol).
    """

    def __init__(
        self,
        swept: list[str],
        metric: str,
        mode: str,
        plan: RunPlan,
    ) -> None:
        self.total = plan.pending
        self.swept, self.metric, self.mode = swept, metric, mode
        self.plan = plan
        self._live: Live | None = None
        self._started = time.monotonic()
        self._drawn = 0.0
        self._done: dict[str, int] = {}  # trial id -> configurations it stands for
        self._failed: dict[str, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment; a live display does not pickle.
        return {**self.__dict__, "_live": None}

    def setup(self, **info: Any) -> None:
        self._started = time.monotonic()
        self._live = Live(console=Console(stderr=True), refresh_per_second=4, transient=False)
        self._live.start()

    def members(self, trial: Any) -> list[dict[str, Any]]:
        """The configurations a trial trains."""
        return self.plan.members(trial.config["group"])

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        report = decode(result)
        for note in report.notes if report is not None else []:
            console = self._live.console if self._live is not None else Console(stderr=True)
            console.print(Text(f"note: {note} (trial {trial.trial_id})"), soft_wrap=True)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._done[trial.trial_id] = len(self.members(trial))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._failed[trial.trial_id] = len(self.members(trial))

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if self._live is not None and time.monotonic() - self._drawn >= 0.25:
            self._drawn = time.monotonic()
            self._live.update(self.render(trials))

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self._live is not None:
            self._live.update(self.render(trials))
            self._live.stop()
            if not self._live.console.is_terminal:
                self._live.console.line()  # a log file gets the last state, then a newline
            self._live = None

    def render(self, trials: list) -> Group:
        # Ended trials are counted from the callbacks: on an interrupt Tune marks the
        # unfinished ones TERMINATED too.
        done, failed = sum(self._done.values()), sum(self._failed.values())
        running = sum(len(self.members(t)) for t in trials if t.status == "RUNNING")
        pending = max(self.total - done - failed - running, 0)
        elapsed = time.strftime("%H:%M:%S", time.gmtime(time.monotonic() - self._started))
        line = Text.assemble(
            f"{done + failed}/{self.total}  ",
            (f"{done} done", "green"), "  ",
            (f"{running} running", "cyan"), f"  {pending} pending  ",
            (f"{failed} failed", "red" if failed else ""),
            f"  {elapsed}",
        )  # fmt: skip
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=self.total, completed=done + failed, width=20), line)
        best = self._best(trials)
        if best is None:
            return bar
        value, config = best
        return Group(bar, Text(f"best {self.metric} {value:.4f}  {config}", style="dim"))

    def _best(self, trials: list) -> tuple[float, str] | None:
        scored = []
        for trial in trials:
            report, members = decode(trial.last_result or {}), self.members(trial)
            for position, result in report.placed() if report is not None else []:
                value = result.get(self.metric)
                if isinstance(value, int | float) and not math.isnan(value):
                    scored.append((float(value), members[position]))
        if not scored:
            return None
        pick = max if self.mode == "max" else min
        value, config = pick(scored, key=lambda pair: pair[0])
        return value, "  ".join(f"{key}={config.get(key)}" for key in self.swept)


def summary_table(trials: pd.DataFrame, swept: list[str], metric: str, mode: str) -> Table:
    """One row per trial, best first: the swept parameters, status and headline metrics."""
    metrics = [c for c in (metric, "val_accuracy", "val_loss", "train_time_s")
               if c in trials.columns]  # fmt: skip
    columns = list(dict.fromkeys(["trial_id", *swept, "status", *metrics]))
    ordered = trials.sort_values(metric, ascending=mode == "min", na_position="last")
    shown = ordered[columns].assign(status=ordered["status"].replace({_DONE: "done"}))
    return rich_table(shown.reset_index(drop=True))
