"""What a trial tells the driver, in one place: the trial side encodes, the driver decodes.

A Tune trial trains a group of K >= 1 configurations (sweeps.plan.groups) and reports

    {"kind": "epoch", "members": [metrics of each configuration]}   after every epoch
    {"kind": "final", "members": [final metrics of each]}           when training returns

For a group of one, the member's metrics are also at the top level, where Tune's
schedulers (ASHA) and its progress look for the spec's metric.

A pack (a trial of several bundles, trainers.pack) reports each bundle's epochs apart:
`"positions"` says which of the trial's members those are. Its final report carries
`"errors"`, one per member: None, or why that member's bundle failed (the others went on).

Any report may carry `"notes"`: warnings the trainers logged or warned since the last
report (a CUDA graph capture that fell back to eager, say), for the driver to show; and
`"output"`: what the trial printed since the last report (stdout and stderr as one text,
warnings included), for the driver to keep (sweeps.record.logs). A trial that raises
sends no report: the notes and output since its last one travel on the exception
(`attach_output`, read back on the driver by `attached_output`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Literal

EPOCH, FINAL = "epoch", "final"
Kind = Literal["epoch", "final"]
Scalar = bool | int | float | str


@dataclasses.dataclass(frozen=True)
class Report:
    kind: Kind
    members: list[dict[str, Any]]  # one mapping of metrics per configuration of the group
    positions: list[int] | None = None  # which members of the trial; None: all, in order
    errors: list[str | None] | None = None  # final: why each member failed, if it did
    notes: list[str] = dataclasses.field(default_factory=list)  # the trainers' warnings
    output: str = ""  # what the trial printed since its last report

    def placed(self) -> list[tuple[int, dict[str, Any]]]:
        """(position among the trial's members, metrics) of each member reported."""
        positions = self.positions if self.positions is not None else range(len(self.members))
        return list(zip(positions, self.members, strict=True))


def encode(
    kind: Kind,
    members: list[Mapping[str, Any]],
    positions: list[int] | None = None,
    errors: list[str | None] | None = None,
    notes: list[str] | None = None,
    output: str | None = None,
) -> dict[str, Any]:
    """What the trial passes to `tune.report`."""
    top = dict(members[0]) if len(members) == 1 and positions is None else {}
    fields = (("positions", positions), ("errors", errors), ("notes", notes or None),
              ("output", output or None))  # fmt: skip
    extra = {key: value for key, value in fields if value is not None}
    return {**top, "kind": kind, "members": [dict(member) for member in members], **extra}


def decode(result: Mapping[str, Any]) -> Report | None:
    """A result of ours as a Report; None for anything else Tune passes along."""
    kind, members = result.get("kind"), result.get("members")
    if kind not in (EPOCH, FINAL) or not isinstance(members, list):
        return None
    positions, errors, notes = result.get("positions"), result.get("errors"), result.get("notes")
    return Report(
        kind,
        [dict(member) for member in members],
        list(positions) if isinstance(positions, list) else None,
        list(errors) if isinstance(errors, list) else None,
        [str(note) for note in notes] if isinstance(notes, list) else [],
        result["output"] if isinstance(result.get("output"), str) else "",
    )


_SAID = "sweeps_said"  # the attribute of an exception that carries what the trial said


def attach_output(error: BaseException, notes: list[str], output: str) -> None:
    """What a trial said since its last report, on the exception it raises: pickled with
    it (an exception's attributes are), for the driver to read from Tune's error."""
    with contextlib.suppress(Exception):  # an exception that takes no attributes says less
        setattr(error, _SAID, {"notes": list(notes), "output": output})


def attached_output(error: object) -> tuple[list[str], str]:
    """The notes and output `attach_output` put on `error` (Ray's wrapper or its cause)."""
    said = getattr(getattr(error, "cause", None), _SAID, None) or getattr(error, _SAID, None)
    if not isinstance(said, dict):
        return [], ""
    notes, output = said.get("notes"), said.get("output")
    return ([str(note) for note in notes] if isinstance(notes, list) else [],
            output if isinstance(output, str) else "")  # fmt: skip


def scalars(metrics: Mapping[str, Any]) -> dict[str, Scalar]:
    """The plain values among a trainer's metrics (numbers, flags, text): what a results
    column can hold. numpy and torch scalars count as numbers."""
    kept: dict[str, Scalar] = {}
    for key, value in metrics.items():
        if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
            value = value.item()
        if isinstance(value, bool | int | float | str):
            kept[str(key)] = value
    return kept


def divergence(epochs: list[Mapping[str, Any]], final: Mapping[str, Any]) -> str | None:
    """'loss became NaN at epoch 3' when a loss stopped being a finite number, else None."""
    for number, metrics in enumerate(epochs, 1):
        for name in ("loss", "val_loss"):
            value = metrics.get(name)
            if isinstance(value, int | float) and not math.isfinite(value):
                epoch = metrics.get("epoch", number)
                return f"{name} became {_spell(value)} at epoch {epoch}"
    for name in ("loss", "val_loss", "test_loss"):
        value = final.get(name)
        if isinstance(value, int | float) and not math.isfinite(value):
            return f"{name} became {_spell(value)}"
    return None


def _spell(value: float) -> str:
    return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
