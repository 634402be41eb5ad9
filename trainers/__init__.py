"""PyTorch trainers for the reports' experiments. Knows torch and torchvision, not Ray.

A trainer is `train(config, dataset=None, report=None) -> final metrics`: a plain function
of a config mapping that calls `report(metrics)` once per epoch. `train_members(configs, ...)`
trains several same-shape MLP configurations as one stacked model (trainers.fused), with
the same loop (trainers.train).
"""

from trainers.config import DEFAULTS, ConfigError, TrainConfig, check_config
from trainers.data import DATA_DIR_ENV, DataNotFoundError, Dataset, load_dataset
from trainers.train import train, train_members

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULTS",
    "ConfigError",
    "DataNotFoundError",
    "Dataset",
    "TrainConfig",
    "check_config",
    "load_dataset",
    "train",
    "train_members",
]
