"""Rendering, checked as text on a fixed-width console."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
from rich.console import Console

from analysis import find_threshold
from analysis.render import Whole, csv, json_text, markdown, records, rich_table, threshold_block


def render(renderable: object, width: int = 80, terminal: bool = False) -> str:
    """The text a pipe (or a terminal) of `width` columns gets, without trailing blanks;
    uncropped, as the CLI prints tables."""
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=terminal)
    console.print(renderable, crop=False)
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


TRIALS = pd.DataFrame({
    "trial_id": ["28653_00000", "28653_00001"],
    "activation": ["relu", "leaky_relu"],
    "batch_size": [1024, 8],
    "lr": [0.001, 0.0001],
    "status": ["done", "done"],
    "val_accuracy": [0.91234, 0.9871],
    "val_loss": [0.2468, 0.1357],
    "train_time_s": [123.45, 1234.5],
})  # fmt: skip


def test_whole_table_through_a_pipe_keeps_every_digit_and_id_on_its_line() -> None:
    assert render(Whole(rich_table(TRIALS)), width=80) == (
        "┏━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━━━━━┳"
        "━━━━━━━━━━━━━━┓\n"
        "┃ trial_id    ┃ activation ┃ batch_size ┃     lr ┃ status ┃ val_accuracy ┃ val_loss ┃"
        " train_time_s ┃\n"
        "┡━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━━━━╇"
        "━━━━━━━━━━━━━━┩\n"
        "│ 28653_00000 │ relu       │       1024 │ 0.0010 │ done   │       0.9123 │   0.2468 │"
        "        123.5 │\n"
        "│ 28653_00001 │ leaky_relu │          8 │ 0.0001 │ done   │       0.9871 │   0.1357 │"
        "       1234.5 │\n"
        "└─────────────┴────────────┴────────────┴────────┴────────┴──────────────┴──────────┴"
        "──────────────┘\n"
    )


def test_a_narrow_terminal_folds_cells_rather_than_cut_them() -> None:
    assert render(Whole(rich_table(TRIALS[["trial_id", "val_accuracy"]])), 20, terminal=True) == (
        "┏━━━━━━━━━┳━━━━━━━━┓\n"
        "┃ trial_i ┃ val_ac ┃\n"
        "┃ d       ┃ curacy ┃\n"
        "┡━━━━━━━━━╇━━━━━━━━┩\n"
        "│ 28653_0 │ 0.9123 │\n"
        "│ 0000    │        │\n"
        "│ 28653_0 │ 0.9871 │\n"
        "│ 0001    │        │\n"
        "└─────────┴────────┘\n"
    )


def test_records_are_plain_json_with_nan_as_null() -> None:
    frame = FRAME.assign(hidden=[(128, 64), (32,)], seed=np.array([1, 2], dtype="int64"))
    rows = json.loads(json_text({"rows": records(frame)}))["rows"]
    assert rows[1] == {"activation": "tanh", "runs": 1, "val_accuracy": 0.96,
                       "val_accuracy_std": None, "params": 50890, "train_time_s": 11.0,
                       "diff1": None, "hidden": [32], "seed": 2}  # fmt: skip
    assert records(FRAME.iloc[:0]) == []


def test_brackets_in_a_source_or_a_cell_are_text_not_markup() -> None:
    """A reference marked "[other settings: ...]" and a list value print as they are."""
    frame = pd.DataFrame({"hidden": [(64,), (128, 128)], "runs": pd.array([1, pd.NA], "Int64")})
    source = "Report A [other settings: measured with epochs=20; this run has epochs=1]"
    assert render(rich_table(frame, "[b]widths[/b]", [source]), width=120) == (
        "[b]widths[/b]\n"
        "┏━━━━━━━━━━━━┳━━━━━━┓\n"
        "┃ hidden     ┃ runs ┃\n"
        "┡━━━━━━━━━━━━╇━━━━━━┩\n"
        "│ [64]       │    1 │\n"
        "│ [128, 128] │    - │\n"
        "└────────────┴──────┘\n"
        "ref1: Report A [other\n"
        "settings: measured\n"
        "with epochs=20; this\n"
        "run has epochs=1]\n"
    )
