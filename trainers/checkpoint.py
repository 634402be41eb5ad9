"""A configuration's training state at the end of an epoch: saved, and restored so that the
rest of its training goes exactly as it would have gone without the stop (bit for bit on
the CPU).

The state is everything an epoch depends on: the weights and the optimizer's tensors, the
epoch reached, each batch order's generator (trainers.bundle: a seeded permutation an
epoch, drawn from a generator of the config's seed), torch's own generators (the trainer
draws nothing from them; a model that did would find them as they were), the metrics of
every epoch so far, and the training time. It is a plain mapping of CPU tensors, numbers
and strings, which `torch.load(weights_only=True)` reads back.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from trainers.bundle import Bundle, forward
from trainers.config import ConfigError, TrainConfig
from trainers.data import Dataset
from trainers.graphs import restore as copy_back
from trainers.models import Model, build_model
from trainers.train import Report, train_bundle

FORMAT = 1
# What a config may change between the run that saved a state and the one that goes on
# from it: where it trains, not what.
PLACE_KEYS = ("device", "threads", "graphs", "data_dir", "download")
State = dict[str, Any]
Keep = Callable[[State], None]


def train_kept(
    config: Mapping[str, Any],
    dataset: Dataset | None,
    report: Report,
    keep: Keep,
    state: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`trainers.train`, handing `keep` the state after every epoch (after `report` has
    its metrics). From `state`, it first reports the epochs that state had trained, as
    they were, then trains the rest. ConfigError if `state` is of another config."""
    bundle = Bundle.from_configs([config], dataset)
    history: list[dict[str, Any]] = []
    if state is not None:
        history = restore(bundle, state)
        for metrics in history:
            report(metrics)

    def each(metrics: list[dict[str, Any]]) -> None:
        history.append(metrics[0])
        report(metrics[0])
        keep(state_of(bundle, history))

    return train_bundle(bundle, each)[0]


def state_of(bundle: Bundle, history: list[dict[str, Any]]) -> State:
    """The lone configuration of `bundle`, as its last epoch left it, `history` its
    epochs' metrics."""
    _check_alone(bundle)
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return {
        "format": FORMAT,
        "config": bundle.shared.to_dict(),
        "image_shape": list(bundle.splits.train.images.shape[1:]),
        "epoch": bundle.epoch,
        "history": [dict(metrics) for metrics in history],
        "train_time_s": bundle.train_time_s,
        "params": [_cpu(tensor) for tensor in bundle.model.params],
        "optimizer": [_cpu(tensor) for tensor in bundle.step.optimizer.state()],
        "orders": [generator.get_state() for generator in bundle.orders.generators],
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": cuda,
    }


def restore(bundle: Bundle, state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`bundle`, freshly built from the same config, put where `state` left it; its
    epochs' metrics. Copied in place: captured CUDA graphs keep their addresses."""
    _check_alone(bundle)
    _check_same_config(bundle.shared, state)
    with bundle._on_stream():
        copy_back(bundle.step.state(), [*state["params"], *state["optimizer"]])
        for generator, saved in zip(bundle.orders.generators, state["orders"], strict=True):
            generator.set_state(saved)
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        bundle.epoch = int(state["epoch"])
        bundle.train_time_s = float(state["train_time_s"])
        history = [dict(metrics) for metrics in state["history"]]
        bundle.metrics = history[-1:]
        # What the last epoch validated on, for the final metrics' confusion matrix.
        bundle._logits = forward(bundle.model, bundle.splits.validation)
    return history


def model_state(state: Mapping[str, Any]) -> State:
    """Of a state, what `load_model` needs and what tells the model apart: the config,
    the weights, the epoch and its metrics; not the optimizer's or the generators'."""
    kept = ("format", "config", "image_shape", "epoch", "history", "params")
    return {key: state[key] for key in kept}


def to_bytes(state: State) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def from_bytes(data: bytes) -> State:
    """A state saved by `to_bytes`; ValueError if it is not one."""
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"not a checkpoint of the built-in trainer ({error})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError("not a checkpoint of the built-in trainer")
    return state


class Classifier(nn.Module):
    """A trained model as a torch module: images (N, H, W) scaled to [0, 1], as
    trainers.data makes them, -> logits (N, 10). Evaluation only, on the device it was
    loaded on."""

    def __init__(self, model: Model, config: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.config = config
        # The same tensors the model computes with, listed as the module's parameters.
        self.weights = nn.ParameterList(nn.Parameter(p, requires_grad=False) for p in model.params)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model.forward(self.model.inputs(images))


def load_model(state: Mapping[str, Any], device: str = "cpu") -> Classifier:
    """The model of `state` with its weights, built from its config on `device`."""
    config = TrainConfig.from_dict({**state["config"], "device": "cpu", "threads": None})
    height, width = state["image_shape"]
    model = build_model(config.model, (height, width), config.hidden, config.activation,
                        config.kernel_initializer, torch.Generator(),
                        torch.device(device))  # fmt: skip
    copy_back(model.params, list(state["params"]))
    return Classifier(model, config)


def _cpu(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().to("cpu", copy=True)


def _check_alone(bundle: Bundle) -> None:
    if len(bundle.order) != 1:
        count = len(bundle.order)
        raise ConfigError(f"a checkpoint holds one configuration, not a bundle of {count}")


def _check_same_config(cfg: TrainConfig, state: Mapping[str, Any]) -> None:
    if state.get("format") != FORMAT:
        raise ConfigError(f"checkpoint format must be {FORMAT}, got {state.get('format')!r}")
    saved, ours = dict(state["config"]), cfg.to_dict()
    for key in PLACE_KEYS:
        saved.pop(key, None)
        ours.pop(key, None)
    changed = sorted(key for key in ours if saved.get(key) != ours[key])
    if changed:
        key = changed[0]
        raise ConfigError(f"the checkpoint is of another config: its {key} is"
                          f" {saved.get(key)!r}, this one's {ours[key]!r}")  # fmt: skip
