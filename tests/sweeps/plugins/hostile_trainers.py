"""Trainers of a user's own that report what the results writer must survive (issue #24)."""

from __future__ import annotations

from typing import Any


def _metrics(epoch: int, **extra: Any) -> dict[str, Any]:
    return {"epoch": epoch, "loss": 1 / epoch, "accuracy": 0.5, "val_loss": 1 / epoch,
            "val_accuracy": 0.5, "epoch_time_s": 0.0, **extra}  # fmt: skip


def big_seed(config: dict[str, Any], dataset: Any, report: Any) -> dict[str, Any]:
    """Reports `seed` as torch.initial_seed() may return it: beyond int64 for an odd x."""
    seed = 2**64 - config["x"] if config["x"] % 2 else config["x"]
    metrics: dict[str, Any] = {}
    for epoch in range(1, config["epochs"] + 1):
        metrics = _metrics(epoch, seed=seed)
        report(metrics)
    return metrics


def own_names(config: dict[str, Any], dataset: Any, report: Any) -> dict[str, Any]:
    """Reports metrics named like the writer's own columns, and `acc_<activation>`: a
    metric of its own name per configuration."""
    extra = {"run_id": "mine", "trial_id": config["x"], "status": 0.5, "config_index": "first",
             "started_at": 1.0, f"acc_{config['activation']}": 0.9}  # fmt: skip
    metrics: dict[str, Any] = {}
    for epoch in range(1, config["epochs"] + 1):
        metrics = _metrics(epoch, **extra)
        report(metrics)
    return metrics
