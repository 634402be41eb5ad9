"""End to end: `sweeps run report-a-activations` fused (the default) vs `--fuse off`.

Run: python bench/fused_sweep.py [--repeats 2] [--epochs 20]

Each run is the console script in its own process, as a user types it (interpreter start,
data loading, an embedded Ray, Tune, the Parquet files), on real MNIST from
$SWEEPS_DATA_DIR. The two are alternated repeat by repeat; the median wall times and
their ratio are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

PRESET = "report-a-activations"


def wall_time(fuse: str, epochs: int, results: str) -> float:
    command = [sys.executable, "-m", "sweeps", "run", PRESET, "--fuse", fuse,
               "--epochs", str(epochs), "--results", results]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()

    seconds: dict[str, list[float]] = {"auto": [], "off": []}
    with tempfile.TemporaryDirectory() as results:
        for _ in range(args.repeats):
            for fuse in seconds:
                seconds[fuse].append(wall_time(fuse, args.epochs, results))
    fused, separate = (statistics.median(seconds[k]) for k in ("auto", "off"))
    print(f"`sweeps run {PRESET} --epochs {args.epochs}`, median of {args.repeats}\n")
    print("| --fuse | wall s (each run) | median s |")
    print("|---|---|---:|")
    for fuse, values in seconds.items():
        each = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {fuse} | {each} | {statistics.median(values):.1f} |")
    print(f"\nfused vs --fuse off: {separate / fused:.2f}x")


if __name__ == "__main__":
    main()
