from __future__ import annotations

import re

import pytest

from trainers import ConfigError, TrainConfig, train
from trainers.config import check_fusable, fusion_key


def test_defaults_resolve_to_model_a_with_keras_learning_rates() -> None:
    config = TrainConfig.from_dict({})
    assert (config.model, config.hidden, config.activation) == ("mlp", (64,), "sigmoid")
    assert config.lr == 0.01  # Keras' SGD default
    assert TrainConfig.from_dict({"optimizer": "adam"}).lr == 0.001
    assert TrainConfig.from_dict({"loss": "mean_squared_error"}).loss == "mse"


def test_to_dict_round_trips() -> None:
    config = TrainConfig.from_dict({"hidden": [1000, 1000], "lr": 0.5, "validation_split": 0.1})
    assert TrainConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"activation": "swish"}, "activation must be one of sigmoid, relu"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of sgd, adam; got 'rmsprop'"),
        ({"loss": "hinge"}, "loss must be one of categorical_crossentropy"),
        (
            {"dataset": "cifar10"},
            "dataset must be one of mnist, fashion_mnist, digits; got 'cifar10'",
        ),
        ({"model": "resnet"}, "model must be one of mlp, cnn1, cnn2, cnn3; got 'resnet'"),
        ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
        ({"batch_size": 1.5}, "batch_size must be an integer, got 1.5"),
        ({"epochs": 0}, "epochs must be >= 1, got 0"),
        ({"lr": 0}, "lr must be > 0, got 0"),
        ({"lr": -0.1}, "lr must be > 0, got -0.1"),
        ({"lr": "fast"}, "lr must be a number, got 'fast'"),
        ({"validation_split": 1.0}, "validation_split must be in [0, 1), got 1.0"),
        ({"hidden": [64, 0]}, "hidden widths must be integers >= 1, got 0 in [64, 0]"),
        ({"hidden": "wide"}, "hidden must be a list of layer widths, got 'wide'"),
        ({"shuffle": "yes"}, "shuffle must be true or false, got 'yes'"),
        ({"device": "tpu"}, "device must be one of auto, cpu, cuda; got 'tpu'"),
        ({"threads": 0}, "threads must be >= 1, got 0"),
        ({"bach_size": 8}, "unknown config key 'bach_size'"),
    ],
)
def test_bad_config_names_key_and_value(config: dict, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        TrainConfig.from_dict(config)
    assert message in str(raised.value)


def test_train_rejects_bad_config_before_any_epoch(digits) -> None:
    reports: list[dict] = []
    with pytest.raises(ConfigError, match="activation must be one of"):
        train({"dataset": "digits", "activation": "swish"}, digits, reports.append)
    # digits has 1,497 training images.
    with pytest.raises(ConfigError, match=r"batch_size must be <= the training split \(1497"):
        train({"dataset": "digits", "batch_size": 1498}, digits, reports.append)
    with pytest.raises(ConfigError, match=r"batch_size must be <= the training split \(1348"):
        train({"dataset": "digits", "batch_size": 1400, "validation_split": 0.1}, digits)
    with pytest.raises(ConfigError, match="model 'cnn1' does not fit 'digits'"):
        train({"dataset": "digits", "model": "cnn1"}, digits, reports.append)
    with pytest.raises(ConfigError, match="dataset is 'mnist' but the data given is 'digits'"):
        train({"dataset": "mnist"}, digits, reports.append)
    assert reports == []


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


def test_fusion_key_ignores_only_the_fusable_keys() -> None:
    def key(**config):
        return fusion_key(TrainConfig.from_dict(config))

    assert key(activation="relu", lr=0.1, loss="mse") == key(kernel_initializer="he_uniform")
    assert key(seed=1) == key(seed=2)  # repeats fuse: each member has its own batch order
    assert key(batch_size=32) != key(batch_size=64)
    assert key(graphs="off") != key(graphs="auto")
    assert key(model="cnn1") is None
