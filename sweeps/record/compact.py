"""A large run's Parquet folders compacted as it ends: its many small files (one a trial
and folder, written as trials end: sweeps.record.results) as one file a folder.

A run of 10,000 configurations leaves 20,000 small files that every reader would open.
As it ends (sweeps.runs.runner finish_run: finished, failed or interrupted, and after each
`resume`), a folder of `COMPACT_FROM` files or more, or one that holds a compacted file
and others, becomes one `part-compact-<n>.parquet` (analysis.rundir), rows and columns as
they were. It is written first, each file whole (analysis.place), then the files it
replaces are removed: a stop in between leaves rows twice on disk, and readers take each
trial's rows from the newest compacted file (analysis.rundir without_copies); the next
compaction removes the copies. A run ended without Tune after a SIGTERM
(sweeps.runs.runner abandon_run) is not compacted: its process ends within seconds.

A trials row promises its epochs, and resume removes an epochs file that has no trials
file of its name (sweeps.record.results finished_configs): so the epochs are compacted
first, under the trials' name, and only the epochs files whose trials file is compacted
with them. A resumed run appends small files again, and its end compacts them all anew.
"""

from __future__ import annotations

import os

from analysis.place import Place
from analysis.rundir import COMPACTED, EPOCHS, TRIALS, RunDir, compacted_number

COMPACT_FROM = 100  # files in trials/: fewer are read as fast, and keep a file a trial


def compact_run(run_dir: Place, compact_from: int | None = None) -> None:
    """Compact the run's trials/ and epochs/ when trials/ holds `compact_from` files or
    more (default `COMPACT_FROM`), or a compacted file and others (a resumed run's).
    OSError if they cannot be written; RunDataError naming a file that cannot be read.
    Either way no row is lost or shown twice."""
    trials = (run_dir / TRIALS).parquet_files()
    names = {os.path.basename(path) for path in trials}
    compacted = any(compacted_number(name) is not None for name in names)
    if len(trials) < 2 or (len(trials) < (compact_from or COMPACT_FROM) and not compacted):
        return
    epochs = [path for path in (run_dir / EPOCHS).parquet_files()
              if os.path.basename(path) in names]  # fmt: skip
    number = 1 + max((compacted_number(name) or 0 for name in names), default=0)
    name = f"{COMPACTED}{number}.parquet"
    reader = RunDir(run_dir, run_dir.uri)
    for folder, paths in ((EPOCHS, epochs), (TRIALS, trials)):
        table = reader.read_table(folder, paths)
        if table is not None:  # one chunk, not a chunk a file read: seconds less at 10,000
            (run_dir / folder / name).write_parquet(table.combine_chunks())
    for path in trials + epochs:
        remove(run_dir, path)


def remove(run_dir: Place, path: str) -> None:
    """A file of the run gone (a test stops a compaction here)."""
    run_dir.fs.delete_file(path)
