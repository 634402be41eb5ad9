"""What a person sees while a sweep runs: plain lines off a terminal (a pipe, a log), a live
display with an ETA and the running configurations on one. Real runs on a real Ray."""

from __future__ import annotations

import io
import math
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from sweeps.plan.groups import configurations, plan_run
from sweeps.plan.spec import parse_spec
from sweeps.record import progress
from sweeps.record.events import Listener
from sweeps.record.fanout import Fanout
from sweeps.record.protocol import EPOCH, FINAL, encode
from tests.helpers.processes import CLOCK, STATUS_LINE, timed_lines
from tests.helpers.runs import read_run, write_spec
from tests.sweeps.conftest import plugin_env, run_cli

SWEEPS = [sys.executable, "-m", "sweeps"]
DONE_LINE = re.compile(rf"^{CLOCK}  (\d+)/(\d+) (done|failed)  (\S+)  (.*?)  (.*)  in \d+\.\ds$")


def test_the_running_table_never_cuts_an_id_or_a_number() -> None:
    rows = [("4f2a1_00012-3", "12/20", "0.9731", "batch_size=512 hidden=[1000, 1000] lr=0.001"),
            ("4f2a1_00013", "-/20", "-", "batch_size=8 hidden=[10] lr=0.5")]  # fmt: skip
    for width, config_shown in ((100, True), (48, False), (20, False)):
        console = Console(file=io.StringIO(), width=width)
        console.print(progress.running_table(rows, "val_accuracy", width))
        lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
        assert all(len(line.rstrip()) <= width for line in lines), (width, lines)
        words = {word for line in lines for word in line.split()}
        assert {"4f2a1_00012-3", "12/20", "0.9731", "4f2a1_00013", "-/20"} <= words, width
        assert ("batch_size=512" in words) == config_shown, (width, lines)


def test_the_summary_tells_sampled_values_apart_and_ranks_by_the_specs_metric() -> None:
    trials = pd.DataFrame({
        "trial_id": ["t_00000", "t_00001", "t_00002"], "lr": [7.9e-05, 0.00011, 0.5],
        "status": ["TERMINATED", "TERMINATED", "ERROR"],
        "val_f1": [0.81234, 0.81281, None], "val_accuracy": [0.9, 0.91, None],
    })  # fmt: skip
    console = Console(file=io.StringIO(), width=120)
    console.print(progress.summary_table(trials, ["lr"], "val_f1", "max"))
    rows = [line.split("│")[1:-1] for line in console.file.getvalue().splitlines()  # type: ignore[attr-defined]
            if line.startswith("│")]  # fmt: skip
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["t_00001", "0.00011", "done", "0.8128", "0.9100"],  # 4 decimals: the best two differ
        ["t_00000", "7.9e-05", "done", "0.8123", "0.9000"],  # (0.0001 twice, before)
        ["t_00002", "0.5", "ERROR", "-", "-"],
    ]


@pytest.mark.slow
def test_piped_run_prints_a_line_per_configuration_while_it_runs(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "s.yaml", name="piped", trainer="user_trainers:flaky", dataset=None,
        base={"epochs": 2, "sleep_s": 0.5}, grid={"x": [1, 2, 3]}, max_concurrent=1,
    )  # fmt: skip
    env = {**plugin_env(), "SWEEPS_STATUS_EVERY_S": "1"}
    # `sweeps run ... 2>&1 | cat`: neither stream is a terminal.
    command = [*SWEEPS, "run", spec, "--results", str(tmp_path / "results")]
    code, arrived = timed_lines(command, env)
    assert code == 1  # x=3 fails, last
    text = "\n".join(line for _, line in arrived)
    summary = next(i for i, (_, line) in enumerate(arrived) if line.startswith("┏"))
    shown = "\n".join(line for _, line in arrived[:summary])
    assert "\x1b" not in text and "━" not in shown, text  # no live display off a terminal
    # Before each quiet stretch, what starts, in the order it happens; no dataset, so no
    # object store line.
    phases = [r"starting Ray \(local, \d+ CPUs\)$", r"run \S+: 3 trials -> ",
              r"starting 1 worker$", rf"{CLOCK}  first epoch  \S+  x=\d  val_accuracy ",
              rf"{CLOCK}  1/3 (done|failed)  "]  # fmt: skip
    at = [next((i for i, (_, line) in enumerate(arrived) if re.match(p, line)), -1) for p in phases]
    assert -1 not in at and at == sorted(at), text
    assert "object store" not in shown, text

    _, trials, _ = read_run(tmp_path / "results")
    by_id = trials.set_index("trial_id")
    ended = [(when, match) for when, line in arrived if (match := DONE_LINE.match(line))]
    assert [int(match[1]) for _, match in ended] == [1, 2, 3], text
    assert {match[4] for _, match in ended} == set(trials["trial_id"])
    for _, match in ended:
        row = by_id.loc[match[4]]
        assert match[5] == f"x={row['x']}"
        if row["status"] == "ERROR":
            assert match[3] == "failed" and match[6] == "ValueError: x=3 is divisible by 3"
        else:
            assert match[3] == "done" and match[6] == f"val_accuracy {row['val_accuracy']:.4f}"
    statuses = [when for when, line in arrived if STATUS_LINE.match(line)]
    assert statuses and statuses[0] < ended[-1][0], text
    # While it runs: the first line came as its trial ended, x=2's two epochs of 0.5 s
    # before the run's end.
    (end,) = [when for when, line in arrived if re.match(rf"{CLOCK}  3/3 ended  ", line)]
    assert end - ended[0][0] >= 1.0, text


@pytest.mark.slow
@pytest.mark.usefixtures("local_ray")
def test_a_line_for_each_configuration_of_a_fused_pack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One Tune trial training two bundles (batch 64, batch 128) of two learning rates each.
    code = run_cli(
        "run", "quickstart", "--epochs", "2", "--set", "batch_size=64,128",
        "--set", "lr=0.1,0.05", "--max-bundle", "2", "--pack", "on", "--max-concurrent", "1",
        "--results", str(tmp_path),
    )  # fmt: skip
    assert code == 0
    _, trials, _ = read_run(tmp_path)
    assert trials["bundle_id"].nunique() == 1 and len(trials) == 4
    err = capsys.readouterr().err
    ended = [match for line in err.splitlines() if (match := DONE_LINE.match(line))]
    assert [(match[1], match[2], match[3]) for match in ended] == [
        (str(count), "4", "done") for count in range(1, 5)
    ], err
    by_id = trials.set_index("trial_id")
    assert {match[4] for match in ended} == set(by_id.index)
    for match in ended:
        row = by_id.loc[match[4]]
        assert match[5] == f"batch_size={row['batch_size']} lr={row['lr']}"
        assert match[6] == f"val_accuracy {row['val_accuracy']:.4f}"
    assert re.search(r"4/4 ended  4 done, 0 running, 0 pending, 0 failed", err), err


@pytest.mark.slow
@pytest.mark.usefixtures("local_ray")
def test_a_terminal_shows_the_eta_and_each_running_trials_epoch_and_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = io.StringIO()
    width = 40  # narrower than the counts, the bar and the config column need
    monkeypatch.setattr(progress, "make_console",
                        lambda: Console(file=screen, force_terminal=True, width=width))  # fmt: skip
    spec = write_spec(
        tmp_path / "s.yaml", name="live", trainer="user_trainers:steady", dataset=None,
        base={"epochs": 3, "sleep_s": 0.5}, grid={"x": [1, 2]}, max_concurrent=1,
    )  # fmt: skip
    assert run_cli("run", spec, "--results", str(tmp_path / "results")) == 0
    _, trials, _ = read_run(tmp_path / "results")
    # The live display redraws in place: a cursor move starts a line, colours go.
    drawn = re.sub(r"\x1b\[\d*[AK]|\r", "\n", screen.getvalue())
    lines = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", drawn).splitlines()
    assert all(len(line) <= width for line in lines), [line for line in lines if len(line) > width]
    assert any(re.search(rf"eta {CLOCK}", line) for line in lines), "\n".join(lines[-40:])
    seen = {}
    for x, trial_id in zip(trials["x"], trials["trial_id"], strict=True):
        # A row: the whole id, its epoch of 3, and that epoch's val_accuracy (1 - 1/(epoch + x)).
        for line in lines:
            if match := re.fullmatch(rf"{trial_id} +([123])/3 +(0\.\d{{4}})", line.rstrip()):
                epoch = int(match[1])
                assert match[2] == f"{1 - 1 / (epoch + x):.4f}", line
                seen.setdefault(trial_id, set()).add(epoch)
    assert set(seen) == set(trials["trial_id"]), "\n".join(lines[-40:])
    assert any(len(epochs) >= 2 for epochs in seen.values()), seen  # it redraws as it goes


def test_a_bad_status_interval_is_one_line_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to be read once Ray was up: a traceback, after a Ray start for nothing."""
    monkeypatch.setenv("SWEEPS_STATUS_EVERY_S", "abc")
    results = tmp_path / "results"
    assert run_cli("run", "quickstart", "--epochs", "1", "--results", str(results)) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: SWEEPS_STATUS_EVERY_S must be a number of seconds > 0, got 'abc'"
    ]
    assert not results.exists()


def test_the_counts_show_diverged_configurations_apart_from_the_done_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """They were counted as done: a sweep whose every configuration diverged read as a
    success. The counts keep their old text while nothing has diverged."""
    screen = io.StringIO()
    monkeypatch.setattr(progress, "make_console", lambda: Console(file=screen, width=200))
    spec = parse_spec({"name": "counts", "trainer": "user_trainers:steady", "dataset": None,
                       "base": {"epochs": 1}, "grid": {"x": [1, 2, 3, 4]},
                       "resources": {"gpus": 0}}, "test")  # fmt: skip
    plan = plan_run(spec, configurations(spec), slots=1)
    live = progress.LiveProgress(spec.swept, "val_accuracy", "max", plan)
    fanout = Fanout(plan.configs, plan.groups, Listener(), [live])
    live.setup()

    def train(group: int, loss: float) -> None:
        fanout.start(f"t{group}", plan.groups[group])
        metrics = {"epoch": 1, "loss": loss, "val_loss": loss, "val_accuracy": 0.5}
        fanout.report(f"t{group}", encode(EPOCH, [metrics]))
        fanout.report(f"t{group}", encode(FINAL, [metrics]))
        fanout.end(f"t{group}", None)

    def counts(line: str) -> str:
        return line.split("  ")[2]  # after the clock and the configurations ended

    train(0, 0.3)
    assert counts(live.status_line().plain) == "1 done, 0 running, 3 pending, 0 failed"
    train(1, math.nan)
    train(2, math.inf)
    fanout.start("t3", plan.groups[3])
    expected = "1 done, 2 diverged, 1 running, 0 pending, 0 failed"
    assert counts(live.status_line().plain) == expected
    assert counts(live.status_line(ended=True).plain) == expected
    drawn = Console(file=io.StringIO(), width=200)
    drawn.print(live.render())
    live_counts = drawn.file.getvalue().splitlines()[0]  # type: ignore[attr-defined]
    assert "1 done  2 diverged  1 running  0 pending" in live_counts, live_counts
