"""The machine a bundle trains on: its device, its threads, fp32 pinned and recorded."""

from __future__ import annotations

import os

import pytest
import torch

from trainers import ConfigError, train
from trainers.device import device_name, resolve_device, resolve_threads


def test_fp32_is_pinned_and_recorded(digits) -> None:
    """cuDNN's convolutions default to TF32 (about 1e-3 relative) on Ampere and later:
    the trainer turns it off for matmuls and convolutions and says so in every row."""
    torch.backends.cudnn.conv.fp32_precision = "tf32"  # torch's default for cuDNN
    final = train({"dataset": "digits", "device": "cpu", "epochs": 1}, digits)
    assert final["precision"] == "fp32 (matmul ieee, conv ieee)"
    assert torch.backends.cudnn.conv.fp32_precision == "ieee"
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"


def test_threads_as_configured_else_as_ray_says_else_every_cpu(monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert resolve_threads(5) == 5
    assert resolve_threads(None) == 3
    for unset in ("", "0", "many"):
        monkeypatch.setenv("OMP_NUM_THREADS", unset)
        assert resolve_threads(None) == len(os.sched_getaffinity(0))


def test_the_device_is_cuda_only_where_one_is_visible(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="device is 'cuda' but no CUDA device is visible"):
        resolve_device("cuda")
    assert device_name(torch.device("cpu"))  # the CPU's model, or at least its machine
