"""The sweep spec: a YAML file or a preset, validated before anything starts.

A spec is a base trainer config plus a `grid` (the Cartesian product of its lists, as
`tune.grid_search`), optional sampled parameters, `repeats` (the whole grid again with
other seeds), the resources of one trial and how Tune schedules them (sweeps.plan.groups lists
its configurations). `SpecError` carries a one-line message naming the bad key and value.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from analysis.rundir import DEFAULT_METRIC
from trainers.config import DATASETS

DEFAULT_TRAINER = "trainers:train"
PRESETS_DIR = Path(__file__).parent / "presets"
MAX_CONFIGS = 10_000  # a grid beyond this is almost certainly a mistake in the spec


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping gives the same key twice; YAML would silently keep the last value."""


class _Loader(yaml.SafeLoader):
    """YAML with 1e-3 read as a number, as YAML 1.2 does (1.1 wants 1.0e-3), and a key
    given twice in one mapping refused rather than silently overwritten."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            # A merge (`<<: *defaults`) may be overridden by the mapping's own keys.
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable: the base constructor names that error
                continue
            if duplicate:
                raise DuplicateKeyError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def _yaml_problem(error: yaml.YAMLError) -> str:
    """What is wrong with the YAML, and the line where it is: one line."""
    where = getattr(error, "problem_mark", None)
    line = f" at line {where.line + 1}" if where is not None else ""
    if isinstance(error, DuplicateKeyError):
        return f"{error.problem}{line}"
    return f"not valid YAML{line}"


class SpecError(ValueError):
    """The spec (file, preset, or override) is invalid; the message is one line."""


class _Strict(BaseModel):
    # allow_inf_nan: a typed float field would otherwise take the strings "nan" and "inf".
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Resources(_Strict):
    """What one trial reserves. gpus: a fraction packs trials onto one GPU (0.25: four);
    "auto" is 0.25 where the cluster has GPUs and 0 (CPU only) where it has none."""

    cpus: Annotated[float, Field(gt=0)] = 1
    gpus: Annotated[float, Field(ge=0)] | Literal["auto"] = "auto"

    @field_validator("gpus")
    @classmethod
    def _fraction_or_whole(cls, value: float | str) -> float | str:
        # Ray shares a GPU between trials only for fractions; 1.5 GPUs cannot be reserved.
        if isinstance(value, float) and value > 1 and not value.is_integer():
            raise ValueError(
                "a fraction must be below 1 (several trials share a GPU), or a whole number"
            )
        return value


class Sampled(_Strict):
    """One sampled parameter: exactly one of choice, uniform or loguniform; with `when`,
    only in configurations whose earlier swept values are those given (`momentum` only
    where `optimizer: sgd`), elsewhere left to the base config or the trainer's default."""

    choice: Annotated[list[Any], Field(min_length=1)] | None = None
    uniform: tuple[float, float] | None = None
    loguniform: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]] | None = None
    when: Annotated[dict[str, Any], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one_distribution(self) -> Sampled:
        given = [k for k in ("choice", "uniform", "loguniform") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of choice, uniform, loguniform; got {given}")
        bounds = self.uniform or self.loguniform
        if bounds is not None and not bounds[0] < bounds[1]:
            raise ValueError(f"bounds must be [low, high] with low < high, got {list(bounds)}")
        return self


class Reference(_Strict):
    """Figures a report gives, one row per configuration, keyed by the swept parameters."""

    source: str
    note: str = ""
    # The dataset and base config the figures were measured with: those of the spec the
    # reference is written in, unless given. A run that overrides them (`--epochs 1`)
    # keeps them here, and `sweeps report` marks the reference.
    settings: dict[str, Any] | None = None
    rows: Annotated[list[dict[str, Any]], Field(min_length=1)]


class SweepSpec(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)]
    description: str = ""
    trainer: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")] = DEFAULT_TRAINER
    dataset: str | None = "mnist"
    base: dict[str, Any] = {}
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = {}
    sample: dict[str, Sampled] = {}
    # grid: the grid's product, with `sample` drawn for each point; random: each of
    # num_samples configurations draws every swept key (a grid's list as a choice); tpe:
    # Optuna's TPE proposes each of num_samples from the results so far (sweeps.plan.search).
    search: Literal["grid", "random", "tpe"] = "grid"
    num_samples: Annotated[int, Field(ge=1)] = 1
    repeats: Annotated[int, Field(ge=1)] = 1
    resources: Resources = Resources()
    max_concurrent: Annotated[int, Field(ge=1)] | None = None
    scheduler: Literal["fifo", "asha"] = "fifo"
    metric: str = DEFAULT_METRIC
    mode: Literal["max", "min"] = "max"
    grace_period: Annotated[int, Field(ge=1)] = 1
    max_failures: Annotated[int, Field(ge=0)] = 0
    # auto: configurations that differ only in activation, lr, loss, initializer or seed
    # train as one fused model per trial (sweeps.plan.groups); off: one trial per configuration.
    fuse: Literal["auto", "off"] = "auto"
    # Configurations per fused trial, at most; auto: on the CPU enough bundles to keep
    # every trial slot busy, at most 8; on a GPU as many as fit sweeps.plan.groups's memory bound
    # (one process per GPU beats several time-slicing it). A run saves the number it used.
    max_bundle: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"
    # auto: on a GPU, the bundles of a run share as few Tune trials as keep every GPU
    # slot busy, each trial one process whose bundles' kernels overlap on CUDA streams
    # (sweeps.plan.groups); on: so on the CPU too (they take turns there); off: a trial a bundle.
    pack: Literal["auto", "on", "off"] = "auto"
    # last: each configuration keeps its last epoch's training state under the run's
    # checkpoints/, and `resume` goes on from it; best: its best epoch's too (by metric and
    # mode). With either, each trial trains one configuration, unfused and unpacked.
    checkpoint: Literal["best", "last", "off"] = "off"
    # Where else each configuration's epochs and config go (sweeps.record.loggers): tensorboard
    # (event files under the run directory), wandb, mlflow (Ray's loggers for them).
    callbacks: list[Literal["tensorboard", "wandb", "mlflow"]] = ["tensorboard"]
    results: str = "results"
    reference: list[Reference] = []

    @model_validator(mode="before")
    @classmethod
    def _reference_settings(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or not isinstance(data.get("reference"), list):
            return data
        base = data.get("base") or {}
        if not isinstance(base, Mapping):
            return data  # the field's own check says why
        dataset = data.get("dataset", cls.model_fields["dataset"].default)
        settings = {**({"dataset": dataset} if dataset is not None else {}), **base}
        filled = [
            {**ref, "settings": dict(settings)}
            if isinstance(ref, Mapping) and ref.get("settings") is None
            else ref
            for ref in data["reference"]
        ]
        return {**data, "reference": filled}

    @field_validator("fuse", "pack", "checkpoint", mode="before")
    @classmethod
    def _yaml_on_off(cls, value: Any, info: ValidationInfo) -> Any:
        # YAML 1.1 reads a bare `off` as false and `on` as true: `pack: on` means on, and
        # fuse, which has no `on`, is on when it is `auto`.
        if not isinstance(value, bool) or (info.field_name == "checkpoint" and value):
            return value
        return ("on" if info.field_name == "pack" else "auto") if value else "off"

    @field_validator("callbacks", mode="before")
    @classmethod
    def _callback_names(cls, value: Any) -> Any:
        # `callbacks: wandb` means the list of one; a name given twice is logged to once.
        names = [value] if isinstance(value, str) else value
        if isinstance(names, list) and all(isinstance(name, str) for name in names):
            return list(dict.fromkeys(names))
        return names  # the field's own check names what is wrong

    @model_validator(mode="after")
    def _keys_are_consistent(self) -> SweepSpec:
        places = {"base": set(self.base), "grid": set(self.grid), "sample": set(self.sample)}
        for (first, a), (second, b) in itertools.combinations(places.items(), 2):
            if a & b:
                key = sorted(a & b)[0]
                raise ValueError(f"{key!r} is in both {first} and {second}; give it once")
        if "dataset" in set().union(*places.values()):
            raise ValueError("'dataset' is set at the top level of the spec, not in base/grid")
        if self.repeats > 1 and ("seed" in self.grid or "seed" in self.sample):
            raise ValueError("repeats > 1 sets the seeds itself; remove seed from grid/sample")
        self._check_search()
        if self.trainer == DEFAULT_TRAINER and self.dataset is None:
            raise ValueError("dataset is required with the built-in trainer")
        if self.checkpoint != "off" and self.trainer != DEFAULT_TRAINER:
            raise ValueError(f"checkpoint: {self.checkpoint} is for the built-in trainer only,"
                             f" not {self.trainer!r}; set checkpoint: off")  # fmt: skip
        if self.dataset is not None and self.dataset not in DATASETS:
            raise ValueError(
                f"dataset must be one of {', '.join(DATASETS)} or null (the trainer loads its"
                f" own data); got {self.dataset!r}"
            )
        return self

    def _check_search(self) -> None:
        earlier: list[str] = list(self.grid)
        for key, sampled in self.sample.items():
            for condition in sampled.when or {}:
                if condition not in earlier:
                    raise ValueError(
                        f"sample.{key}.when: {condition!r} must be a key of grid or of sample"
                        f" before {key!r}; swept before it: {', '.join(earlier) or 'nothing'}"
                    )
            earlier.append(key)
        if self.search != "grid" and not earlier:
            raise ValueError(f"search: {self.search} needs a grid or sample to search")
        if self.search == "tpe" and self.repeats > 1:
            raise ValueError(
                f"search: tpe proposes each configuration once; repeats must be 1, got"
                f" {self.repeats} (a grid or random search repeats its configurations)"
            )

    @property
    def seeds(self) -> list[int]:
        """The seeds of the repeats: the base seed, then the next ones."""
        first = int(self.base.get("seed", 0))
        return [first + i for i in range(self.repeats)]

    @property
    def swept(self) -> list[str]:
        """The parameters that vary between trials, in the order the spec gives them."""
        return [*self.grid, *self.sample, *(["seed"] if self.repeats > 1 else [])]

    @property
    def trial_count(self) -> int:
        grid = math.prod(len(values) for values in self.grid.values())
        if self.search != "grid":  # each sample is one configuration (times its seeds)
            grid = 1
        return grid * self.repeats * self.num_samples


def parse_spec(data: Any, source: str) -> SweepSpec:
    if not isinstance(data, Mapping):
        raise SpecError(f"{source}: a spec is a mapping of keys, got {type(data).__name__}")
    for path, value in _numbers(data):
        if not math.isfinite(value):
            raise SpecError(f"{source}: {path} must be a finite number, got {value}")
    try:
        spec = SweepSpec.model_validate(dict(data))
    except ValidationError as error:
        raise SpecError(f"{source}: {_first_error(error)}") from None
    count = spec.trial_count
    if count > MAX_CONFIGS:
        what = ("the grid has" if spec.num_samples == 1 and spec.search == "grid"
                else f"{spec.num_samples} samples make")  # fmt: skip
        raise SpecError(f"{source}: {what} {count} configurations, more than {MAX_CONFIGS}")
    return spec


def _numbers(value: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """Every float in a spec's data, with where it sits: `base.lr`, `grid.lr[1]`."""
    if isinstance(value, float):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _numbers(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _numbers(item, f"{path}[{index}]")


_UNION_MEMBER = re.compile(r"^(constrained-\w+|literal\[.*\]|[a-z]+-[a-z]+\[.*\])$")


def _first_error(error: ValidationError) -> str:
    detail = error.errors()[0]
    # A union's member is named in the location ("max_bundle.constrained-int"): drop it.
    parts = [str(part) for part in detail["loc"] if not _UNION_MEMBER.match(str(part))]
    location = ".".join(parts)
    message = detail["msg"].removeprefix("Value error, ")
    if detail["type"] == "extra_forbidden":
        return f"unknown key {location!r}"
    if not location:
        return message
    return f"{location}: {message} (got {detail['input']!r})"


def preset_names() -> list[str]:
    return sorted(path.stem for path in PRESETS_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise SpecError(f"no preset {name!r}; presets: {', '.join(preset_names())}")
    return path


def load_spec(name_or_path: str) -> SweepSpec:
    """A spec from a YAML file, the preset of that name, or `env:VAR` (YAML in an
    environment variable: how `sweeps submit` hands a resolved spec to the cluster)."""
    if name_or_path.startswith("env:"):
        variable = name_or_path.removeprefix("env:")
        if variable not in os.environ:
            raise SpecError(f"environment variable {variable!r} (the spec) is not set")
        try:
            return parse_spec(read_yaml(os.environ[variable]), name_or_path)
        except yaml.YAMLError as error:
            raise SpecError(f"{name_or_path}: {_yaml_problem(error)}") from None
    path = Path(name_or_path)
    if not path.is_file():
        if path.suffix in (".yaml", ".yml") or path.parent != Path("."):
            raise SpecError(f"spec file {name_or_path!r} does not exist")
        if name_or_path not in preset_names():
            raise SpecError(
                f"{name_or_path!r} is neither a spec file nor a preset;"
                f" presets: {', '.join(preset_names())}"
            )
        path = preset_path(name_or_path)
    try:
        data = read_yaml(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(f"cannot read spec file {str(path)!r}: {error}") from None
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: {_yaml_problem(error)}") from None
    return parse_spec(data, str(path))


RUN_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
MAX_RUN_ID = 100


def check_run_id(run_id: str) -> str:
    """The run id, if it is a plain name: it becomes a directory under the results, so a
    slash or a leading dot would put the run somewhere else (or hide it)."""
    if not RUN_ID.fullmatch(run_id):
        raise SpecError(f"--run-id must be a plain name (letters, digits, . _ -), got {run_id!r}")
    if len(run_id) > MAX_RUN_ID:
        raise SpecError(
            f"--run-id must be at most {MAX_RUN_ID} characters, got {len(run_id)}: {run_id!r}"
        )
    return run_id


def to_yaml(spec: SweepSpec) -> str:
    """The resolved spec, defaults included: what a run saves beside its results."""
    return yaml.safe_dump(
        spec.model_dump(mode="json"), sort_keys=False, default_flow_style=None, width=100
    )
