from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sweeps.plan.groups import configurations
from sweeps.plan.overrides import parse_override
from sweeps.plan.spec import (
    SpecError,
    check_run_id,
    load_spec,
    parse_spec,
    preset_names,
    to_yaml,
)

MINIMAL = {"name": "tiny", "dataset": "digits", "base": {"epochs": 1}}


def test_grid_is_the_cartesian_product_and_repeats_add_seeds() -> None:
    spec = parse_spec(
        {**MINIMAL, "grid": {"batch_size": [8, 16, 32], "activation": ["relu", "tanh"]},
         "repeats": 2},
        "test",
    )  # fmt: skip
    configs = configurations(spec)
    assert spec.trial_count == len(configs) == 12
    combos = {(c["batch_size"], c["activation"], c["seed"]) for c in configs}
    assert combos == {(b, a, s) for b in (8, 16, 32) for a in ("relu", "tanh") for s in (0, 1)}
    assert all(c["dataset"] == "digits" and c["epochs"] == 1 for c in configs)
    assert spec.swept == ["batch_size", "activation", "seed"]


def test_sampled_parameters_count_num_samples() -> None:
    spec = parse_spec(
        {**MINIMAL, "grid": {"batch_size": [8, 16]}, "num_samples": 3,
         "sample": {"lr": {"loguniform": [0.001, 0.1]}, "activation": {"choice": ["relu"]}}},
        "test",
    )  # fmt: skip
    assert spec.trial_count == 6
    assert spec.swept == ["batch_size", "lr", "activation"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"grid": {"batch_size": list(range(1, 102)), "lr": [0.001 * i for i in range(1, 101)]}},
         "test: the grid has 10100 configurations, more than 10000"),
        # Sampled specs count their samples: 2 x 5001 passed the cap before.
        ({"grid": {"batch_size": [8, 16]}, "num_samples": 5001,
          "sample": {"lr": {"loguniform": [0.001, 0.1]}}},
         "test: 5001 samples make 10002 configurations, more than 10000"),
    ],
)  # fmt: skip
def test_configuration_cap_counts_grid_repeats_and_samples(extra: dict, message: str) -> None:
    with pytest.raises(SpecError) as error:
        parse_spec({**MINIMAL, **extra}, "test")
    assert str(error.value) == message


def test_resolved_spec_round_trips_through_yaml() -> None:
    for name in preset_names():
        spec = load_spec(name)
        assert parse_spec(yaml.safe_load(to_yaml(spec)), name) == spec


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**MINIMAL, "gird": {}}, "unknown key 'gird'"),
        ({**MINIMAL, "grid": {"batch_size": []}}, "grid.batch_size: List should have at least 1"),
        ({**MINIMAL, "repeats": "three"}, "repeats: Input should be a valid integer"),
        ({**MINIMAL, "num_samples": 0}, "num_samples: Input should be greater than or equal to 1"),
        ({**MINIMAL, "resources": {"gpus": -1}}, "resources.gpus"),
        (
            {**MINIMAL, "sample": {"lr": {"uniform": [0.1, 0.2], "choice": [1]}}},
            "give exactly one of choice, uniform, loguniform",
        ),
        ({**MINIMAL, "sample": {"lr": {"loguniform": [0.1, 0.01]}}}, "low < high"),
        ({**MINIMAL, "grid": {"epochs": [1, 2]}}, "'epochs' is in both base and grid"),
        ({**MINIMAL, "dataset": "cifar10"}, "dataset must be one of mnist, fashion_mnist, digits"),
        ({**MINIMAL, "name": "my sweep"}, "name: String should match pattern"),
        ({**MINIMAL, "trainer": "no-colon"}, "trainer: String should match pattern"),
        ({**MINIMAL, "repeats": 2, "grid": {"seed": [1, 2]}}, "repeats > 1 sets the seeds"),
        ({**MINIMAL, "scheduler": "hyperband"}, "scheduler: Input should be 'fifo' or 'asha'"),
        ({**MINIMAL, "fuse": "yes"}, "fuse: Input should be 'auto' or 'off'"),
        ({**MINIMAL, "max_bundle": 0}, "max_bundle"),
        (["not", "a", "mapping"], "a spec is a mapping of keys, got list"),
        ({**MINIMAL, "base": {"lr": float("nan")}}, "base.lr must be a finite number, got nan"),
        ({**MINIMAL, "grid": {"lr": [0.1, float("inf")]}}, "grid.lr[1] must be a finite number"),
        (
            {**MINIMAL, "sample": {"lr": {"uniform": [0.1, float("inf")]}}},
            "sample.lr.uniform[1] must be a finite number, got inf",
        ),
        (
            {**MINIMAL, "base": {"epochs": 1, "opt": {"betas": [0.9, -float("inf")]}}},
            "base.opt.betas[1] must be a finite number, got -inf",
        ),
        ({**MINIMAL, "resources": {"cpus": "inf"}}, "resources.cpus: Input should be a finite"),
        ({**MINIMAL, "resources": {"gpus": 1.5}}, "a fraction must be below 1"),
        ({**MINIMAL, "resources": {"gpus": 2.25}}, "(got 2.25)"),
    ],
)
def test_bad_specs_name_the_problem(data: object, message: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_spec(data, "bad.yaml")
    text = str(raised.value)
    assert text.startswith("bad.yaml: ") and message in text and "\n" not in text


@pytest.mark.parametrize("gpus", [0, 0.25, 0.5, 1, 2, 2.0, "auto"])
def test_gpus_are_a_fraction_or_whole(gpus: float | str) -> None:
    assert parse_spec({**MINIMAL, "resources": {"gpus": gpus}}, "t").resources.gpus == gpus


def test_duplicate_keys_are_refused_with_their_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\ndataset: digits\nbase:\n  epochs: 1\n  lr: 0.1\n  lr: 0.5\n")
    with pytest.raises(SpecError) as raised:
        load_spec(str(spec))
    assert str(raised.value) == f"{spec}: duplicate key 'lr' at line 6"
    monkeypatch.setenv("SPEC", "name: x\nname: y\n")
    with pytest.raises(SpecError, match=r"^env:SPEC: duplicate key 'name' at line 2$"):
        load_spec("env:SPEC")
    with pytest.raises(SpecError, match=r"^--set 'hidden=\{a: 1, a: 2\}': duplicate key 'a'$"):
        parse_override("hidden={a: 1, a: 2}")


def test_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: x\ndataset: digits\nbase: &b {epochs: 1, lr: 0.1}\n"
        "reference: [{source: r, rows: [{<<: *b, lr: 0.5}]}]\n"
    )
    assert load_spec(str(spec)).reference[0].rows == [{"epochs": 1, "lr": 0.5}]


@pytest.mark.parametrize("run_id", ["20261122-004609-8bb2", "a", "x.y_z-1", "_", "a" * 100])
def test_check_run_id_accepts_plain_names(run_id: str) -> None:
    assert check_run_id(run_id) == run_id


@pytest.mark.parametrize("run_id", ["../../x", "a/b", "", "..", ".", ".hidden", "a b",
                                    "a\\b", "x\n", "é"])  # fmt: skip
def test_check_run_id_refuses_paths(run_id: str) -> None:
    with pytest.raises(SpecError) as raised:
        check_run_id(run_id)
    assert str(raised.value) == (
        f"--run-id must be a plain name (letters, digits, . _ -), got {run_id!r}"
    )


def test_check_run_id_refuses_long_names() -> None:
    with pytest.raises(SpecError, match="--run-id must be at most 100 characters, got 101"):
        check_run_id("a" * 101)


def test_load_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="'nope' is neither a spec file nor a preset"):
        load_spec("nope")
    with pytest.raises(SpecError, match=r"spec file 'missing\.yaml' does not exist"):
        load_spec("missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ngrid: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML at line"):
        load_spec(str(broken))


@pytest.mark.parametrize(
    ("line", "pack", "fuse"),
    [("pack: on", "on", "auto"), ("pack: off", "off", "auto"), ("fuse: off", "auto", "off"),
     ("fuse: on", "auto", "auto"), ("pack: 'on'", "on", "auto")],
)  # fmt: skip
def test_bare_on_and_off_in_yaml_mean_what_they_say(line: str, pack: str, fuse: str) -> None:
    """YAML 1.1 reads a bare `on` as true: `pack: on` used to become auto, silently."""
    data = yaml.safe_load(f"name: s\ngrid: {{lr: [0.1]}}\n{line}\n")
    spec = parse_spec(data, "s")
    assert (spec.pack, spec.fuse) == (pack, fuse)
