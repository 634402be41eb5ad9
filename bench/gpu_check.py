"""The GPU path proved on a GPU: CUDA graphs and packs, correctness first, then figures.

Run: python bench/gpu_check.py [--device cuda|cpu] [--data-dir DIR] [--quick]

One command, nothing but torch, the project and MNIST from a folder (SWEEPS_DATA_DIR or
--data-dir; no Ray), under 8 minutes on one H100/H200. It prints one Markdown table and
exits 1 when any correctness check fails:

- capture: each kind of bundle (MLP K = 1 SGD, MLP Adam + MSE, fused K = 8, fused with 3
  seeds, cnn1) captures, passes its first-epoch self-check (no fallback line) and trains
  2 epochs to graphs: off's numbers (MLPs exactly; the CNN within CNN_TOLERANCE, since
  cuDNN may choose other algorithms);
- model A at batch 8, 64 and 600: graphs: auto equals graphs: off over 2 epochs;
- no host sync in the steps: epochs >= 2 run under torch.cuda.set_sync_debug_mode("error");
- a pack of 6 bundles equals each bundle alone, twice in one process (graphs outlive
  nothing they use);
- failure injections (capture raising, a host sync inside a real capture, warm-up raising
  after its steps, a self-check that disagrees): each falls back to exactly graphs: off,
  after one line why;
- peak memory of a pack against trainers.memory's estimate (the estimate must bound it);

then the figures: G1 batch-8 epoch time graphed vs eager vs the DataLoader loop; G2 fused
K = 8 and 32 vs separate; G4 4 bundles packed vs one after another; the torch, CUDA and
cuDNN versions and the precision in force. With --device cpu the checks that need CUDA
say "skip" and the rest run (tests/bench/test_gpu_check.py runs it with --quick).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import itertools
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/'s own modules
import fused as fused_bench
import packs as packs_bench
import step_time

import trainers.graphs as graphs
from trainers import Dataset, load_dataset
from trainers.bundle import Bundle
from trainers.config import TrainConfig
from trainers.data import DATA_DIR_ENV, make_splits
from trainers.device import device_name, pin_precision, precision
from trainers.memory import bundle_bytes, data_bytes
from trainers.pack import train_pack
from trainers.train import train_bundle

CNN_TOLERANCE = 1e-3  # metrics after 2 epochs, cuDNN eager vs captured
TIMES = ("epoch_time_s", "train_time_s")
Row = tuple[str, str, str]  # (check, PASS | FAIL | skip | figure, detail)
Work = Callable[[], None]  # what trainers.graphs warms up or captures


def bundles(device: str, epochs: int) -> dict[str, list[dict[str, Any]]]:
    base = {"dataset": "mnist", "device": device, "epochs": epochs, "batch_size": 64,
            "hidden": [64]}  # fmt: skip
    return {
        "MLP K=1 SGD": [base],
        "MLP Adam + mse": [{**base, "optimizer": "adam", "lr": 0.001, "loss": "mse"}],
        "fused K=8": [{**base, "lr": 0.01 * (i + 1)} for i in range(8)],
        "fused, 3 seeds": [{**base, "seed": seed} for seed in range(3)],
        "cnn1": [{**base, "model": "cnn1", "hidden": []}],
    }


def trained(
    configs: list[dict[str, Any]],
    dataset: Dataset,
    patch: Mapping[str, Callable[..., Any]] | None = None,
    **overrides: Any,
) -> list[dict]:
    """Every epoch's metrics and the finals, without the times. `patch` replaces functions
    of trainers.graphs while the bundle trains, each given the bundle first (the failure
    injections)."""
    bundle = Bundle.from_configs([{**c, **overrides} for c in configs], dataset)
    real = {name: getattr(graphs, name) for name in patch or {}}
    for name, injected in (patch or {}).items():
        setattr(graphs, name, functools.partial(injected, bundle))
    epochs: list[list[dict]] = []
    try:
        finals = train_bundle(bundle, epochs.append)
    finally:
        for name, function in real.items():
            setattr(graphs, name, function)
    del bundle
    gc.collect()  # its graphs gone before the next capture (trainers.pack says why)
    return [_without_times(m) for metrics in [*epochs, finals] for m in metrics]


def _without_times(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if key not in TIMES}


def difference(a: list[dict], b: list[dict]) -> float:
    """The largest difference between two runs' numbers (inf where they differ otherwise)."""
    largest = 0.0
    for first, second in zip(a, b, strict=True):
        if first.keys() != second.keys():
            return math.inf
        for key, value in first.items():
            other = second[key]
            if isinstance(value, float) and isinstance(other, float):
                if not (value == other or (math.isnan(value) and math.isnan(other))):
                    largest = max(largest, abs(value - other))
            elif value != other:
                return math.inf
    return largest


def verdict(name: str, found: float, tolerance: float, detail: str = "") -> Row:
    passed = found <= tolerance
    shown = f"max difference {found:.3g} (tolerance {tolerance:g})"
    return (name, "PASS" if passed else "FAIL", f"{shown}{'; ' + detail if detail else ''}")


class Warnings(logging.Handler):
    """The trainers' warning lines (a graphs fallback says why in one)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def __enter__(self) -> Warnings:
        logging.getLogger("trainers").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("trainers").removeHandler(self)


def check_capture(dataset: Dataset, device: str, epochs: int) -> list[Row]:
    rows = []
    for name, configs in bundles(device, epochs).items():
        if device != "cuda":
            rows.append((f"capture + self-check: {name}", "skip", "needs CUDA"))
            continue
        with Warnings() as warnings:
            graphed = trained(configs, dataset)
        off = trained(configs, dataset, graphs="off")
        tolerance = CNN_TOLERANCE if configs[0].get("model") == "cnn1" else 0.0
        row = verdict(f"capture + self-check: {name}", difference(graphed, off), tolerance)
        if warnings.lines:
            row = (row[0], "FAIL", f"fell back: {warnings.lines[0]}")
        rows.append(row)
    return rows


def check_batch_sizes(dataset: Dataset, device: str, epochs: int) -> list[Row]:
    rows = []
    for batch_size in (8, 64, 600):
        config = {"dataset": "mnist", "device": device, "epochs": epochs,
                  "batch_size": batch_size, "hidden": [64]}  # fmt: skip
        found = difference(trained([config], dataset), trained([config], dataset, graphs="off"))
        rows.append(verdict(f"graphs auto = off, model A, batch {batch_size}", found, 0.0))
    return rows


def check_no_sync(dataset: Dataset, device: str) -> list[Row]:
    if device != "cuda":
        return [("no host sync in epochs >= 2", "skip", "needs CUDA")]
    rows = []
    for name, setting in itertools.product(("MLP K=1 SGD", "fused, 3 seeds", "cnn1"),
                                           ("auto", "off")):  # fmt: skip
        configs = [{**c, "graphs": setting} for c in bundles(device, 3)[name]]
        cfgs = [TrainConfig.from_dict(c) for c in configs]
        bundle = Bundle(cfgs, make_splits(dataset, 0.0, 0, torch.device("cuda")))
        bundle.train_epoch()
        bundle.settle()
        bundle.feed.start(bundle.orders.next())  # an epoch's one copy of its orders
        torch.cuda.synchronize()
        try:
            torch.cuda.set_sync_debug_mode("error")
            bundle.runner.run(bundle.step)
            status, detail = "PASS", f"{type(bundle.runner).__name__}, no sync"
        except RuntimeError as error:
            status, detail = "FAIL", str(error).splitlines()[0]
        finally:
            torch.cuda.set_sync_debug_mode(0)
        rows.append((f"no host sync in epoch 2: {name}, graphs {setting}", status, detail))
    return rows


def pack_groups(device: str) -> list[list[dict[str, Any]]]:
    found = bundles(device, 1)
    base = found["MLP K=1 SGD"][0]
    return [found["MLP K=1 SGD"], found["MLP Adam + mse"], found["fused, 3 seeds"],
            [{**base, "batch_size": 8}], [{**base, "batch_size": 600}], found["cnn1"]]  # fmt: skip


def check_pack(dataset: Dataset, device: str) -> list[Row]:
    groups = pack_groups(device)
    alone = [trained(group, dataset) for group in groups]
    rows = []
    for attempt in (1, 2):
        outcomes = train_pack(groups, dataset)
        largest = 0.0
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, Exception):
                return [(f"pack of 6 = each alone (run {attempt})", "FAIL", repr(outcome))]
            finals = [_without_times(m) for m in outcome]
            found = difference(finals, alone[index][-len(finals) :])
            tolerance = CNN_TOLERANCE if groups[index][0].get("model") == "cnn1" else 0.0
            largest = max(largest, found if found > tolerance else 0.0)
        rows.append(verdict(f"pack of 6 = each alone (run {attempt})", largest, 0.0,
                            "MLPs exact, cnn1 within its tolerance"))  # fmt: skip
    return rows


def check_failures(dataset: Dataset, device: str) -> list[Row]:
    if device != "cuda":
        return [("failure injections fall back exactly", "skip", "needs CUDA")]
    configs = bundles(device, 2)["fused, 3 seeds"]
    off = trained(configs, dataset, graphs="off")
    real_capture, real_warm_up = graphs.capture, graphs.warm_up
    calls: list[int] = []

    def capture_raises(bundle: Bundle, work: Work, stream: Any, pool: Any = None) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("injected: capture failed")
        return real_capture(work, stream, pool)

    def capture_syncs(bundle: Bundle, work: Work, stream: Any, pool: Any = None) -> Any:
        def work_that_syncs() -> None:  # a real capture failure: a host read mid-capture
            work()
            bundle.model.params[0].sum().item()

        return real_capture(work_that_syncs, stream, pool)

    def warm_up_raises(bundle: Bundle, work: Work, stream: Any) -> None:
        real_warm_up(work, stream)
        raise RuntimeError("injected: warm-up failed after its steps")

    class Drifting:
        def __init__(self, graph: Any, tensor: torch.Tensor) -> None:
            self.graph, self.tensor = graph, tensor

        def replay(self) -> None:
            self.graph.replay()
            with torch.no_grad():
                self.tensor.add_(1e-3)

        def pool(self) -> Any:
            return self.graph.pool()

    def drifting(bundle: Bundle, work: Work, stream: Any, pool: Any = None) -> Any:
        return Drifting(real_capture(work, stream, pool), bundle.model.params[0])

    rows = []
    for name, patch in (("capture raising", {"capture": capture_raises}),
                        ("a host sync inside capture", {"capture": capture_syncs}),
                        ("warm-up raising", {"warm_up": warm_up_raises}),
                        ("self-check disagreeing", {"capture": drifting})):  # fmt: skip
        calls.clear()
        with Warnings() as warnings:
            result = trained(configs, dataset, patch)
        row = verdict(f"fallback on {name} = graphs off", difference(result, off), 0.0)
        if len(warnings.lines) != 1:
            row = (row[0], "FAIL", f"expected one warning, got {warnings.lines}")
        rows.append(row)
    return rows


def check_memory(dataset: Dataset, device: str) -> list[Row]:
    if device != "cuda":
        return [("peak memory within the estimate", "skip", "needs CUDA")]
    rows = []
    for name in ("fused K=8", "cnn1"):
        configs = bundles(device, 1)[name]
        cfgs = [TrainConfig.from_dict(c) for c in configs]
        train_count, test_count = len(dataset.train_labels), len(dataset.test_labels)
        estimate = bundle_bytes(cfgs, dataset.image_shape, train_count, test_count)
        estimate += data_bytes(dataset.image_shape, train_count + test_count)
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        train_pack([configs], dataset)
        peak = torch.cuda.max_memory_allocated() - start
        status = "PASS" if peak <= estimate else "FAIL"
        detail = f"peak {peak / 2**20:,.0f} MiB, estimate {estimate / 2**20:,.0f} MiB"
        rows.append((f"peak memory within the estimate: {name}", status, detail))
    return rows


def figures(dataset: Dataset, device: str, repeats: int) -> list[Row]:
    on_cuda = device == "cuda"
    dev = torch.device(device)
    split = make_splits(dataset, 0.0, 0, dev).train
    rows = []
    seconds = step_time.median_seconds(step_time.loops(split, 8), repeats)
    baseline = seconds["DataLoader loop (Ray example)"]
    for name, value in seconds.items():
        rows.append((f"G1 batch-8 epoch: {name}", f"{value:.3f} s",
                     f"{baseline / value:.2f}x the DataLoader loop"))  # fmt: skip
    for count in (8, 32) if on_cuda else (8,):
        configs = fused_bench.grid_configs(count, "lr", 64, dev)
        rates = fused_bench.measure(configs, split, repeats)
        for name, rate in rates.items():
            rows.append((f"G2 K={count} batch 64: {name}", f"{rate:,.0f} samples/s",
                         f"{rate / rates['separate']:.2f}x separate"))  # fmt: skip
    configs = [{"dataset": "mnist", "device": device, "hidden": [64], "epochs": 1,
                "batch_size": batch_size} for batch_size in (32, 64, 128, 256)]  # fmt: skip
    timed = packs_bench.pack_vs_alone(configs, dataset, repeats)
    apart, packed = timed["alone, one after another"], timed["one pack"]
    rows.append(("G4 4 bundles: one after another", f"{apart:.2f} s", "1.00x"))
    rows.append(("G4 4 bundles: one pack", f"{packed:.2f} s", f"{apart / packed:.2f}x"))
    return rows


def environment(device: str) -> list[Row]:
    pin_precision()
    rows = [("torch", torch.__version__, device_name(torch.device(device))),
            ("precision", precision(), "cudnn.conv and cuda.matmul fp32_precision")]  # fmt: skip
    if device == "cuda":
        cudnn = torch.backends.cudnn.version()
        rows.append(("CUDA", str(torch.version.cuda), f"cuDNN {cudnn}"))
    return rows


def load(data_dir: str | None, quick: bool) -> Dataset:
    dataset = load_dataset("mnist", data_dir, download=False)
    if not quick:
        return dataset
    return dataclasses.replace(  # a slice of the real images: seconds on a CPU
        dataset,
        train_images=dataset.train_images[:1200],
        train_labels=dataset.train_labels[:1200],
        test_images=dataset.test_images[:200],
        test_labels=dataset.test_labels[:200],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--data-dir", default=os.environ.get(DATA_DIR_ENV),
                        help=f"the folder holding MNIST/raw (default ${DATA_DIR_ENV})")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="1,200 training images, one repeat: the CPU test's")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device is visible; use --device cpu", file=sys.stderr)
        return 2
    if args.device == "cpu":
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    dataset = load(args.data_dir, args.quick)
    repeats = 1 if args.quick else args.repeats
    epochs = 2
    started = time.perf_counter()
    rows = environment(args.device)
    print("| check | result | detail |\n|---|---|---|", flush=True)
    for row in rows:
        print(f"| {' | '.join(row)} |", flush=True)
    for part in (
        lambda: check_capture(dataset, args.device, epochs),
        lambda: check_batch_sizes(dataset, args.device, epochs),
        lambda: check_no_sync(dataset, args.device),
        lambda: check_pack(dataset, args.device),
        lambda: check_failures(dataset, args.device),
        lambda: check_memory(dataset, args.device),
        lambda: figures(dataset, args.device, repeats),
    ):
        for row in part():
            rows.append(row)
            print(f"| {' | '.join(row)} |", flush=True)
    failed = [row[0] for row in rows if row[1] == "FAIL"]
    print(f"\n{len(failed)} failed; {time.perf_counter() - started:.0f} s in all", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
