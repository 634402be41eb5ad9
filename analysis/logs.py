"""What a run's trainers printed, warned and raised, as sweeps.record.logs keeps it:

    <run>/logs/<Tune trial id>.txt   stdout and stderr as one text (warnings included),
                                     then the traceback of a failure; its first line names
                                     the configurations the trial trained: several, in a
                                     fused bundle or a pack, share one process and its file

A trial that printed nothing and did not fail has no file.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import pyarrow.fs as pafs

from analysis.rundir import TRIALS, RunDataError, RunDir

LOGS = "logs"
SUFFIX = ".txt"


@dataclasses.dataclass(frozen=True)
class TrialLog:
    """One Tune trial's captured output."""

    name: str  # the Tune trial's id
    shown: str  # the file, as a user names it (a path, or a URI)
    text: str


def read_logs(run: RunDir, which: str | None = None) -> list[TrialLog]:
    """The captured output of the run's Tune trials, by id; with `which` (a configuration's
    trial_id or config_index, or a Tune trial's id), only that of the trial that trained
    it, none if it printed nothing. RunDataError when `which` names nothing of the run."""
    names = log_names(run)
    if which is not None:
        group = _trial_of(run, which, names)
        names = [group] if group in names else []
    return [TrialLog(name, run.show(f"{LOGS}/{name}{SUFFIX}"), _read(run, name))
            for name in names]  # fmt: skip


def log_names(run: RunDir) -> list[str]:
    """The Tune trials with a log, in id order (a dot-file is still being written)."""
    folder = run / LOGS
    if not folder.is_dir():
        return []
    infos = folder.fs.get_file_info(pafs.FileSelector(folder.path))
    return sorted(info.base_name.removesuffix(SUFFIX) for info in infos
                  if info.type == pafs.FileType.File and info.base_name.endswith(SUFFIX)
                  and not info.base_name.startswith("."))  # fmt: skip


def _trial_of(run: RunDir, which: str, names: list[str]) -> str:
    """The Tune trial that trained the configuration `which` names."""
    if which in names:
        return which
    trials = run.read_folder(TRIALS)
    column = "config_index" if which.isdigit() else "trial_id"
    rows = pd.DataFrame()
    if column in trials.columns:
        key: int | str = int(which) if which.isdigit() else which
        rows = trials[trials[column] == key]
    if len(rows):
        row = rows.iloc[0]
        bundle = row.get("bundle_id")  # the Tune trial of a configuration among several
        return str(bundle) if isinstance(bundle, str) and bundle else str(row["trial_id"])
    # One still training has no row yet: a configuration among several is `<trial>-<k>`.
    group = which.rsplit("-", 1)[0]
    if group in names:
        return group
    raise RunDataError(
        f"run {run.shown!r} has no configuration {which!r} (give a trial_id or a config_index)"
    )


def _read(run: RunDir, name: str) -> str:
    place = run / LOGS / f"{name}{SUFFIX}"
    try:
        return place.read_bytes().decode(errors="replace")
    except OSError as error:
        raise RunDataError(f"cannot read {run.show(f'{LOGS}/{name}{SUFFIX}')}: {error}") from None
