"""TPE against random search: how many configurations each needs to come within 0.005 of
the best val_accuracy a dense grid finds.

Run: python bench/search.py [--budget 40] [--seeds 3] [--epochs 10]

The space is the quickstart's (Model A, SGD, on scikit-learn's digits: no download),
widened to the learning rate as well: lr log-uniform in [1e-4, 10] x batch_size in
{8, ..., 1024}, scored on the 300 test digits (steps of 1/300 = 0.0033). The known
optimum is the best of a grid of 16 log-spaced learning rates x the 8 batch sizes. Then
`search: random` and `search: tpe` each run `--budget` configurations per seed, one at a
time (`max_concurrent: 1`: TPE hears every result before it proposes again). One Ray for
all of it. Printed as Markdown tables: each search's configurations to reach the bar, by
seed, and the medians' ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

import numpy as np
import ray

import sweeps

SPACE: dict[str, Any] = {
    "name": "search-bench",
    "dataset": "digits",
    "base": {"model": "mlp", "hidden": [64], "activation": "sigmoid", "optimizer": "sgd",
             "loss": "categorical_crossentropy", "validation_split": 0.0},
    "callbacks": [],
    "resources": {"cpus": 1, "gpus": 0},
}  # fmt: skip
BATCH_SIZES = [8, 16, 32, 64, 128, 256, 512, 1024]
BAR = 0.005


def grid_spec(epochs: int) -> dict[str, Any]:
    rates = [float(rate) for rate in np.logspace(-4, 1, 16)]
    return {**SPACE, "base": {**SPACE["base"], "epochs": epochs},
            "grid": {"lr": rates, "batch_size": BATCH_SIZES}}  # fmt: skip


def search_spec(search: str, seed: int, budget: int, epochs: int) -> dict[str, Any]:
    return {**SPACE, "name": f"search-{search}", "search": search, "num_samples": budget,
            "max_concurrent": 1, "base": {**SPACE["base"], "epochs": epochs, "seed": seed},
            "grid": {"batch_size": BATCH_SIZES},
            "sample": {"lr": {"loguniform": [1e-4, 10.0]}}}  # fmt: skip


def needed(scores: list[float], best: float) -> int | None:
    """How many configurations, in the order they were proposed, until one came within
    BAR of `best`; None if none did."""
    for count, score in enumerate(scores, 1):
        if score >= best - BAR:
            return count
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    results = tempfile.mkdtemp(prefix="search-bench-")
    started = time.perf_counter()
    grid = sweeps.run(grid_spec(args.epochs), results=results).trials
    best = float(grid["val_accuracy"].max())
    top = grid.loc[grid["val_accuracy"].idxmax()]
    wall = time.perf_counter() - started
    print(f"grid: {len(grid)} configurations, best val_accuracy {best:.4f} at lr"
          f" {top['lr']:.4g}, batch_size {top['batch_size']} ({wall:.0f} s)")  # fmt: skip
    print(f"bar: val_accuracy >= {best - BAR:.4f}\n")
    counts: dict[str, list[int | None]] = {"random": [], "tpe": []}
    rows = []
    for seed in range(args.seeds):
        for search in counts:
            started = time.perf_counter()
            spec = search_spec(search, seed, args.budget, args.epochs)
            trials = sweeps.run(spec, results=results).trials.sort_values("config_index")
            scores = [float(score) for score in trials["val_accuracy"]]
            counts[search].append(needed(scores, best))
            rows.append((search, seed, counts[search][-1], max(scores),
                         time.perf_counter() - started))  # fmt: skip
    print("| search | seed | configurations to the bar | best of the budget | wall s |")
    print("|---|---|---|---|---|")
    for search, seed, count, found, wall in rows:
        shown = count if count is not None else f"not in {args.budget}"
        print(f"| {search} | {seed} | {shown} | {found:.4f} | {wall:.0f} |")
    # A seed that never reached the bar counts as the budget + 1: a lower bound.
    medians = {
        search: statistics.median(c if c is not None else args.budget + 1 for c in found)
        for search, found in counts.items()
    }
    print(
        f"\nmedian configurations to the bar: random {medians['random']:g},"
        f" tpe {medians['tpe']:g}; random / tpe = {medians['random'] / medians['tpe']:.2f}"
    )
    for search in counts:
        reached = sum(count is not None for count in counts[search])
        best_found = statistics.median(found for name, _, _, found, _ in rows if name == search)
        print(f"{search}: reached the bar in {reached} of {args.seeds} seeds; median best of"
              f" the budget {best_found:.4f}")  # fmt: skip
    ray.shutdown()


if __name__ == "__main__":
    main()
