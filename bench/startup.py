"""The fixed start of a run, phase by phase: `sweeps run quickstart` from a fresh process
against raw `ray.init` + Tune training the same trainer on the same data.

Run: python bench/startup.py [--repeats 3]

Each repetition starts ours and the baseline in turn, each a fresh process with its output
piped, and times every line as it arrives. Ours is timed by the lines `sweeps run` prints
piped; the baseline prints the same lines at the same points:

    starting Ray ...                       imports, the data loaded, the configs checked
    putting digits into Ray's object store  Ray started (ours: the run directory made)
    starting N workers                     the dataset put into the object store
    ... first epoch ...                    the workers started, the first epoch reported
    8/8 ended ...                          the rest of the training (ours: the rows written)
    (the process exits)                    Ray shut down, the summary, the interpreter's exit

The baseline is a plain Tune script as a user writes one: `tune.with_parameters` for the
dataset, `tune.report` each epoch, one CPU a trial, Tune's own loggers and output files.
Printed as a Markdown table of medians (min-max), seconds from the process's start.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The boundaries between phases: the first line matching each ends the phase named.
PHASES = [
    ("imports, data loaded, checks", re.compile(r"^starting Ray ")),
    ("Ray started", re.compile(r"^putting digits into Ray's object store")),
    ("dataset into the object store", re.compile(r"^starting \d+ workers?")),
    ("workers started, first epoch reported", re.compile(r"^\S+  first epoch  ")),
    ("the rest of the training", re.compile(r"^\S+  \d+/\d+ ended  ")),
]
EXIT = "Ray shut down, exit"

# Raw Ray Tune, the quickstart's grid and base config, the built-in trainer.
BASELINE = r"""
import sys, time

def say(line):
    print(line, flush=True)

import ray
from ray import tune
from sweeps.plan.spec import load_spec
from trainers import load_dataset, train

spec = load_spec("quickstart")
base = {"dataset": spec.dataset, **spec.base}
dataset = load_dataset(spec.dataset)
say("starting Ray (local)")
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
say("putting digits into Ray's object store")

def trainable(config, dataset):
    train({**base, **config}, dataset, report=tune.report)

trainable = tune.with_parameters(trainable, dataset=dataset)
start = time.monotonic()

class FirstEpoch(tune.Callback):
    said = False

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if not self.said:
            self.said = True
            say(f"00:00:00  first epoch  {trial.trial_id}")

grid = {key: tune.grid_search(values) for key, values in spec.grid.items()}
tuner = tune.Tuner(
    tune.with_resources(trainable, {"cpu": 1}),
    param_space=grid,
    run_config=tune.RunConfig(storage_path=sys.argv[1], verbose=0, callbacks=[FirstEpoch()]),
)
say("starting 2 workers")
results = tuner.fit()
say(f"00:00:00  {len(results)}/{len(results)} ended  {results.num_errors} failed")
ray.shutdown()
"""


def timed_lines(command: list[str]) -> tuple[int, list[tuple[float, str]]]:
    """Run `command`, stdout and stderr together: its exit code, and each line with the
    seconds from its start to the line's arrival; the last entry is its exit."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)  # fmt: skip
    assert process.stdout is not None
    lines = [(time.monotonic() - started, line.rstrip("\n")) for line in process.stdout]
    code = process.wait()
    return code, [*lines, (time.monotonic() - started, "")]


def phases(lines: list[tuple[float, str]]) -> dict[str, float]:
    """Each phase's seconds: from the previous boundary's line to its own."""
    found, last = {}, 0.0
    for name, pattern in PHASES:
        when = next((at for at, line in lines if pattern.search(line)), None)
        if when is None:
            raise SystemExit(f"no line for {name!r}:\n" + "\n".join(line for _, line in lines))
        found[name], last = when - last, when
    found[EXIT] = lines[-1][0] - last
    found["total"] = lines[-1][0]
    return found


def run_ours(results: str) -> dict[str, float]:
    command = [sys.executable, "-m", "sweeps", "run", "quickstart", "--results", results]
    code, lines = timed_lines(command)
    assert code == 0, "\n".join(line for _, line in lines)
    return phases(lines)


def run_baseline(results: str) -> dict[str, float]:
    code, lines = timed_lines([sys.executable, "-c", BASELINE, results])
    assert code == 0, "\n".join(line for _, line in lines)
    return phases(lines)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ours: list[dict[str, float]] = []
    baseline: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as results:
        for repeat in range(args.repeats):
            ours.append(run_ours(str(Path(results) / f"ours-{repeat}")))
            baseline.append(run_baseline(str(Path(results) / f"baseline-{repeat}")))
            print(f"repetition {repeat + 1}: ours {ours[-1]['total']:.1f} s,"
                  f" baseline {baseline[-1]['total']:.1f} s", file=sys.stderr)  # fmt: skip
    print(f"`sweeps run quickstart` vs raw Ray Tune, {args.repeats} alternated fresh processes"
          " each; seconds, median (min-max)\n")  # fmt: skip
    print("| phase | ours | raw Ray Tune | ours / raw |")
    print("|---|---:|---:|---:|")
    for name in [*(name for name, _ in PHASES), EXIT, "total"]:
        mine, theirs = [run[name] for run in ours], [run[name] for run in baseline]
        ratio = statistics.median(mine) / statistics.median(theirs)
        shown = f"**{name}**" if name == "total" else name
        print(f"| {shown} | {spread(mine)} | {spread(theirs)} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
