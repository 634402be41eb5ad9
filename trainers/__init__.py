"""PyTorch trainers for the reports' experiments. Knows torch and torchvision, not Ray.

A trainer is `train(config, dataset=None, report=None) -> final metrics`: a plain function
of a config mapping that calls `report(metrics)` once per epoch. `train_members(configs, ...)`
trains several same-shape MLP configurations as one stacked model (trainers.fused), with
the same loop (trainers.train).

The names below are imported when first asked for: the sweep specs read trainers.config
(torch-free) and the command line must not wait for torch.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_HOMES = {
    "DEFAULTS": "trainers.config",
    "ConfigError": "trainers.config",
    "TrainConfig": "trainers.config",
    "check_config": "trainers.config",
    "DATA_DIR_ENV": "trainers.data",
    "DataNotFoundError": "trainers.data",
    "Dataset": "trainers.data",
    "load_dataset": "trainers.data",
    "train": "trainers.train",
    "train_members": "trainers.train",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'trainers' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


class _Package(types.ModuleType):
    """Importing the submodule trainers.train binds the package's `train` to that module;
    the package's `train` stays the function, as it was when this file imported it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "train" and isinstance(value, types.ModuleType):
            value = value.train
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
