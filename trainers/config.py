"""The training config: one plain mapping, validated into a frozen dataclass before any work.

Every key, its default and its meaning live in `DEFAULTS` below, so the config saved
with a run is self-explanatory. Errors name the key and the bad value. `check_config`
also checks it against the data it will train on.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

# torch is imported by the checks that build a model: the sweep specs read this module's
# names, and the command line does not wait for torch.
if TYPE_CHECKING:
    from trainers.data import Dataset

DATASETS = ("mnist", "fashion_mnist", "digits")
MODELS = ("mlp", "cnn1", "cnn2", "cnn3")
ACTIVATIONS = (
    "sigmoid",
    "relu",
    "tanh",
    "leaky_relu",
    "selu",
    "elu",
    "exponential",
    "linear",
    "softmax",
)
OPTIMIZERS = ("sgd", "adam")
# Keras names. Both cross-entropies are the same loss here: labels are integers either way.
LOSSES = ("categorical_crossentropy", "sparse_categorical_crossentropy", "mse")
LOSS_ALIASES = {"mean_squared_error": "mse", "cross_entropy": "categorical_crossentropy"}
INITIALIZERS = ("glorot_uniform", "he_uniform")
DEVICES = ("auto", "cpu", "cuda")
GRAPHS = ("auto", "off")
# Keras' default learning rates, used when `lr` is not given.
DEFAULT_LR = {"sgd": 0.01, "adam": 0.001}

DEFAULTS: dict[str, Any] = {
    "dataset": "mnist",  # mnist | fashion_mnist | digits (8x8, ships with scikit-learn)
    "model": "mlp",  # mlp | cnn1 | cnn2 | cnn3 (EXPERIMENTS.md)
    "hidden": [64],  # mlp: widths of the hidden Dense layers
    "activation": "sigmoid",  # mlp: activation of every hidden layer
    "kernel_initializer": "glorot_uniform",  # mlp hidden layers; Keras' default
    "optimizer": "sgd",  # sgd (plain, no momentum) | adam (Keras defaults, eps 1e-7)
    "lr": None,  # None: Keras' default for the optimizer (sgd 0.01, adam 0.001)
    "loss": "categorical_crossentropy",  # or mse, on the softmax output vs one-hot
    "batch_size": 64,
    "epochs": 20,
    "validation_split": 0.0,  # 0: validate on the test set (report A); 0.1: hold out 10% (B)
    "seed": 0,  # the initial weights and the batch order
    "shuffle": True,  # a fresh seeded permutation of the training split every epoch
    "device": "auto",  # auto: CUDA when visible, else CPU
    "graphs": "auto",  # auto: capture the training steps as CUDA graphs on a GPU; off: eager
    "threads": None,  # CPU threads; None: OMP_NUM_THREADS, else the CPUs we may use
    "data_dir": None,  # None: SWEEPS_DATA_DIR, else ~/.cache/sweeps/data
    "download": True,  # fetch MNIST/Fashion-MNIST when absent (needs the internet)
}


class ConfigError(ValueError):
    """A config key has a bad value; the message names the key and the value."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    dataset: str
    model: str
    hidden: tuple[int, ...]
    activation: str
    kernel_initializer: str
    optimizer: str
    lr: float
    loss: str
    batch_size: int
    epochs: int
    validation_split: float
    seed: int
    shuffle: bool
    device: str
    graphs: str
    threads: int | None
    data_dir: str | None
    download: bool

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> TrainConfig:
        unknown = sorted(set(config) - set(DEFAULTS))
        if unknown:
            raise ConfigError(
                f"unknown config key {unknown[0]!r}; known keys: {', '.join(DEFAULTS)}"
            )
        merged = {**DEFAULTS, **config}
        optimizer = _choice(merged, "optimizer", OPTIMIZERS)
        loss = LOSS_ALIASES.get(merged["loss"], merged["loss"])
        lr = DEFAULT_LR[optimizer] if merged["lr"] is None else _number(merged, "lr")
        if lr <= 0:
            raise ConfigError(f"lr must be > 0, got {merged['lr']!r}")
        split = _number(merged, "validation_split")
        if not 0.0 <= split < 1.0:
            raise ConfigError(f"validation_split must be in [0, 1), got {split!r}")
        if isinstance(merged["graphs"], bool):  # YAML 1.1 reads a bare `off` as false
            merged["graphs"] = "auto" if merged["graphs"] else "off"
        threads = merged["threads"]
        if threads is not None:
            threads = _integer(merged, "threads", minimum=1)
        return cls(
            dataset=_choice(merged, "dataset", DATASETS),
            model=_choice(merged, "model", MODELS),
            hidden=_widths(merged["hidden"]),
            activation=_choice(merged, "activation", ACTIVATIONS),
            kernel_initializer=_choice(merged, "kernel_initializer", INITIALIZERS),
            optimizer=optimizer,
            lr=lr,
            loss=_choice({**merged, "loss": loss}, "loss", LOSSES),
            batch_size=_integer(merged, "batch_size", minimum=1),
            epochs=_integer(merged, "epochs", minimum=1),
            validation_split=split,
            seed=_integer(merged, "seed", minimum=0),
            shuffle=_boolean(merged, "shuffle"),
            device=_choice(merged, "device", DEVICES),
            graphs=_choice(merged, "graphs", GRAPHS),
            threads=threads,
            data_dir=None if merged["data_dir"] is None else str(merged["data_dir"]),
            download=_boolean(merged, "download"),
        )

    def to_dict(self) -> dict[str, Any]:
        resolved = dataclasses.asdict(self)
        resolved["hidden"] = list(self.hidden)
        return resolved


def check_config(config: Mapping[str, Any], dataset: Dataset) -> TrainConfig:
    """Validate `config` against the data it will train on; ConfigError names the bad value.

    Cheap enough to run on every configuration of a sweep before any trial starts.
    """
    cfg = TrainConfig.from_dict(config)
    if dataset.name != cfg.dataset:
        raise ConfigError(f"dataset is {cfg.dataset!r} but the data given is {dataset.name!r}")
    train_count = math.ceil(len(dataset.train_labels) * (1 - cfg.validation_split))
    if cfg.batch_size > train_count:
        raise ConfigError(
            f"batch_size must be <= the training split ({train_count} {cfg.dataset} images),"
            f" got {cfg.batch_size}"
        )
    if cfg.model != "mlp":  # an MLP fits any image; a CNN's layers must not shrink to nothing
        import torch

        from trainers.models import build_model

        try:
            build_model(
                cfg.model,
                dataset.image_shape,
                (),
                "relu",
                "glorot_uniform",
                torch.Generator(),
                torch.device("cpu"),
            )
        except ValueError as error:
            raise ConfigError(
                f"model {cfg.model!r} does not fit {cfg.dataset!r}: {error}"
            ) from error
    return cfg


def checked_configs(
    configs: Sequence[Mapping[str, Any]], dataset: Dataset | None
) -> tuple[list[TrainConfig], Dataset]:
    """The configs validated against `dataset`, loaded from the first one's data root when
    not given (a sweep passes the one its driver loaded)."""
    if dataset is None:
        from trainers.data import load_dataset

        first = TrainConfig.from_dict(configs[0])
        dataset = load_dataset(first.dataset, first.data_dir, first.download)
    return [check_config(config, dataset) for config in configs], dataset


def _choice(config: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = config[key]
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _integer(config: Mapping[str, Any], key: str, minimum: int) -> int:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{key} must be >= {minimum}, got {value!r}")
    return value


def _number(config: Mapping[str, Any], key: str) -> float:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    return float(value)


def _boolean(config: Mapping[str, Any], key: str) -> bool:
    value = config[key]
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return value


def _widths(value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ConfigError(f"hidden must be a list of layer widths, got {value!r}")
    for width in value:
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ConfigError(f"hidden widths must be integers >= 1, got {width!r} in {value!r}")
    return tuple(value)


# Keys whose values may differ between the members of one bundle.
FUSABLE_KEYS = ("activation", "lr", "loss", "kernel_initializer", "seed")


def fusion_key(cfg: TrainConfig) -> tuple[Any, ...] | None:
    """Configurations with equal keys can train as one bundle; None: this one cannot
    (only MLPs fuse)."""
    if cfg.model != "mlp":
        return None
    return tuple(
        (key, value) for key, value in dataclasses.asdict(cfg).items() if key not in FUSABLE_KEYS
    )


def check_fusable(cfgs: Sequence[TrainConfig]) -> None:
    """ConfigError naming the first key on which the configurations may not differ."""
    for cfg in cfgs:
        if cfg.model != "mlp":
            raise ConfigError(f"only MLPs fuse; got model {cfg.model!r}")
    first = dataclasses.asdict(cfgs[0])
    for cfg in cfgs[1:]:
        for key, value in dataclasses.asdict(cfg).items():
            if key not in FUSABLE_KEYS and value != first[key]:
                raise ConfigError(
                    f"configurations fuse only when they share {key}; got {first[key]!r}"
                    f" and {value!r}"
                )
