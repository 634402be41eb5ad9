"""A bundle is checked before it trains (what may fuse: tests/trainers/test_config.py).
That each member trains as the plain reference loop would is tests/trainers/test_step.py;
a bundle's results coming back in the given order, tests/trainers/test_bundle.py."""

from __future__ import annotations

import pytest

from trainers import ConfigError, train_members


def test_a_bundle_is_checked_before_any_training(digits) -> None:
    first = {"dataset": "digits", "batch_size": 64, "epochs": 1}
    with pytest.raises(ConfigError, match="share epochs; got 1 and 2"):
        train_members([first, {**first, "epochs": 2}], digits)
