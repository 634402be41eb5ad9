"""The settings of a run (its dataset and base config), and how two sides differ in them.

A reference carries the settings its figures were measured under (a spec fills them in
from its own dataset and base); `reference_differences` says where a run was made under
others, e.g. `--epochs 1` against a report's 20-epoch figures.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from analysis.numbers import value_text
from analysis.rundir import as_tuple

ABSENT = "(not set)"  # the trainer's default, which the analysis does not know
SWEPT = "(swept)"


@dataclasses.dataclass(frozen=True)
class Difference:
    """A config key whose values differ between two sides: each side's, as text."""

    key: str
    a: str
    b: str
    overlap: bool  # some value on both sides: configurations can still pair on it

    def text(self) -> str:
        """ "epochs (a: 20; b: 1)"."""
        return f"{self.key} (a: {self.a}; b: {self.b})"


def run_settings(spec: dict[str, Any]) -> dict[str, Any]:
    """What every trial of a run shares: its dataset and base config."""
    dataset = {"dataset": spec["dataset"]} if spec.get("dataset") else {}
    return {**dataset, **(spec.get("base") or {})}


def reference_differences(reference: dict[str, Any], spec: dict[str, Any]) -> list[Difference]:
    """The settings a reference's figures were measured under that this run does not share
    (a = the reference, b = the run); none when the reference does not say (runs saved
    before references carried their settings). Keys its rows give, and seeds, aside."""
    measured = reference.get("settings")
    if not isinstance(measured, dict):
        return []
    swept = {*(spec.get("grid") or {}), *(spec.get("sample") or {})}
    in_rows = {key for row in reference.get("rows") or [] for key in row}
    ours = run_settings(spec)
    differences = []
    for key in dict.fromkeys([*measured, *ours, *swept]):
        if key in in_rows or key == "seed":
            continue
        theirs = as_tuple(measured.get(key, ABSENT))
        mine = SWEPT if key in swept else as_tuple(ours.get(key, ABSENT))
        if theirs != mine:
            differences.append(Difference(key, value_text(theirs), value_text(mine), False))
    return differences


def mark_reference(reference: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """The reference, its source marked where its settings differ from the run's:
    "... [other settings: measured with epochs=20; this run has epochs=1]"."""
    differences = reference_differences(reference, spec)
    if not differences:
        return reference
    theirs = ", ".join(f"{d.key}={d.a}" for d in differences)
    mine = ", ".join(f"{d.key}={d.b}" for d in differences)
    source = reference.get("source", "reference")
    mark = f"[other settings: measured with {theirs}; this run has {mine}]"
    return {**reference, "source": f"{source} {mark}"}
