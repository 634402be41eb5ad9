"""What our Ray Tune wrapper costs: one trainer run directly vs as a 1-trial sweep, and the
wall time of the 8-trial quickstart.

Run: python bench/tune_overhead.py [--epochs 2]

Model A on real MNIST (batch 64, SGD 0.1) when $SWEEPS_DATA_DIR has it, else on digits.
"Direct" is `trainers.train` in this process with the dataset already loaded. The sweep
figures are `sweeps.runs.runner.run_sweep` wall times from call to return: loading the data,
checking the configs, (starting Ray), Tune, the trial's worker process, the object store,
the Parquet files. Printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import ray

from sweeps.plan.spec import load_spec, parse_spec
from sweeps.record.results import read_trials
from sweeps.runs.runner import prepare, run_sweep
from trainers import DataNotFoundError, train


def one_trial_spec(dataset: str, epochs: int):
    return parse_spec(
        {
            "name": "overhead",
            "dataset": dataset,
            "base": {"hidden": [64], "activation": "sigmoid", "optimizer": "sgd", "lr": 0.1,
                     "batch_size": 64, "epochs": epochs, "threads": 1},
            "resources": {"cpus": 1, "gpus": 0},
        },
        "bench",
    )  # fmt: skip


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    try:
        spec = one_trial_spec("mnist", args.epochs)
        _, dataset = prepare(spec, None)
    except DataNotFoundError:
        spec = one_trial_spec("digits", args.epochs)
        _, dataset = prepare(spec, None)
    config = {"dataset": spec.dataset, **spec.base}
    quiet = lambda message: None  # noqa: E731

    with tempfile.TemporaryDirectory() as results:
        direct = timed(lambda: train(config, dataset))
        cold = timed(lambda: run_sweep(spec, results=results, say=quiet))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        warm = timed(lambda: run_sweep(spec, results=results, say=quiet))
        ray.shutdown()
        quickstart = load_spec("quickstart")
        outcome = None

        def run_quickstart() -> None:
            nonlocal outcome
            outcome = run_sweep(quickstart, results=results, say=quiet)

        quick = timed(run_quickstart)
        training = read_trials(outcome.run_dir)["train_time_s"].sum()

    print(f"model A, {spec.dataset}, batch 64, {args.epochs} epochs, 1 thread\n")
    print("| run | wall s | vs direct |")
    print("|---|---:|---:|")
    print(f"| trainer called directly | {direct:.2f} | 1.00x |")
    print(f"| 1-trial sweep, Ray already running | {warm:.2f} | {warm / direct:.2f}x |")
    print(f"| 1-trial sweep, embedded Ray started | {cold:.2f} | {cold / direct:.2f}x |")
    print(
        f"\nquickstart, 8 trials on digits, embedded Ray on this machine: {quick:.1f} s wall,"
        f" {training:.1f} s of it training (sum over trials); {outcome.finished} finished"
    )


if __name__ == "__main__":
    main()
