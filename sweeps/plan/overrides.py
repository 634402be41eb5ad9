"""What a command's flags change in a spec: `--set`, `--epochs`, `--repeats` and the rest,
made once from the flags (`Overrides`), applied once, and validated with the spec as one.
`run` and `submit` make the same sweep from the same flags this way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import yaml

from sweeps.plan.spec import (
    DuplicateKeyError,
    SpecError,
    SweepSpec,
    load_spec,
    parse_spec,
    read_yaml,
)

# Keys of the spec itself, not of the trainer's config, that `--set` sets.
TOP_LEVEL = ("dataset", "checkpoint", "search", "num_samples")


@dataclasses.dataclass(frozen=True)
class Overrides:
    """The flags' changes to a spec; None leaves the spec's value."""

    assignments: tuple[str, ...] = ()  # --set KEY=VALUE or KEY=V1,V2,...
    epochs: int | None = None
    repeats: int | None = None
    cpus: float | None = None  # resources.cpus
    gpus: float | None = None  # resources.gpus
    max_concurrent: int | None = None
    fuse: str | None = None
    max_bundle: int | None = None
    pack: str | None = None
    callbacks: tuple[str, ...] = ()  # beside the spec's own: a flag adds a logger, never drops one

    def resolve(self, name_or_path: str) -> SweepSpec:
        """The spec or preset loaded, then changed: SpecError naming what is bad."""
        return self.apply(load_spec(name_or_path))

    def apply(self, spec: SweepSpec) -> SweepSpec:
        assignments = dict(parse_override(assignment) for assignment in self.assignments)
        if self.epochs is not None:
            assignments["epochs"] = [self.epochs]
        callbacks = [*spec.callbacks, *self.callbacks] if self.callbacks else None
        return override(
            spec, assignments, cpus=self.cpus, gpus=self.gpus, repeats=self.repeats,
            max_concurrent=self.max_concurrent, fuse=self.fuse, max_bundle=self.max_bundle,
            pack=self.pack, callbacks=callbacks,
        )  # fmt: skip


def parse_override(assignment: str) -> tuple[str, list[Any]]:
    """`key=v1,v2,...` -> (key, [v1, v2, ...]); values are YAML, so `hidden=[64,64]` is one
    list value and `hidden=[64],[128,128]` two."""
    key, sep, value = assignment.partition("=")
    key = key.strip()
    if not sep or not key or not value.strip():
        raise SpecError(f"--set expects KEY=VALUE or KEY=V1,V2,..., got {assignment!r}")
    try:
        values = read_yaml(f"[{value}]")
    except DuplicateKeyError as error:
        raise SpecError(f"--set {assignment!r}: {error.problem}") from None
    except yaml.YAMLError:
        raise SpecError(f"--set {assignment!r}: {value!r} is not a YAML value or list") from None
    return key, values


def override(
    spec: SweepSpec,
    assignments: Mapping[str, list[Any]] | None = None,
    *,
    cpus: float | None = None,
    gpus: float | None = None,
    **top_level: Any,
) -> SweepSpec:
    """A new spec with `--set` assignments and flags applied, validated again.

    One value sets the base config (or narrows a grid axis to it); several make the key a
    grid axis. Top-level keys given as None are left as they are.
    """
    data = spec.model_dump()
    for key, values in (assignments or {}).items():
        if key in TOP_LEVEL:
            if len(values) != 1:
                raise SpecError(f"--set {key} takes one value, got {values!r}")
            data[key] = values[0]
            continue
        in_grid = key in data["grid"]
        for place in ("base", "grid", "sample"):
            data[place].pop(key, None)
        if len(values) == 1 and not in_grid:
            data["base"][key] = values[0]
        else:
            data["grid"][key] = values
    if cpus is not None:
        data["resources"]["cpus"] = cpus
    if gpus is not None:
        data["resources"]["gpus"] = gpus
    data.update({key: value for key, value in top_level.items() if value is not None})
    return parse_spec(data, f"{spec.name} with overrides")
