"""Where a value sits on a figure, its colour and its label: the same in every figure."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import rgb_to_hsv

from analysis.scales import colours, config_label, log_base, ordered, series_colours


def test_numbers_ascend_and_categories_keep_the_specs_order() -> None:
    assert ordered([64, 8, np.int64(512), 8]) == [8, 64, 512]
    assert ordered(["relu", "tanh", "sigmoid", "relu"], ["sigmoid", "relu"]) == [
        "sigmoid", "relu", "tanh"]  # fmt: skip  # a value the spec does not list comes last
    assert ordered([[64, 64], [10]]) == [(10,), (64, 64)]  # lists as one value each, by text


@pytest.mark.parametrize(
    ("values", "base"),
    [
        ([8, 16, 1024], 2),  # batch sizes: powers of two
        ([0.001, 0.01, 0.5], 10),  # learning rates over decades
        ([0.1, 0.3, 0.5], None),  # less than tenfold
        ([0, 1, 10], None),  # a zero has no place on a log axis
        (["relu", "tanh"], None),
        ([64], None),
    ],
)
def test_a_log_axis_only_where_the_values_span_powers(values: list, base: int | None) -> None:
    assert log_base(values) == base


def test_numbers_get_a_sequential_map_and_categories_distinct_hues() -> None:
    numeric = colours([8, 64, 512])
    brightness = [rgb_to_hsv(numeric[v][:3])[2] for v in (8, 64, 512)]
    assert brightness == sorted(brightness) and brightness[0] < brightness[-1]  # dark to light
    named = colours(["relu", "tanh", "sigmoid"])
    assert len({named[v] for v in named}) == 3
    # One swept axis: a series has the colour its value has in every other figure.
    assert series_colours([(8,), (64,), (512,)]) == {(v,): numeric[v] for v in (8, 64, 512)}


def test_a_label_tells_the_values_of_its_key_apart() -> None:
    row = {"lr": 7.9e-05, "batch_size": 64}
    assert config_label(row, ["lr", "batch_size"], {"lr": [7.9e-05, 0.00011]}) == (
        "lr=7.9e-05, batch_size=64"
    )
    assert config_label(row, []) == "all trials"
