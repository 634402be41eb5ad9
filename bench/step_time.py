"""Training-step time of model A (784-64-10, sigmoid, SGD 0.1), ours against the baselines.

Run: python bench/step_time.py [--device cpu|cuda] [--batch-sizes 8 64 512] [--repeats 5]
                               [--samples N]

Every loop trains the same model on the same images in this one process (one CPU thread
on the CPU), interleaved repeat by repeat so that machine noise hits them alike:

- ours: `trainers.bundle.Bundle`, what `train()` runs. On the CPU its batches are slices
  of the permuted epoch ("ours"); "ours, device-side batches" is the graph-safe step run
  eagerly there, to show what picking batches on the device costs on a CPU. On CUDA:
  "ours, CUDA graphs" (the default) and "ours, eager" (`graphs: off`).
- dataloader: the loop of Ray's mnist_pytorch example (DataLoader(shuffle=True) over a
  TensorDataset, batches copied to the device, nn.Module, autograd, torch.optim.SGD);
- resident: the same autograd loop, batches sliced from a permuted resident tensor;
- autograd graph (CUDA only): that autograd step captured as one CUDA graph of 100 steps,
  batches copied in before each replay (the leftover batches eager): a floor for a
  captured autograd step.

Each loop's epoch ends in a host sync. Printed as a Markdown table: seconds per epoch of
`--samples` images, microseconds per step, and the ratio to the DataLoader loop.
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

import trainers.step
from trainers.bundle import Bundle
from trainers.config import TrainConfig
from trainers.data import DataNotFoundError, Split, Splits, load_dataset, make_splits
from trainers.device import device_name

LR = 0.1
GRAPH_STEPS = 100
Epoch = Callable[[], None]


def load_images(samples: int, device: torch.device) -> tuple[Split, str]:
    try:
        dataset = load_dataset("mnist", download=False)
        split = make_splits(dataset, 0.0, seed=0, device=device).train
        source = "real MNIST"
    except DataNotFoundError:
        generator = torch.Generator().manual_seed(0)
        split = Split(
            torch.rand(60_000, 28, 28, generator=generator).to(device),
            torch.randint(0, 10, (60_000,), generator=generator).to(device),
        )
        source = "random images (MNIST not found: set SWEEPS_DATA_DIR)"
    return Split(split.images[:samples], split.labels[:samples]), source


def synced(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else lambda: None


def ours(configs: list[dict], split: Split, pick_on_device: bool | None = None) -> Epoch:
    """An epoch of a `Bundle` of `configs` (one, or several), ending in its one sync."""
    trainers.step.PICK_ON_DEVICE = pick_on_device
    try:
        cfgs = [TrainConfig.from_dict(config) for config in configs]
        bundle = Bundle(cfgs, Splits(split, split, split))  # an epoch reads the first only
    finally:
        trainers.step.PICK_ON_DEVICE = None

    def epoch() -> None:
        bundle.train_epoch()
        bundle.settle()  # the first graphed epoch's check, where there is one
        bundle.train_metrics().tolist()

    return epoch


def model_a(batch_size: int, device: torch.device, **overrides: object) -> dict:
    return {"hidden": [64], "lr": LR, "batch_size": batch_size, "device": device.type,
            "threads": 1, **overrides}  # fmt: skip


def keras_like_module(device: torch.device) -> nn.Module:
    module = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.Sigmoid(), nn.Linear(64, 10))
    return module.to(device)


def dataloader(split: Split, batch_size: int) -> Epoch:
    device = split.images.device
    model = keras_like_module(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loader = DataLoader(TensorDataset(split.images.cpu(), split.labels.cpu()),
                        batch_size=batch_size, shuffle=True)  # fmt: skip
    sync = synced(device)

    def epoch() -> None:
        model.train()
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()
        sync()

    return epoch


def resident(split: Split, batch_size: int) -> Epoch:
    model = keras_like_module(split.images.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    sync = synced(split.images.device)

    def epoch() -> None:
        order = torch.randperm(len(split), device=split.images.device)
        images, labels = split.images[order], split.labels[order]
        for start in range(0, len(split), batch_size):
            optimizer.zero_grad()
            batch = slice(start, start + batch_size)
            F.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimizer.step()
        sync()

    return epoch


def autograd_graph(split: Split, batch_size: int) -> Epoch:
    """The resident loop's step, GRAPH_STEPS of them captured as one CUDA graph."""
    device = split.images.device
    model = keras_like_module(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    chunk = min(GRAPH_STEPS, len(split) // batch_size)
    static_x = torch.zeros(chunk, batch_size, 28, 28, device=device)
    static_y = torch.zeros(chunk, batch_size, dtype=torch.long, device=device)

    def steps(count: int) -> None:
        for i in range(count):
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(static_x[i]), static_y[i]).backward()
            optimizer.step()

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        steps(3)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        steps(chunk)
    rows = chunk * batch_size

    def epoch() -> None:
        order = torch.randperm(len(split), device=device)
        images, labels = split.images[order], split.labels[order]
        replayed = (len(split) // rows) * rows
        for start in range(0, replayed, rows):
            static_x.copy_(images[start : start + rows].view_as(static_x))
            static_y.copy_(labels[start : start + rows].view_as(static_y))
            graph.replay()
        # The batches left over, eagerly: every loop here trains on the whole epoch.
        for x, y in zip(images[replayed:].split(batch_size), labels[replayed:].split(batch_size),
                        strict=True):  # fmt: skip
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        torch.cuda.synchronize()

    return epoch


def loops(split: Split, batch_size: int) -> dict[str, Epoch]:
    device = split.images.device
    if device.type == "cuda":
        found = {
            "ours, CUDA graphs": ours([model_a(batch_size, device)], split),
            "ours, eager": ours([model_a(batch_size, device, graphs="off")], split),
            "autograd graph of 100 steps": autograd_graph(split, batch_size),
        }
    else:
        found = {
            "ours": ours([model_a(batch_size, device)], split),
            "ours, device-side batches": ours([model_a(batch_size, device)], split, True),
        }
    return {**found, "resident-tensor loop": resident(split, batch_size),
            "DataLoader loop (Ray example)": dataloader(split, batch_size)}  # fmt: skip


def median_seconds(epochs: dict[str, Epoch], repeats: int) -> dict[str, float]:
    """Each epoch's median wall time, the epochs interleaved repeat by repeat."""
    for epoch in epochs.values():  # warm-up: first-call allocations, lazy init, capture
        epoch()
    seconds: dict[str, list[float]] = {name: [] for name in epochs}
    for _ in range(repeats):
        for name, epoch in epochs.items():
            started = time.perf_counter()
            epoch()
            seconds[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 64, 512])
    parser.add_argument("--samples", type=int, default=None,
                        help="images per timed epoch, at most 60000 (default: 16384 on the"
                             " CPU, 60000 on CUDA)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    torch.set_num_threads(1)
    device = torch.device(args.device)
    samples = args.samples or (60_000 if device.type == "cuda" else 16_384)
    split, source = load_images(samples, device)
    print(
        f"torch {torch.__version__}, {device_name(device)}"
        f"{', 1 CPU thread' if device.type == 'cpu' else ''}, {len(split)} images per epoch"
        f" of {source}, median of {args.repeats} repeats\n"
    )
    print("| batch | loop | epoch s | us/step | vs DataLoader loop |")
    print("|---:|---|---:|---:|---:|")
    for batch_size in args.batch_sizes:
        seconds = median_seconds(loops(split, batch_size), args.repeats)
        steps = math.ceil(len(split) / batch_size)
        baseline = seconds["DataLoader loop (Ray example)"]
        for name, value in seconds.items():
            print(f"| {batch_size} | {name} | {value:.3f} | {value / steps * 1e6:.0f}"
                  f" | {baseline / value:.2f}x |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
