"""What a new results column costs: configurations that each report a custom metric of
their own name (`acc_<activation>`), written one after another as trials end.

Run: python bench/results_writer.py [--configs 200] [--results DIR]

Each configuration is a one-epoch trial fed through `sweeps.record.fanout.Fanout` to
`sweeps.record.results.RunWriter` (no Ray, no training): what is timed is the record of a
run alone, on a local disk. Printed as a
Markdown table: the whole run, and the last 10 configurations (the cost of a new column
when the folders already hold many files). Then the two folders are read back with
`pd.read_parquet`, which must see every column.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from analysis.place import Place
from sweeps.record.fanout import Fanout
from sweeps.record.protocol import EPOCH, FINAL, encode
from sweeps.record.results import RunWriter


def one_trial(fanout: Fanout, index: int) -> None:
    metrics = {"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.5,
               "val_accuracy": 0.8, "epoch_time_s": 0.1, f"acc_{index}": 0.9}  # fmt: skip
    key = f"trial{index:05d}"
    fanout.start(key, [index])
    fanout.report(key, encode(EPOCH, [metrics]))
    fanout.report(key, encode(FINAL, [{**metrics, "test_accuracy": 0.9}]))
    fanout.end(key, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=200)
    parser.add_argument("--results", type=Path, help="a folder to write into (default: temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        run_dir = args.results or Path(temp)
        configs = [{"activation": f"act{i}", "lr": 0.1} for i in range(args.configs)]
        writer = RunWriter(Place.of(run_dir), "bench", configs, 0.0)
        fanout = Fanout(configs, [], writer, [])
        times = []
        for index in range(args.configs):
            started = time.perf_counter()
            one_trial(fanout, index)
            times.append(time.perf_counter() - started)
        trials, epochs = pd.read_parquet(run_dir / "trials"), pd.read_parquet(run_dir / "epochs")
        metric_columns = {f"acc_{i}" for i in range(args.configs)}
        seen = metric_columns <= set(trials.columns) and metric_columns <= set(epochs.columns)
        print("| configurations | total s | last 10, s each | pd.read_parquet sees every column |")
        print("|---|---|---|---|")
        print(f"| {args.configs} | {sum(times):.2f} | {sum(times[-10:]) / 10:.3f} | {seen} |")


if __name__ == "__main__":
    main()
