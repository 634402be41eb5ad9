"""analysis.numbers: swept values with the digits that tell them apart, metrics with the
decimals their best and runner-up need; and the tables that print them so, as text."""

from __future__ import annotations

import io
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from analysis.numbers import count, metric_decimals, metric_text, value_text, value_texts
from analysis.render import Whole, markdown, rich_table


def render(renderable: object, width: int = 100) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable, crop=False)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines()) + "\n"


@pytest.mark.parametrize(
    ("values", "texts"),
    [
        ([0.01, 0.1, 0.015], ["0.01", "0.1", "0.015"]),  # typed values as typed
        ([7.9e-05, 1.1e-04], ["7.9e-05", "0.00011"]),  # never both 0.0001
        ([0.008632909096921014, 0.05132], ["0.00863", "0.0513"]),  # sampled: 3 digits
        ([0.12345678, 0.12345679], ["0.12345678", "0.12345679"]),  # as many as it takes
        ([1, 1.0001], ["1", "1.0001"]),  # a float is not printed as an int beside it
        ([1234.5678, 10.5], ["1235", "10.5"]),  # integer digits kept
        ([64, 1024, np.int64(8)], ["64", "1024", "8"]),
        ([(64, 64), "relu", True], ["[64, 64]", "relu", "True"]),
    ],
)
def test_swept_values_print_with_the_digits_that_tell_them_apart(
    values: list[object], texts: list[str]
) -> None:
    assert value_texts(values) == texts
    assert [value_text(v, values) for v in values] == texts


def test_a_value_alone_keeps_four_digits() -> None:
    """A progress line does not know the other values: 4 significant digits."""
    assert value_text(0.008632909096921014) == "0.008633"
    assert value_text(1e-05) == "1e-05" and value_text(0.5) == "0.5"
    assert value_text(np.float64(0.1)) == "0.1" and value_text(20.0) == "20"


@pytest.mark.parametrize(
    ("values", "mode", "decimals"),
    [
        ([0.9195, 0.9329, 0.9477], "max", 4),  # the reports' 4 decimals
        ([0.97123, 0.97124, 0.5], "max", 5),  # best and runner-up apart
        ([0.97123, 0.97124, 0.5, 0.50001], "min", 5),  # the best is the lowest
        ([0.97123, 0.97124, 0.5, 0.6], "min", 4),  # the close pair is not the best
        ([1.2e-05, 3.4e-05], "min", 8),  # 4 significant digits of the largest
        ([123.4567, 99.1], "max", 4),
        ([math.nan, 0.9], "max", 4),
        ([], "max", 4),
    ],
)
def test_metric_decimals(values: list[float], mode: str, decimals: int) -> None:
    assert metric_decimals(values, mode) == decimals


def test_metric_text() -> None:
    assert metric_text(0.97123, 5) == "0.97123"
    assert metric_text(math.nan, 4) == "-" and metric_text(None, 4) == "-"


TABLE = pd.DataFrame({
    "lr": [7.9e-05, 1.1e-04, 0.008632909096921014],
    "width": [32, 64, 64],
    "runs": [2, 2, 2],
    "val_macro_f1": [0.912345, 0.912349, 0.8],
    "val_macro_f1_std": [0.0012, 0.0021, np.nan],
    "val_loss": [0.2, 0.21, 0.3],
    "val_loss_std": [np.nan, np.nan, np.nan],
})  # fmt: skip
LAYOUT = {"keys": ["lr", "width"], "metrics": {"val_macro_f1": "max", "val_loss": "min"}}


def test_a_table_tells_its_configurations_apart() -> None:
    assert render(Whole(rich_table(TABLE, "configurations", **LAYOUT))) == (
        "configurations\n"
        "┏━━━━━━━━━┳━━━━━━━┳━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━┓\n"
        "┃ lr      ┃ width ┃ runs ┃      val_macro_f1 ┃ val_loss ┃\n"
        "┡━━━━━━━━━╇━━━━━━━╇━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━┩\n"
        "│ 7.9e-05 │    32 │    2 │ 0.91234 ± 0.00120 │   0.2000 │\n"
        "│ 0.00011 │    64 │    2 │ 0.91235 ± 0.00210 │   0.2100 │\n"
        "│ 0.00863 │    64 │    2 │           0.80000 │   0.3000 │\n"
        "└─────────┴───────┴──────┴───────────────────┴──────────┘\n"
    )
    assert markdown(TABLE.iloc[:2], **LAYOUT).splitlines()[2] == (
        "| 7.9e-05 | 32 | 2 | 0.91234 ± 0.00120 | 0.2000 |"
    )


def test_the_progress_lines_print_a_sampled_value_briefly() -> None:
    """sweeps.record.progress names a configuration by its swept values, value_text each."""
    from sweeps.record.progress import LiveProgress

    shown = SimpleNamespace(swept=["lr", "width", "hidden"])
    config = {"lr": 0.008632909096921014, "width": 64, "hidden": [64, 64]}
    assert LiveProgress._config(shown, config) == "lr=0.008633 width=64 hidden=[64, 64]"  # type: ignore[arg-type]


def test_a_count_names_one_thing_in_the_singular() -> None:
    assert [count(n, "trial") for n in (0, 1, 2, 10_000_000)] == [
        "0 trials", "1 trial", "2 trials", "10000000 trials"]  # fmt: skip
    assert [count(n, "GPU") for n in (0.5, 1.0, 2.0)] == ["0.5 GPUs", "1 GPU", "2 GPUs"]
