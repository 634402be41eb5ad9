"""What may fuse. That each member trains as the plain reference loop would is
tests/trainers/test_step.py; a bundle's results coming back in the given order,
tests/trainers/test_bundle.py."""

from __future__ import annotations

import re

import pytest

from trainers import ConfigError, train_members
from trainers.config import TrainConfig
from trainers.fused import check_fusable, fusion_key


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({"batch_size": 32}, "share batch_size; got 64 and 32"),
        ({"epochs": 3}, "share epochs; got 20 and 3"),
        ({"hidden": [32]}, "share hidden; got (64,) and (32,)"),
        ({"optimizer": "adam"}, "share optimizer; got 'sgd' and 'adam'"),
        ({"model": "cnn1"}, "only MLPs fuse; got model 'cnn1'"),
    ],
)
def test_configurations_that_cannot_fuse_are_refused(second, message) -> None:
    first = {"batch_size": 64}
    configs = [TrainConfig.from_dict(first), TrainConfig.from_dict({**first, **second})]
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_fusable(configs)


def test_a_bundle_is_checked_before_any_training(digits) -> None:
    first = {"dataset": "digits", "batch_size": 64, "epochs": 1}
    with pytest.raises(ConfigError, match="share epochs; got 1 and 2"):
        train_members([first, {**first, "epochs": 2}], digits)


def test_fusion_key_ignores_only_the_fusable_keys() -> None:
    def key(**config):
        return fusion_key(TrainConfig.from_dict(config))

    assert key(activation="relu", lr=0.1, loss="mse") == key(kernel_initializer="he_uniform")
    assert key(seed=1) == key(seed=2)  # repeats fuse: each member has its own batch order
    assert key(batch_size=32) != key(batch_size=64)
    assert key(graphs="off") != key(graphs="auto")
    assert key(model="cnn1") is None
