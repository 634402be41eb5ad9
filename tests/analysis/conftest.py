"""Frames of trials that several analysis test files draw."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.helpers.runs import trial_row


@pytest.fixture
def grid_trials() -> pd.DataFrame:
    """lr x activation, one seed: a grid of two axes, activation categorical."""
    rows = [
        trial_row(f"g{i}", 0.9 + 0.01 * i, lr=lr, activation=name, seed=0)
        for i, (lr, name) in enumerate((lr, n) for lr in (0.01, 0.1) for n in ("tanh", "relu"))
    ]
    return pd.DataFrame(rows)
