"""Packs: bundles that cannot fuse sharing one process, against one trial alone, and the
A1 grid end to end against the Ray-example peer.

Run: python bench/packs.py [--device cpu|cuda] [--epochs 2] [--repeats 2] [--part both]

- step (in this process): 4 non-fusable model-A configurations (batch sizes 32, 64, 128,
  256) on MNIST: each trained alone one after another, and all four as one pack
  (`trainers.pack.train_pack`); throughput in samples per second summed over them, and
  the pack's ratio to one configuration alone (the G4 target on a GPU: >= 3x).
- sweep (each side a fresh process, as a user types it, Ray's start included):
  `sweeps run report-a-batch-size --epochs E` as it plans by default (on a GPU: packed),
  on CUDA also with `--pack off --gpus-per-trial 0.25` (today's fractional trials), and
  the peer: the same grid written as Ray's mnist_pytorch example (a Tune function
  trainable, DataLoader(shuffle=True), nn.Module, autograd, torch.optim.SGD, one report
  an epoch) at 1 CPU (0.25 GPU on CUDA) per trial. Wall times, alternated repeat by
  repeat, medians and ratios printed as Markdown.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import torch

BATCH_SIZES = [512, 256, 128, 64, 32, 16, 8]  # report A's A1 grid
PACK_BATCH_SIZES = [32, 64, 128, 256]


def step_part(device: torch.device, repeats: int) -> None:
    from trainers import load_dataset
    from trainers.device import device_name

    mnist = load_dataset("mnist", download=False)
    base = {"hidden": [64], "lr": 0.1, "epochs": 1, "device": device.type, "threads": 1}
    configs = [{**base, "batch_size": batch_size} for batch_size in PACK_BATCH_SIZES]
    images = len(mnist.train_labels) * len(configs)

    seconds = pack_vs_alone(configs, mnist, repeats)
    rates = {name: images / value for name, value in seconds.items()}
    print(f"\n4 non-fusable configurations (batch {', '.join(map(str, PACK_BATCH_SIZES))}), one"
          f" epoch of MNIST each (evaluation included), {device_name(device)}, median of"
          f" {repeats}\n")  # fmt: skip
    print("| side | samples/s | vs alone |")
    print("|---|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} | {rate / rates['alone, one after another']:.2f}x |")


def pack_vs_alone(configs: list[dict], dataset: Any, repeats: int) -> dict[str, float]:
    """Median seconds to train each configuration alone, one after another, and all of
    them as one pack, alternated repeat by repeat after a warm-up of the pack."""
    from trainers.pack import train_pack

    seconds: dict[str, list[float]] = {"alone, one after another": [], "one pack": []}
    train_pack([[config] for config in configs], dataset)  # warm-up: capture, lazy init
    for _ in range(repeats):
        started = time.perf_counter()
        for config in configs:
            train_pack([[config]], dataset)
        seconds["alone, one after another"].append(time.perf_counter() - started)
        started = time.perf_counter()
        train_pack([[config] for config in configs], dataset)
        seconds["one pack"].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in seconds.items()}


def peer(epochs: int, gpus: float) -> None:
    """The A1 grid as Ray's mnist_pytorch example writes a sweep."""
    import ray
    import torch.nn.functional as F
    from ray import tune
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from trainers import load_dataset

    mnist = load_dataset("mnist", download=False)

    def train_mnist(config: dict, data: object) -> None:
        device = torch.device("cuda" if gpus > 0 else "cpu")
        train_x = torch.from_numpy(data.train_images).float().div(255)  # type: ignore[attr-defined]
        train_y = torch.from_numpy(data.train_labels)  # type: ignore[attr-defined]
        test_x = torch.from_numpy(data.test_images).float().div(255).to(device)  # type: ignore[attr-defined]
        test_y = torch.from_numpy(data.test_labels).to(device)  # type: ignore[attr-defined]
        loader = DataLoader(TensorDataset(train_x, train_y), batch_size=config["batch_size"],
                            shuffle=True)  # fmt: skip
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.Sigmoid(), nn.Linear(64, 10))
        model = model.to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(epochs):
            model.train()
            for images, labels in loader:
                images, labels = images.to(device), labels.to(device)
                optimizer.zero_grad()
                F.cross_entropy(model(images), labels).backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                accuracy = (model(test_x).argmax(1) == test_y).float().mean().item()
            tune.report({"val_accuracy": accuracy})

    ray.init(include_dashboard=False, log_to_driver=False)
    trainable = tune.with_resources(tune.with_parameters(train_mnist, data=mnist),
                                    {"cpu": 1, "gpu": gpus})  # fmt: skip
    with tempfile.TemporaryDirectory() as storage:
        tune.Tuner(
            trainable,
            param_space={"batch_size": tune.grid_search(BATCH_SIZES)},
            run_config=tune.RunConfig(storage_path=storage, verbose=0),
        ).fit()
    ray.shutdown()


def wall_time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def sweep_part(device: torch.device, epochs: int, repeats: int) -> None:
    on_cuda = device.type == "cuda"
    gpus = 0.25 if on_cuda else 0.0
    with tempfile.TemporaryDirectory() as results:
        ours = [sys.executable, "-m", "sweeps", "run", "report-a-batch-size", "--epochs",
                str(epochs), "--results", results]  # fmt: skip
        sides = {"sweeps run (default plan)": ours}
        if on_cuda:
            sides["sweeps run --pack off --gpus-per-trial 0.25"] = [
                *ours, "--pack", "off", "--gpus-per-trial", "0.25"]  # fmt: skip
        sides["Ray-example peer"] = [sys.executable, __file__, "--peer", "--epochs", str(epochs),
                                     "--peer-gpus", str(gpus)]  # fmt: skip
        seconds: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(repeats):
            for name, command in sides.items():
                seconds[name].append(wall_time(command))
    peer_s = statistics.median(seconds["Ray-example peer"])
    print(f"\nreport A's A1 grid (7 batch sizes), {epochs} epochs of MNIST, each side a fresh"
          f" process, median of {repeats}\n")  # fmt: skip
    print("| side | wall s (each run) | median s | peer / side |")
    print("|---|---|---:|---:|")
    for name, values in seconds.items():
        median = statistics.median(values)
        each = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {name} | {each} | {median:.1f} | {peer_s / median:.2f}x |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--part", default="both", choices=["both", "step", "sweep"])
    parser.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--peer-gpus", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        peer(args.epochs, args.peer_gpus)
        return
    torch.set_num_threads(1)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, data from {os.environ.get('SWEEPS_DATA_DIR', '~')}")
    if args.part in ("both", "step"):
        step_part(device, args.repeats)
    if args.part in ("both", "sweep"):
        sweep_part(device, args.epochs, args.repeats)


if __name__ == "__main__":
    main()
