"""Fused trials: K model-A configurations trained as one bundle vs one after another.

Run: python bench/fused.py [--device cpu|cuda] [--batch-sizes 8 64 512]
                           [--bundle-sizes 8] [--grid activation|lr|repeats]
                           [--dataset mnist|digits] [--samples N] [--repeats 5]

The grid is report A's activation sweep (A4): model A (784-64-10; 64-64-10 on the 8x8
digits, where a step is launch-bound), SGD lr 0.1, one configuration per activation (the
first K of sigmoid, relu, tanh, leaky_relu, selu, elu, exponential, linear, cycling);
`--grid lr`: K sigmoid models with learning rates 0.01, 0.02, ... (the fused step's
kernel count does not grow with K); `--grid repeats`: K sigmoid models with seeds 0..K-1,
as `--repeats K` makes them, each member reading its own batch order. Both sides run in
this one process (one CPU thread on the CPU), over the same images, interleaved repeat by
repeat:

- separate: K runs of our own trainer (`trainers.bundle.Bundle` of one configuration),
  one after another, as K trials would; on CUDA eager (`graphs: off`), the baseline the
  targets name;
- fused: one `Bundle` of the K configurations; on CUDA both eager and with CUDA graphs.

Throughput is samples per second summed over the K models: K * images / wall time of an
epoch (median of the repeats), printed as a Markdown table with the ratio to separate.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from step_time import load_images, model_a, ours

from trainers.data import Split, load_dataset, make_splits
from trainers.device import device_name

ACTIVATIONS = ["sigmoid", "relu", "tanh", "leaky_relu", "selu", "elu", "exponential", "linear"]


def grid_configs(count: int, grid: str, batch_size: int, device: torch.device) -> list[dict]:
    def member(i: int) -> dict:
        if grid == "activation":
            return {"activation": ACTIVATIONS[i % len(ACTIVATIONS)]}
        if grid == "lr":
            return {"lr": 0.01 * (i + 1)}
        return {"seed": i}

    return [model_a(batch_size, device, **member(i)) for i in range(count)]


def sides(configs: list[dict], split: Split) -> dict[str, Callable[[], None]]:
    on_cuda = split.images.device.type == "cuda"
    eager = [{**config, "graphs": "off"} for config in configs]
    separate = [ours([config], split) for config in eager]
    found = {"separate": lambda: [epoch() for epoch in separate]}
    if on_cuda:
        found["fused, eager"] = ours(eager, split)
        found["fused, CUDA graphs"] = ours(configs, split)
    else:
        found["fused"] = ours(configs, split)
    return found  # type: ignore[return-value]


def measure(configs: list[dict], split: Split, repeats: int) -> dict[str, float]:
    """Median samples per second, summed over the models, of each side."""
    epochs = sides(configs, split)
    for epoch in epochs.values():  # warm-up: first-call allocations, lazy init, capture
        epoch()
    seconds: dict[str, list[float]] = {name: [] for name in epochs}
    for _ in range(repeats):
        for name, epoch in epochs.items():
            started = time.perf_counter()
            epoch()
            seconds[name].append(time.perf_counter() - started)
    images = len(configs) * len(split)
    return {name: images / statistics.median(values) for name, values in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 64, 512])
    parser.add_argument("--bundle-sizes", type=int, nargs="+", default=None,
                        help="K; default 8 on the CPU, 1 8 32 64 on CUDA")  # fmt: skip
    parser.add_argument("--grid", default="activation", choices=["activation", "lr", "repeats"])
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "digits"])
    parser.add_argument(
        "--samples",
        type=int,
        default=None,
        help="MNIST images per epoch (default 16384 on the CPU, 60000 on CUDA)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    torch.set_num_threads(1)
    device = torch.device(args.device)
    on_cuda = device.type == "cuda"
    bundle_sizes = args.bundle_sizes or ([1, 8, 32, 64] if on_cuda else [8])
    if args.dataset == "digits":
        split, source = make_splits(load_dataset("digits"), 0.0, 0, device).train, "digits"
    else:
        split, source = load_images(args.samples or (60_000 if on_cuda else 16_384), device)
    print(
        f"torch {torch.__version__}, {device_name(device)}"
        f"{'' if on_cuda else ', 1 CPU thread'}, {len(split)} images per epoch"
        f" of {source}, {args.grid} grid, median of {args.repeats} repeats\n"
    )
    print("| batch | models | side | samples/s | vs separate |")
    print("|---:|---:|---|---:|---:|")
    for batch_size in args.batch_sizes:
        for count in bundle_sizes:
            configs = grid_configs(count, args.grid, batch_size, device)
            rates = measure(configs, split, args.repeats)
            for name, rate in rates.items():
                print(f"| {batch_size} | {count} | {name} | {rate:,.0f}"
                      f" | {rate / rates['separate']:.2f}x |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
