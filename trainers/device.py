"""The machine a bundle trains on: its device, its CPU threads, the float32 precision in
force, and the names the results record for them."""

from __future__ import annotations

import os
import platform

import torch

from trainers.config import ConfigError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device is 'cuda' but no CUDA device is visible")
    return torch.device(name)


def resolve_threads(threads: int | None) -> int:
    """The CPU threads to use: as configured, else OMP_NUM_THREADS (Ray sets it to the
    trial's CPUs), else every CPU this process may run on."""
    if threads is not None:
        return threads
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]):
        return int(os.environ["OMP_NUM_THREADS"])
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def pin_precision() -> None:
    """Full fp32 for matmuls and convolutions: cuDNN convolutions default to TF32 on Ampere
    and later (about 1e-3 relative), which would make a GPU's numbers differ from the
    CPU's and from the graphs' self-check. Set through torch's fp32_precision flags only:
    mixing them with the legacy allow_tf32 ones makes torch raise."""
    torch.backends.cuda.matmul.fp32_precision = "ieee"
    torch.backends.cudnn.conv.fp32_precision = "ieee"


def precision() -> str:
    """The float32 precision in force, as the Parquet row records it."""
    matmul = torch.backends.cuda.matmul.fp32_precision
    conv = torch.backends.cudnn.conv.fp32_precision
    return f"fp32 (matmul {matmul}, conv {conv})"


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model where Linux tells it (platform.processor() is
    often empty there)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
