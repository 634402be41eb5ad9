"""What `sweeps report` costs on large runs: fabricated runs of 50, 1,000 and 10,000
configurations, drawn as large runs are now (analysis.crowds) against before-style (a legend
entry a value, every curve an artist of its own: see `before_style`), in one process.

Run: python bench/report_scale.py [--sizes 50 1000 10000] [--epochs 10] [--runs 1] [--html]
     python bench/report_scale.py --write DIR --sizes 1000   (a run directory, no timing)

A fabricated run is what `sweeps run` leaves, without Ray or training: a Parquet file a
configuration in trials/ and in epochs/ with sweeps.record.results' schemas, compacted as a
run's end compacts them (sweeps.record.compact; --uncompacted keeps them), spec.yaml and
manifest.json. `dataset: null`, batch_size x activation (a grid of 10) x lr sampled
log-uniformly, num_samples = configurations / 10: every configuration has an lr of its own,
as in a random search. Timed in-process in CPU seconds, `sweeps report` as the CLI runs it
step by step (its table printed to nowhere, its figures written to plots/), the interpreter's
start and imports aside; printed as a Markdown table with the ratio of the figures' CPU
seconds, before / now.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from analysis import crowds, load_run
from analysis.place import Place
from analysis.report import Report, build_report, figures, html_page
from sweeps.cli import report as report_cli
from sweeps.record.columns import EPOCH_SCHEMA, trial_schema
from sweeps.record.compact import compact_run

BATCH_SIZES = [32, 64, 128, 256, 512]
ACTIVATIONS = ["relu", "tanh"]


def write_run(
    root: Path, configurations: int, epochs: int = 10, seed: int = 0, compact: bool = True
) -> Path:
    """A finished run of `configurations` (a multiple of 10) as `sweeps run` writes one:
    <root>/crowd/<run id>/ with trials/, epochs/ (a file a configuration, compacted as a
    run's end compacts them unless `compact` is False), spec.yaml and manifest.json."""
    if configurations % 10:
        raise ValueError(f"configurations must be a multiple of 10, got {configurations}")
    rng = np.random.default_rng(seed)
    run_id = f"crowd-{configurations}"
    run_dir = root / "crowd" / run_id
    (run_dir / "trials").mkdir(parents=True)
    (run_dir / "epochs").mkdir()
    samples = configurations // 10
    configs = [{"batch_size": b, "activation": a, "lr": float(lr), "epochs": epochs}
               for b in BATCH_SIZES for a in ACTIVATIONS
               for lr in np.exp(rng.uniform(np.log(1e-4), np.log(0.5), samples))]  # fmt: skip
    schema = trial_schema(configs)
    started = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    for index, config in enumerate(configs):
        trial_id = f"a1b2c_{index:05d}"
        # Best near lr 0.05 and small batches, with noise: a metric every figure can rank.
        skill = (
            0.97
            - 0.02 * np.log10(config["lr"] / 0.05) ** 2
            - 0.01 * np.log2(config["batch_size"] / 32) / 4
        )
        final = float(np.clip(skill + rng.normal(0, 0.01), 0.1, 0.995))
        curve = final - (final - 0.1) * np.exp(-np.arange(1, epochs + 1) / 2.0)
        loss = -np.log(curve)
        epoch_rows = {
            "run_id": [run_id] * epochs, "trial_id": [trial_id] * epochs,
            "epoch": list(range(1, epochs + 1)), "train_loss": (loss * 0.9).tolist(),
            "train_accuracy": np.minimum(curve + 0.01, 1.0).tolist(), "val_loss": loss.tolist(),
            "val_accuracy": curve.tolist(), "epoch_time_s": [0.5] * epochs,
        }  # fmt: skip
        pq.write_table(
            pa.table(epoch_rows, EPOCH_SCHEMA), run_dir / "epochs" / f"{trial_id}.parquet"
        )
        row = {name: None for name in schema.names}
        row.update(config, run_id=run_id, trial_id=trial_id, bundle_id=trial_id,
                   config_index=index, status="TERMINATED", train_loss=float(loss[-1] * 0.9),
                   train_accuracy=float(min(curve[-1] + 0.01, 1.0)), val_loss=float(loss[-1]),
                   val_accuracy=final, train_time_s=0.5 * epochs, params=50890,
                   epochs_completed=epochs, device="cpu", threads=1, gpu_fraction=0.0,
                   started_at=started, finished_at=started + dt.timedelta(seconds=5))  # fmt: skip
        table = pa.table({name: [row[name]] for name in schema.names}, schema)
        pq.write_table(table, run_dir / "trials" / f"{trial_id}.parquet")
    spec = {"name": "crowd", "dataset": None, "trainer": "mytrainer:train",
            "base": {"epochs": epochs}, "grid": {"batch_size": BATCH_SIZES,
            "activation": ACTIVATIONS}, "sample": {"lr": {"loguniform": [1e-4, 0.5]}},
            "num_samples": samples, "metric": "val_accuracy", "mode": "max"}  # fmt: skip
    (run_dir / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    manifest = {
        "run_id": run_id,
        "sweep": "crowd",
        "host": "bench",
        "trials": configurations,
        "started_at": started.isoformat(),
        "finished_at": started.isoformat(),
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    if compact:
        compact_run(Place.of(run_dir))
    return run_dir


@contextlib.contextmanager
def before_style() -> Iterator[None]:
    """Figures as they were drawn before crowds, as far as today's code can: the learning
    curves a Line2D a trial and a legend entry a value, parallel coordinates a line and
    labels a value each, an x tick a value (analysis.crowds.CROWD out of reach). The
    metric-vs-param figures stay crowds: before, past 10 lines they were grey points with no
    legend, which no longer exists; and the curves are split by one groupby, no longer by a
    filter a trial. So it understates what the commit before crowds cost."""
    with mock.patch.object(crowds, "CROWD", 10**9):
        yield


def timed(step: Callable[[], object]) -> tuple[float, object]:
    """The CPU seconds `step` took, and what it returned: on a machine shared with other
    work, wall seconds measure the others too."""
    started = time.process_time()
    result = step()
    return time.process_time() - started, result


def report_once(run_dir: Path, html: bool) -> dict[str, float]:
    """`sweeps report RUN_DIR [--html]` as the CLI runs it, step by step: seconds each."""
    seconds: dict[str, float] = {}
    seconds["load"], run = timed(lambda: load_run(run_dir))
    seconds["tables"], built = timed(lambda: _tables(build_report(run)))
    seconds["figures"], drawn = timed(lambda: _figures(run_dir, figures(built)))
    if html:
        seconds["html"], _ = timed(
            lambda: (run_dir / "report.html").write_text(html_page(built, drawn))
        )
    return seconds


def _tables(built: Report) -> Report:
    with contextlib.redirect_stdout(io.StringIO()):
        report_cli.WRITERS["table"](built)
    return built


def _figures(run_dir: Path, drawn: list[tuple[str, bytes, bool]]) -> list[tuple[str, bytes, bool]]:
    shutil.rmtree(run_dir / "plots", ignore_errors=True)
    (run_dir / "plots").mkdir()
    for name, png, _ in drawn:
        (run_dir / "plots" / name).write_bytes(png)
    return drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 1000, 10000])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--runs", type=int, default=1, help="of each style and size (median)")
    parser.add_argument("--html", action="store_true", help="time --html's page too")
    parser.add_argument("--uncompacted", action="store_true",
                        help="a file a configuration, as a run still going has them")  # fmt: skip
    parser.add_argument("--write", type=Path, help="only write the runs under this folder")
    args = parser.parse_args()
    if args.write:
        for size in args.sizes:
            print(write_run(args.write, size, args.epochs, compact=not args.uncompacted))
        return
    print("| configurations | style | CPU s: load | tables | figures | html | total |"
          " figures before / now |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as temp:
            run_dir = write_run(Path(temp), size, args.epochs, compact=not args.uncompacted)
            figures_s = {}
            for style in ("before", "now"):
                runs = []
                for _ in range(args.runs):
                    with before_style() if style == "before" else contextlib.nullcontext():
                        runs.append(report_once(run_dir, args.html))
                median = {step: statistics.median(r[step] for r in runs) for step in runs[0]}
                figures_s[style] = median["figures"]
                ratio = f"{figures_s['before'] / median['figures']:.1f}x" if style == "now" else ""
                print(f"| {size:,} | {style} | {median['load']:.2f} | {median['tables']:.2f} |"
                      f" {median['figures']:.2f} | {median.get('html', 0):.2f} |"
                      f" {sum(median.values()):.2f} | {ratio} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
