"""A run's checkpoints (spec `checkpoint: last | best`): each configuration's training
state (trainers.checkpoint), kept in the run directory as it trains.

    <run_dir>/checkpoints/<configuration id>/last.pt   after its latest epoch
                                             best.pt   after its best epoch by the spec's
                                                       metric and mode (`checkpoint: best`)

The trial writes them itself, through the run directory's Place, rather than handing
them to Tune's checkpointing: Tune would write them to its own storage for the driver to
copy, and would give them back only to a restore of its own experiment, which `resume`
never does (each attempt is a fresh Tuner; the rows say what is left). One write on the
run directory's filesystem serves a local folder and s3:// alike, whole or not at all
(Place: a rename, a PUT). A configuration that `resume` trains again takes an earlier
attempt's checkpoints under its new id and goes on from its last.pt.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from analysis.place import Place
from analysis.rundir import RunDataError
from sweeps.plan.groups import RunPlan

CHECKPOINTS = "checkpoints"
WHICH = ("best", "last")


@dataclasses.dataclass(frozen=True)
class Checkpoints:
    """What a trial needs to keep its configuration's checkpoints (sent to it pickled: a
    URI, not a filesystem)."""

    folder: str  # the URI of <run_dir>/checkpoints
    which: str  # best | last
    metric: str
    mode: str  # max | min
    resume_from: dict[int, str]  # RunPlan.resume_from

    @classmethod
    def of(cls, plan: RunPlan, run_dir: Place) -> Checkpoints | None:
        spec = plan.spec
        if spec.checkpoint == "off":
            return None
        return cls((run_dir / CHECKPOINTS).uri, spec.checkpoint, spec.metric, spec.mode,
                   dict(plan.resume_from))  # fmt: skip


class Keeper:
    """The checkpoints of configuration `index`, trained as `configuration_id` (a search's
    proposal has no index until it is proposed: it is never resumed)."""

    def __init__(self, checkpoints: Checkpoints, configuration_id: str, index: int | None) -> None:
        self.checkpoints, self.id, self.index = checkpoints, configuration_id, index
        self.place = Place.of(checkpoints.folder) / configuration_id
        self.best: float | None = None

    def adopt(self) -> dict[str, Any] | None:
        """The state to go on from: an earlier attempt's last.pt, its checkpoints moved
        under this id first (best.pt before last.pt: a last.pt here means its best.pt came
        too), or None to train from the start."""
        from trainers.checkpoint import from_bytes

        earlier = None if self.index is None else self.checkpoints.resume_from.get(self.index)
        if earlier is None:
            return None
        old = Place.of(self.checkpoints.folder) / earlier
        if earlier != self.id and old.is_dir():  # not moved yet (a Tune retry finds it moved)
            for name in ("best.pt", "last.pt"):
                if (old / name).is_file():
                    (self.place / name).write_bytes((old / name).read_bytes())
            old.fs.delete_dir(old.path)
        state = from_bytes((self.place / "last.pt").read_bytes())
        for metrics in state["history"]:
            self._improved(metrics)
        return state

    def keep(self, state: Mapping[str, Any]) -> None:
        """Write `state`, the configuration's after an epoch, as last.pt, and first as
        best.pt where that epoch is its best so far."""
        from trainers.checkpoint import to_bytes

        data = to_bytes({**state, "config_index": self.index, "trial_id": self.id})
        if self._improved(state["history"][-1]) and self.checkpoints.which == "best":
            (self.place / "best.pt").write_bytes(data)
        (self.place / "last.pt").write_bytes(data)

    def _improved(self, metrics: Mapping[str, Any]) -> bool:
        value = metrics.get(self.checkpoints.metric)
        if not isinstance(value, int | float) or math.isnan(value):
            return False
        sign = 1 if self.checkpoints.mode == "max" else -1
        if self.best is not None and sign * value <= sign * self.best:
            return False
        self.best = float(value)
        return True


def train_checkpointed(
    config: dict[str, Any],
    dataset: Any,
    report: Callable[[dict[str, Any]], None],
    keeper: Keeper,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The built-in trainer on one configuration, keeping its checkpoints, going on from
    an earlier attempt's where `resume` found one (said, with its epoch)."""
    from trainers.checkpoint import train_kept

    state = keeper.adopt()
    if state is not None:
        epochs = state["config"]["epochs"]
        say(f"goes on after epoch {state['epoch']} of {epochs}, from the checkpoint of"
            f" {state['trial_id']}")  # fmt: skip
    return train_kept(config, dataset, report, keeper.keep, state)


def resumable(run_dir: Place, pending: set[int], done: set[str]) -> dict[int, str]:
    """The configurations of `pending` with a checkpoint in the run: each one's index ->
    the id whose last.pt reached the furthest epoch. `done`: ids with trials rows, whose
    checkpoints are their results', not to go on from."""
    from trainers.checkpoint import from_bytes

    found: dict[int, tuple[int, str]] = {}
    for folder in (run_dir / CHECKPOINTS).subdirectories():
        last = folder / "last.pt"
        if folder.name in done or not last.is_file():
            continue
        try:
            state = from_bytes(last.read_bytes())
        except ValueError:  # not ours: left alone, trained from the start
            continue
        index, epoch = state.get("config_index"), int(state["epoch"])
        if index in pending and epoch > found.get(index, (-1, ""))[0]:
            found[index] = (epoch, folder.name)
    return {index: name for index, (_, name) in found.items()}


class CheckpointError(RunDataError):
    """No such run, configuration or checkpoint; the message names it."""


def checkpoint_file(run_dir: Place, configuration_id: str, which: str | None = None) -> Place:
    """A configuration's best.pt or last.pt (None: best.pt where the run kept one, else
    last.pt); CheckpointError naming what is missing."""
    if which is not None and which not in WHICH:
        raise CheckpointError(f"--which must be one of {', '.join(WHICH)}, got {which!r}")
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory {run_dir.uri!r} does not exist")
    folder = run_dir / CHECKPOINTS
    if not (folder / configuration_id).is_dir():
        known = [place.name for place in folder.subdirectories()]
        has = f"it has {', '.join(known[:5])}{' ...' * (len(known) > 5)}" if known else (
            "it has none (a run keeps them with checkpoint: last or best)")  # fmt: skip
        raise CheckpointError(f"no checkpoints of configuration {configuration_id!r} in"
                              f" {run_dir.uri}; {has}")  # fmt: skip
    names = [which] if which is not None else ["best", "last"]
    for name in names:
        path = folder / configuration_id / f"{name}.pt"
        if path.is_file():
            return path
    raise CheckpointError(f"configuration {configuration_id!r} has no {names[0]}.pt in"
                          f" {folder.uri}")  # fmt: skip


def read_checkpoint(path: Place) -> dict[str, Any]:
    """The state in a checkpoint file; CheckpointError if it is not one."""
    from trainers.checkpoint import from_bytes

    try:
        return from_bytes(path.read_bytes())
    except ValueError as error:
        raise CheckpointError(f"{path.uri}: {error}") from None
