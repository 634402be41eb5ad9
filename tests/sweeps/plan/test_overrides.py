"""A spec as the flags change it: `--set`, `--epochs` and the rest."""

from __future__ import annotations

import pytest

from sweeps.plan.overrides import Overrides, override, parse_override
from sweeps.plan.spec import SpecError, load_spec


def test_override_sets_base_values_and_grid_axes() -> None:
    spec = load_spec("report-a-batch-size")
    changed = override(
        spec,
        dict(parse_override(a) for a in ["batch_size=64,512", "lr=0.5", "hidden=[32,32]",
                                           "activation=relu,tanh", "epochs=3"]),
        repeats=2, gpus=0.5,
    )  # fmt: skip
    assert changed.grid == {"batch_size": [64, 512], "activation": ["relu", "tanh"]}
    assert changed.base["lr"] == 0.5 and changed.base["hidden"] == [32, 32]
    assert changed.base["epochs"] == 3 and changed.repeats == 2
    assert changed.resources.gpus == 0.5
    assert spec.grid["batch_size"] == [512, 256, 128, 64, 32, 16, 8]  # the original is kept
    # One value for a grid axis narrows the axis: it stays a swept column.
    assert override(spec, {"batch_size": [64]}).grid == {"batch_size": [64]}


def test_parse_override_reads_yaml_values() -> None:
    assert parse_override("hidden=[64,64]") == ("hidden", [[64, 64]])
    assert parse_override("hidden=[64],[128,128]") == ("hidden", [[64], [128, 128]])
    assert parse_override("lr=0.1,1e-3") == ("lr", [0.1, 0.001])
    assert parse_override("shuffle=false") == ("shuffle", [False])


def test_nan_from_an_override_names_its_place() -> None:
    with pytest.raises(SpecError, match=r"base\.lr must be a finite number, got nan$"):
        override(load_spec("quickstart"), dict([parse_override("lr=.nan")]))


def test_the_flags_are_one_object_applied_once() -> None:
    spec = Overrides(("batch_size=16,32", "lr=0.5"), epochs=2, repeats=2, pack="off",
                     callbacks=("wandb",)).resolve("quickstart")  # fmt: skip
    assert spec.grid["batch_size"] == [16, 32] and spec.base["lr"] == 0.5
    assert spec.base["epochs"] == 2 and spec.repeats == 2 and spec.pack == "off"
    assert spec.callbacks == [*load_spec("quickstart").callbacks, "wandb"]
    with pytest.raises(SpecError, match="quickstart with overrides: "):
        Overrides(repeats=0).resolve("quickstart")


def test_set_chooses_the_search_and_its_budget() -> None:
    spec = Overrides(("search=tpe", "num_samples=12", "lr=0.001,0.1")).resolve("quickstart")
    assert spec.search == "tpe" and spec.num_samples == 12 and spec.trial_count == 12
    assert "search" not in spec.base and spec.grid["lr"] == [0.001, 0.1]
    with pytest.raises(SpecError, match="--set search takes one value, got \\['tpe', 'grid'\\]"):
        Overrides(("search=tpe,grid",)).resolve("quickstart")
    with pytest.raises(SpecError, match="search: Input should be 'grid', 'random' or 'tpe'"):
        Overrides(("search=bayes",)).resolve("quickstart")
