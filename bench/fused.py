"""Fused trials: K model-A configurations trained as one bundle vs one after another.

Run: python bench/fused.py [--batch-sizes 8 64 512] [--bundle-sizes 8] [--device cpu]
                           [--dataset mnist|digits] [--grid activation|lr]

The grid is report A's activation sweep (A4): model A (784-64-10; 64-64-10 on the 8x8
digits, where a step is launch-bound), SGD lr 0.1, one configuration per activation (the
first K of sigmoid, relu, tanh, leaky_relu, selu, elu, exponential, linear); with
`--grid lr`, K sigmoid models with learning rates 0.01, 0.02, ... (report A's A2-A3
shape), where the fused step's kernel count does not grow with K. Both sides run in this
one process on one CPU thread (or the GPU), over the same images and permutation,
interleaved repeat by repeat:

- separate: K runs of our own trainer's epoch loop (`trainers.train.train_epoch`), one
  model after another, as K trials would;
- fused: one epoch of `trainers.fused` over the K-model stack.

Throughput is samples per second summed over the K models: K * images / wall time of an
epoch (median of the repeats), printed as a Markdown table with the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from step_time import load_images

from trainers.data import Split, load_dataset, make_splits
from trainers.fused import FusedMLP, train_fused_epoch
from trainers.models import MLP
from trainers.optim import SGD
from trainers.train import EpochOrder, device_name, train_epoch

ACTIVATIONS = ["sigmoid", "relu", "tanh", "leaky_relu", "selu", "elu", "exponential", "linear"]
LR = 0.1


def learning_rates(count: int, grid: str) -> list[float]:
    return [LR] * count if grid == "activation" else [0.01 * (i + 1) for i in range(count)]


LOSS = "categorical_crossentropy"


def models(count: int, split: Split, grid: str) -> list[MLP]:
    activations = [ACTIVATIONS[i % len(ACTIVATIONS)] if grid == "activation" else "sigmoid"
                   for i in range(count)]  # fmt: skip
    in_features, device = split.images[0].numel(), split.images.device
    return [
        MLP(in_features, (64,), activation, "glorot_uniform",
            torch.Generator().manual_seed(0), device)
        for activation in activations
    ]  # fmt: skip


def separate(
    split: Split, batch_size: int, count: int, grid: str
) -> Callable[[torch.Tensor], None]:
    members = models(count, split, grid)
    rates = learning_rates(count, grid)
    optimizers = [SGD(model.params, rate) for model, rate in zip(members, rates, strict=True)]
    epoch_order = EpochOrder(split)

    def epoch(order: torch.Tensor) -> None:
        for model, optimizer in zip(members, optimizers, strict=True):
            # Each trial gathers its own epoch, as it would in its own process.
            images, labels = epoch_order(order)
            loss, _ = train_epoch(model, optimizer.step, images, labels, batch_size, LOSS)
            loss.item()

    return epoch


def fused(split: Split, batch_size: int, count: int, grid: str) -> Callable[[torch.Tensor], None]:
    model = FusedMLP(models(count, split, grid), [LOSS] * count)
    optimizer = SGD(model.params, model.learning_rates(learning_rates(count, grid)))
    epoch_order = EpochOrder(split)

    def epoch(order: torch.Tensor) -> None:
        images, labels = epoch_order(order)
        logits, _ = train_fused_epoch(model, optimizer.step, images, labels, batch_size)
        logits[0, 0, 0].item()  # waits for the device

    return epoch


def measure(split: Split, batch_size: int, count: int, grid: str, repeats: int) -> dict[str, float]:
    """Median samples per second, summed over the models, of each side."""
    epochs = {"separate": separate(split, batch_size, count, grid),
              "fused": fused(split, batch_size, count, grid)}  # fmt: skip
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(0))
    for epoch in epochs.values():  # warm-up: first-call allocations, lazy init
        epoch(order)
    seconds: dict[str, list[float]] = {name: [] for name in epochs}
    for _ in range(repeats):
        for name, epoch in epochs.items():
            started = time.perf_counter()
            epoch(order)
            seconds[name].append(time.perf_counter() - started)
    return {name: count * len(split) / statistics.median(s) for name, s in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 64, 512])
    parser.add_argument("--bundle-sizes", type=int, nargs="+", default=[8])
    parser.add_argument(
        "--samples", type=int, default=16_384, help="images per timed epoch (at most 60000)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "digits"])
    parser.add_argument("--grid", default="activation", choices=["activation", "lr"])
    args = parser.parse_args()

    torch.set_num_threads(1)
    device = torch.device(args.device)
    if args.dataset == "digits":
        split, source = make_splits(load_dataset("digits"), 0.0, 0, device).train, "digits"
    else:
        split, source = load_images(args.samples)
    split = Split(split.images.to(device), split.labels.to(device))
    print(
        f"torch {torch.__version__}, {device_name(device)}"
        f"{', 1 CPU thread' if device.type == 'cpu' else ''}, {len(split)} images per epoch"
        f" of {source}, {args.grid} grid, median of {args.repeats} repeats\n"
    )
    print("| batch | models | separate samples/s | fused samples/s | fused vs separate |")
    print("|---:|---:|---:|---:|---:|")
    for batch_size in args.batch_sizes:
        for count in args.bundle_sizes:
            rate = measure(split, batch_size, count, args.grid, args.repeats)
            print(
                f"| {batch_size} | {count} | {rate['separate']:,.0f} | {rate['fused']:,.0f}"
                f" | {rate['fused'] / rate['separate']:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
