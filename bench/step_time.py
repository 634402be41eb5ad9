"""Training-step time of model A (784-64-10, sigmoid, SGD 0.1), ours against the baselines.

Run: python bench/step_time.py [--batch-sizes 8 64 512] [--repeats 5]

All three loops train the same model on the same images, on one CPU thread, in this one
process, interleaved repeat by repeat so that machine noise hits them alike:

- ours: `trainers.train.train_epoch`, the loop `train()` runs (a per-epoch permutation
  gathered once, batches as slices, the hand-written MLP step, epoch-end metrics);
- dataloader: the loop of Ray's mnist_pytorch example (DataLoader(shuffle=True) over a
  TensorDataset, nn.Module, autograd, torch.optim.SGD);
- resident: the same autograd loop, batches sliced from a permuted resident tensor.

Per step = wall time of an epoch over `--samples` images / its number of steps; the median
of the repeats is printed as a Markdown table, with the ratios.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainers.data import DataNotFoundError, Split, load_dataset, make_splits
from trainers.models import MLP
from trainers.optim import SGD
from trainers.train import EpochOrder, device_name, train_epoch

LR = 0.1


def load_images(samples: int) -> tuple[Split, str]:
    try:
        dataset = load_dataset("mnist", download=False)
        split = make_splits(dataset, 0.0, seed=0, device=torch.device("cpu")).train
        source = "real MNIST"
    except DataNotFoundError:
        generator = torch.Generator().manual_seed(0)
        split = Split(
            torch.rand(60_000, 28, 28, generator=generator),
            torch.randint(0, 10, (60_000,), generator=generator),
        )
        source = "random images (MNIST not found: set SWEEPS_DATA_DIR)"
    return Split(split.images[:samples], split.labels[:samples]), source


def ours(split: Split, batch_size: int) -> Callable[[], None]:
    model = MLP(
        784,
        (64,),
        "sigmoid",
        "glorot_uniform",
        torch.Generator().manual_seed(0),
        torch.device("cpu"),
    )
    optimizer = SGD(model.params, LR)
    generator = torch.Generator().manual_seed(0)
    epoch_order = EpochOrder(split)

    def epoch() -> None:
        images, labels = epoch_order(torch.randperm(len(split), generator=generator))
        loss, _ = train_epoch(
            model, optimizer.step, images, labels, batch_size, "categorical_crossentropy"
        )
        loss.item()

    return epoch


def keras_like_module() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.Sigmoid(), nn.Linear(64, 10))


def dataloader(split: Split, batch_size: int) -> Callable[[], None]:
    model = keras_like_module()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loader = DataLoader(
        TensorDataset(split.images, split.labels), batch_size=batch_size, shuffle=True
    )

    def epoch() -> None:
        model.train()
        for images, labels in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()

    return epoch


def resident(split: Split, batch_size: int) -> Callable[[], None]:
    model = keras_like_module()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def epoch() -> None:
        order = torch.randperm(len(split))
        images, labels = split.images[order], split.labels[order]
        for start in range(0, len(split), batch_size):
            optimizer.zero_grad()
            batch = slice(start, start + batch_size)
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            loss.backward()
            optimizer.step()

    return epoch


LOOPS = {"ours": ours, "resident": resident, "dataloader": dataloader}


def measure(split: Split, batch_size: int, repeats: int) -> dict[str, float]:
    """Median microseconds per step of each loop."""
    steps = math.ceil(len(split) / batch_size)
    epochs = {name: make(split, batch_size) for name, make in LOOPS.items()}
    for epoch in epochs.values():  # warm-up: first-call allocations, lazy init
        epoch()
    times: dict[str, list[float]] = {name: [] for name in epochs}
    for _ in range(repeats):
        for name, epoch in epochs.items():
            started = time.perf_counter()
            epoch()
            times[name].append((time.perf_counter() - started) / steps * 1e6)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 64, 512])
    parser.add_argument(
        "--samples", type=int, default=16_384, help="images per timed epoch (at most 60000)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    torch.set_num_threads(1)
    split, source = load_images(args.samples)
    print(
        f"torch {torch.__version__}, 1 thread, {device_name(torch.device('cpu'))},"
        f" {len(split)} images per epoch of {source}, median of {args.repeats} repeats\n"
    )
    print(
        "| batch | ours us/step | resident-tensor loop | DataLoader loop (Ray example)"
        " | vs DataLoader | vs resident |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for batch_size in args.batch_sizes:
        us = measure(split, batch_size, args.repeats)
        print(
            f"| {batch_size} | {us['ours']:.0f} | {us['resident']:.0f} | {us['dataloader']:.0f}"
            f" | {us['dataloader'] / us['ours']:.2f}x | {us['resident'] / us['ours']:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
