"""Rendering, checked as text on a fixed-width console."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from rich.console import Console

from analysis import find_threshold
from analysis.render import csv, markdown, rich_table, threshold_block


def render(renderable: object, width: int = 80) -> str:
    """The text a terminal of `width` columns shows, without trailing blanks."""
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines()) + "\n"


FRAME = pd.DataFrame({
    "activation": ["relu", "tanh"],
    "runs": [3, 1],
    "val_accuracy": [0.97123, 0.96],
    "val_accuracy_std": [0.0012, np.nan],
    "params": [50890, 50890],
    "train_time_s": [12.345, 11.0],
    "diff1": [-0.0021, np.nan],
})  # fmt: skip


def test_rich_table_text() -> None:
    assert render(rich_table(FRAME, "activations", ["report A"])) == (
        "activations\n"
        "┏━━━━━━━━━━━━┳━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━━━━┓\n"
        "┃ activation ┃ runs ┃    val_accuracy ┃ params ┃ train_time_s ┃   diff1 ┃\n"
        "┡━━━━━━━━━━━━╇━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━━━┩\n"
        "│ relu       │    3 │ 0.9712 ± 0.0012 │ 50,890 │         12.3 │ -0.0021 │\n"
        "│ tanh       │    1 │          0.9600 │ 50,890 │         11.0 │       - │\n"
        "└────────────┴──────┴─────────────────┴────────┴──────────────┴─────────┘\n"
        "ref1: report A\n"
    )


def test_markdown_and_csv_text() -> None:
    assert markdown(FRAME, ["report A"]) == (
        "| activation | runs | val_accuracy | params | train_time_s | diff1 |\n"
        "|---|---|---|---|---|---|\n"
        "| relu | 3 | 0.9712 ± 0.0012 | 50,890 | 12.3 | -0.0021 |\n"
        "| tanh | 1 | 0.9600 | 50,890 | 11.0 | - |\n"
        "\nref1: report A\n"
    )
    assert csv(FRAME.iloc[:1]).splitlines() == [
        "activation,runs,val_accuracy,val_accuracy_std,params,train_time_s,diff1",
        "relu,3,0.97123,0.0012,50890,12.345,-0.0021",
    ]


def test_threshold_block_shows_both_answers_with_repeats() -> None:
    frame = pd.DataFrame({
        "batch_size": [64] * 2 + [32] * 2 + [16] * 2,
        "val_accuracy": [0.950, 0.952, 0.960, 0.962, 0.9605, 0.9625],
    })  # fmt: skip
    text = render(threshold_block(find_threshold(frame)), width=140)
    assert "Change in accuracy from 32 to 64: 0.0100" in text
    assert "Potential threshold for insignificant accuracy change: Batch size 16" in text
    assert (
        "Noise-aware answer (a change inside the 95% seed-to-seed noise counts as"
        " insignificant): batch_size 16 with val_accuracy 0.9615"
    ) in text
    assert "report's rule, noise-aware" in text
