"""Trainers of a user's own, for the tests: same contract as trainers.train."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any


def _epochs(config: dict[str, Any], report: Any) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for epoch in range(1, config["epochs"] + 1):
        time.sleep(config.get("sleep_s", 0))
        accuracy = 1 - 1 / (epoch + config["x"])
        metrics = {
            "epoch": epoch,
            "loss": 1 / epoch,
            "accuracy": accuracy,
            "val_loss": 1 / epoch,
            "val_accuracy": accuracy,
            "epoch_time_s": 0.0,
        }
        report(metrics)
    return metrics


def flaky(config: dict[str, Any], dataset: Any, report: Any) -> dict[str, Any]:
    """Raises for every x divisible by 3."""
    if config["x"] % 3 == 0:
        raise ValueError(f"x={config['x']} is divisible by 3")
    return _epochs(config, report)


def fails_once(config: dict[str, Any], dataset: Any, report: Any) -> dict[str, Any]:
    """Fails its first attempt after one epoch (a marker file remembers), then succeeds."""
    marker = Path(config["marker_dir"]) / f"attempted-{config['x']}"
    if not marker.exists():
        marker.touch()
        report(
            {
                "epoch": 1,
                "loss": 9.0,
                "accuracy": 0.0,
                "val_loss": 9.0,
                "val_accuracy": 0.0,
                "epoch_time_s": 0.0,
            }
        )
        raise RuntimeError("first attempt fails")
    return _epochs(config, report)


def steady(config: dict[str, Any], dataset: Any, report: Any) -> dict[str, Any]:
    return _epochs(config, report)


def marked(config: dict[str, Any], dataset: Any, report: Any) -> dict[str, Any]:
    """`steady`, leaving a file in `config["marks"]` as it starts to train: a test can
    tell a trial that trains from one that is still starting."""
    (Path(config["marks"]) / f"x{config['x']}-{time.monotonic_ns()}").touch()
    return _epochs(config, report)


def with_custom_metric(config: dict[str, Any], dataset: Any, report: Any) -> dict[str, Any]:
    """Reports `my_metric` every epoch and `my_tag` at the end; x=2 diverges in epoch 2."""
    metrics: dict[str, Any] = {}
    for epoch in range(1, config["epochs"] + 1):
        loss = float("nan") if config["x"] == 2 and epoch == 2 else 1 / epoch
        metrics = {"epoch": epoch, "loss": loss, "accuracy": 0.5, "val_loss": loss,
                   "val_accuracy": 0.5, "my_metric": 10.0 * config["x"]}  # fmt: skip
        report(metrics)
    return {**metrics, "my_tag": f"x{config['x']}"}


def warns(config: dict[str, Any], dataset: Any, report: Any) -> dict[str, Any]:
    """Logs what trainers.graphs logs when a capture fails, then trains as `steady`."""
    logging.getLogger("trainers.graphs").warning(
        "CUDA graphs off, training eagerly: capture failed: a stand-in"
    )
    return _epochs(config, report)


def _val_acc(metrics: dict[str, Any]) -> dict[str, Any]:
    return {("val_acc" if key == "val_accuracy" else key): value for key, value in metrics.items()}


def reports_val_acc(config: dict[str, Any], dataset: Any, report: Any) -> dict[str, Any]:
    """`steady`, naming its validation accuracy `val_acc` (not `val_accuracy`, the spec's
    metric by default) for each x in `config["renamed"]`, or every x without that key."""
    renamed = config.get("renamed")
    if renamed is not None and config["x"] not in renamed:
        return _epochs(config, report)
    return _val_acc(_epochs(config, lambda metrics: report(_val_acc(metrics))))


def quits_early(config: dict[str, Any], dataset: Any, report: Any) -> dict[str, Any]:
    """`steady`, but each x in `config["quits"]` stops after half its `epochs` on its own
    (an early stopping of its own) and returns its final metrics as usual."""
    if config["x"] in config.get("quits", []):
        config = {**config, "epochs": config["epochs"] // 2}
    return _epochs(config, report)


def bowl(config: dict[str, Any], dataset: Any, report: Any) -> dict[str, Any]:
    """A known optimum for a search: best at lr 0.01 with SGD and momentum 0.9."""
    import math

    distance = (math.log10(config["lr"]) + 2) ** 2 + abs(config.get("momentum", 0) - 0.9)
    score = 1 - distance / 10 - (0.1 if config.get("optimizer") == "adam" else 0)
    metrics: dict[str, Any] = {}
    for epoch in range(1, config["epochs"] + 1):
        time.sleep(config.get("sleep_s", 0))
        metrics = {"epoch": epoch, "val_accuracy": score * epoch / config["epochs"]}
        report(metrics)
    return metrics
