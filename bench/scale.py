"""Sweeps of many configurations: sweeps against raw Ray Tune, and the plan and the record
of a run alone, per configuration.

Run: python bench/scale.py [--sizes 50,1000,10000] [--record-sizes 1000,10000]

Each configuration is a trivial trainer of the user's (`dataset: null`, one epoch: two
reports), so what is timed is what a sweep costs beside training.

1. Plan and record, no Ray, for each of `--record-sizes`: the configurations planned and
   checked (`configurations`, `check_configs`, `plan_run`; the built-in trainer, so the
   fused groups are decided too), then each configuration's start, epoch and end through
   `Fanout` into the Parquet writer, the progress lines and the metric check, then the
   run's end: compaction and the trials read back. Per configuration it must stay flat.
2. For each of `--sizes`, side by side, each in a fresh process with an embedded Ray of 2
   CPUs (so 2 trials at once on both sides): `sweeps.runs.runner.run_sweep` with its
   defaults (the Parquet rows, TensorBoard, the logs, compaction), against a plain Tune
   function trainable doing the same work (`reuse_actors=True`, Tune's defaults
   otherwise: results kept by Tune only). Wall: from the call (Ray's start included) to
   its return; after start: from the first trial's start (Tune's `on_trial_start` on the
   driver, both sides) to the return, per configuration. Printed as Markdown tables.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = str(Path(__file__).resolve().parent)
CPUS = 2


def trivial(config: dict[str, Any], dataset: Any, report: Any) -> dict[str, Any]:
    """The user's trainer of the sweeps side: one epoch, nothing trained."""
    metrics = {"epoch": 1, "loss": 0.5, "accuracy": 0.5, "val_loss": 0.5,
               "val_accuracy": config["x"] / 1e6, "epoch_time_s": 0.0}  # fmt: skip
    report(metrics)
    return metrics


def trivial_tune(config: dict[str, Any]) -> None:
    """The raw Tune side's trainable: the same reports, an epoch's and a final one."""
    from ray import tune

    metrics = {"epoch": 1, "loss": 0.5, "accuracy": 0.5, "val_loss": 0.5,
               "val_accuracy": config["x"] / 1e6, "epoch_time_s": 0.0}  # fmt: skip
    tune.report(metrics)
    tune.report(metrics)


def sweeps_side(count: int, results: str) -> dict[str, float]:
    import pandas as pd

    from sweeps.plan.spec import parse_spec
    from sweeps.record.results import read_trials
    from sweeps.runs.runner import run_sweep

    spec = parse_spec({"name": "scale", "trainer": "scale:trivial", "dataset": None,
                       "grid": {"x": list(range(count))}, "resources": {"cpus": 1, "gpus": 0}},
                      "bench")  # fmt: skip
    started = time.time()
    outcome = run_sweep(spec, results=results, say=lambda message: None, import_path=[HERE])
    ended = time.time()
    trials = read_trials(outcome.run_dir)
    first = pd.to_datetime(trials["started_at"]).min().timestamp()
    return {"wall": ended - started, "after_start": ended - first, "rows": len(trials)}


def tune_side(count: int, results: str) -> dict[str, float]:
    import ray
    from ray import tune

    first: list[float] = []

    class FirstStart(tune.Callback):
        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if not first:
                first.append(time.time())

    started = time.time()
    ray.init(num_cpus=CPUS, include_dashboard=False)
    tuner = tune.Tuner(
        trivial_tune,
        param_space={"x": tune.grid_search(list(range(count)))},
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(storage_path=results, callbacks=[FirstStart()]),
    )
    grid = tuner.fit()
    ended = time.time()
    rows = sum(1 for result in grid if result.metrics.get("val_accuracy") is not None)
    ray.shutdown()
    return {"wall": ended - started, "after_start": ended - first[0], "rows": rows}


def one_side(side: str, count: int) -> dict[str, float]:
    """One side in a fresh process: its own Ray, nothing left of the other's."""
    command = [sys.executable, __file__, "--side", side, "--count", str(count)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {side} side of {count} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def plan_and_record(count: int) -> dict[str, tuple[float, float]]:
    """Seconds (wall, and this process's CPU) to plan `count` configurations, to record
    them, and to end the run; and how many fused groups the plan made."""
    from analysis.place import Place
    from sweeps.plan.groups import configurations, plan_run
    from sweeps.plan.spec import parse_spec
    from sweeps.record.events import MetricCheck
    from sweeps.record.fanout import Fanout
    from sweeps.record.progress import LiveProgress
    from sweeps.record.protocol import EPOCH, FINAL, encode
    from sweeps.record.results import RunWriter
    from sweeps.runs.runner import check_configs, finish_run

    spec = parse_spec({"name": "scale", "dataset": "digits", "grid": {
        "lr": [0.01 + i / count for i in range(count)]}, "base": {"epochs": 1, "hidden": [16]},
        "resources": {"cpus": 1, "gpus": 0}}, "bench")  # fmt: skip
    clock = Clock()
    configs = configurations(spec)
    check_configs(spec, configs)
    plan = plan_run(spec, configs, CPUS)
    planned = clock.lap()
    groups = len(plan.groups)
    # Recorded a configuration a Tune trial, as a user's trainer is: a file each, the most.
    plan = plan_run(spec.model_copy(update={"fuse": "off"}), configs, CPUS)
    metrics = {"epoch": 1, "loss": 0.5, "accuracy": 0.5, "val_loss": 0.5,
               "val_accuracy": 0.5, "epoch_time_s": 0.0}  # fmt: skip
    with tempfile.TemporaryDirectory() as temp, contextlib.redirect_stderr(io.StringIO()):
        run_dir = Place.of(temp)
        writer = RunWriter(run_dir, "bench", plan.configs, 0.0)
        progress = LiveProgress(spec.swept, spec.metric, spec.mode, plan)
        fanout = Fanout(plan.configs, plan.groups, writer, [progress, MetricCheck(spec.metric)])
        clock.lap()
        for number, group in enumerate(plan.groups):
            key = f"{number:05d}"
            fanout.start(key, group)
            fanout.report(key, encode(EPOCH, [metrics] * len(group)))
            fanout.report(key, encode(FINAL, [metrics] * len(group)))
            fanout.end(key, None)
            fanout.on_step_end(0, [])
        recorded = clock.lap()
        outcome = finish_run(plan.spec, run_dir, {"run_id": "bench"}, count)
        ended = clock.lap()
    assert outcome.finished == count, outcome.counts
    return {"plan": planned, "record": recorded, "end": ended, "groups": (groups, groups)}


class Clock:
    """Wall and CPU seconds since the last lap."""

    def __init__(self) -> None:
        self.last = (time.perf_counter(), time.process_time())

    def lap(self) -> tuple[float, float]:
        now = (time.perf_counter(), time.process_time())
        wall, cpu = now[0] - self.last[0], now[1] - self.last[1]
        self.last = now
        return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,1000,10000")
    parser.add_argument("--record-sizes", default="1000,10000")
    parser.add_argument("--side", choices=["sweeps", "tune"], help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        with tempfile.TemporaryDirectory() as results:
            side = sweeps_side if args.side == "sweeps" else tune_side
            print(json.dumps(side(args.count, results)))
        return

    record_sizes = [int(n) for n in args.record_sizes.split(",") if n]
    if record_sizes:
        plan_and_record(10)  # the imports (torch, for the built-in trainer's checks) first
        print("plan and record, no Ray (built-in trainer's plan, one epoch a configuration);"
              " us each: wall / CPU of this process\n")  # fmt: skip
        print("| configurations | fused groups | plan, us each | record, us each |"
              " end (compact, read), us each |")  # fmt: skip
        print("|---:|---:|---:|---:|---:|")
        for count in record_sizes:
            t = plan_and_record(count)
            each = {key: " / ".join(f"{s / count * 1e6:,.0f}" for s in t[key])
                    for key in ("plan", "record", "end")}  # fmt: skip
            print(f"| {count:,} | {t['groups'][0]:,} | {each['plan']} | {each['record']} |"
                  f" {each['end']} |", flush=True)  # fmt: skip
    sizes = [int(n) for n in args.sizes.split(",") if n]
    if sizes:
        print(f"\nsweeps against raw Ray Tune (reuse_actors=True), {CPUS} trials at once\n")
        print("| configurations | sweeps wall s | sweeps per configuration after start, ms |"
              " raw Tune wall s | raw Tune per configuration after start, ms |"
              " ratio (wall) |")  # fmt: skip
        print("|---:|---:|---:|---:|---:|---:|")
        for count in sizes:
            ours, theirs = one_side("sweeps", count), one_side("tune", count)
            assert ours["rows"] == theirs["rows"] == count, (ours, theirs)
            print(f"| {count:,} | {ours['wall']:.1f} | {ours['after_start'] / count * 1e3:.0f} |"
                  f" {theirs['wall']:.1f} | {theirs['after_start'] / count * 1e3:.0f} |"
                  f" {ours['wall'] / theirs['wall']:.2f}x |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
