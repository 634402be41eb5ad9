"""PyTorch trainers for the reports' experiments. Knows torch and torchvision, not Ray.

A trainer is `train(config, dataset=None, report=None) -> final metrics`: a plain function
of a config mapping that calls `report(metrics)` once per epoch. `train_fused(configs, ...)`
trains several same-shape MLP configurations as one stacked model (trainers.fused).
"""

from trainers.config import DEFAULTS, ConfigError, TrainConfig
from trainers.data import DATA_DIR_ENV, DataNotFoundError, Dataset, load_dataset
from trainers.fused import train_fused
from trainers.train import check_config, train

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
    "train_fused",
]
