"""What a bundle holds on its device, estimated from above before anything is allocated:
the planner sizes fused groups with it (sweeps.plan) and a pack splits into waves that fit
its share of the GPU (trainers.pack).

Float32 throughout. Counted per member: weights, gradients and the optimizer's state;
the three snapshots a capture can hold at once (trainers.graphs: before warm-up, before
epoch 1, the eager epoch 1) of all of those; Adam's temporaries, which a graph keeps in
its pool; the epoch's logits twice (the buffer and the eager epoch's copy) and the
validation and test logits; a step's activations three times (forward, backward, and the
graph pool's own copy) and an evaluation chunk's. Per bundle: the epoch's one-hot labels
and orders, and one cuBLAS workspace for its stream. Per pack: the data, once.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

from trainers.bundle import EVAL_CHUNK
from trainers.config import TrainConfig
from trainers.data import NUM_CLASSES

FLOAT = 4  # bytes
# torch's default cuBLAS workspace on Hopper, per (handle, stream); CUBLAS_WORKSPACE_CONFIG
# can change it.
CUBLAS_WORKSPACE_BYTES = 32 * 2**20
SNAPSHOTS = 3


def model_sizes(cfg: TrainConfig, image_shape: tuple[int, int]) -> tuple[int, int]:
    """(parameters, activations per image: every layer's output; the input, a view of the
    data when evaluating, is counted apart)."""
    height, width = image_shape
    if cfg.model == "mlp":
        widths = [height * width, *cfg.hidden, NUM_CLASSES]
        params = sum((fan_in + 1) * fan_out for fan_in, fan_out in itertools.pairwise(widths))
        return params, sum(widths[1:])
    from trainers.models import CNN

    cnn = CNN(cfg.model, image_shape, torch.Generator(), torch.device("meta"))
    x = torch.empty(1, 1, height, width, device="meta")
    activations = 0
    for layer in cnn.module:
        x = layer(x)
        activations += x.numel()
    return sum(p.numel() for p in cnn.params), activations


def member_bytes(
    cfg: TrainConfig, image_shape: tuple[int, int], train_count: int, eval_count: int
) -> int:
    """One member's share of a bundle (see the module's docstring)."""
    params, activations = model_sizes(cfg, image_shape)
    state = 2 if cfg.optimizer == "adam" else 0  # Adam's two moments
    temporaries = 2 if cfg.optimizer == "adam" else 0  # its denominator and scaled step
    per_param = 1 + 1 + state + SNAPSHOTS * (1 + state) + temporaries
    logits = (2 * train_count + eval_count) * NUM_CLASSES
    pixels = image_shape[0] * image_shape[1]
    steps = 3 * cfg.batch_size * (pixels + activations) + EVAL_CHUNK * activations
    return FLOAT * (per_param * params + logits + steps)


def bundle_bytes(
    cfgs: Sequence[TrainConfig], image_shape: tuple[int, int], train_count: int, eval_count: int
) -> int:
    """A bundle's members, its labels and orders, and its stream's cuBLAS workspace."""
    orders = len({c.seed for c in cfgs}) if cfgs[0].shuffle else 1
    labels = orders * train_count * (NUM_CLASSES * FLOAT + 8)  # one-hot, int64 order
    members = sum(member_bytes(c, image_shape, train_count, eval_count) for c in cfgs)
    return members + labels + CUBLAS_WORKSPACE_BYTES


def data_bytes(image_shape: tuple[int, int], images: int) -> int:
    """The splits on the device, shared by a pack's bundles: images and int64 labels."""
    return images * (image_shape[0] * image_shape[1] * FLOAT + 8)


def gpu_budget(share: float, device: torch.device | None = None) -> int:
    """The bytes a trial holding `share` of a GPU may allocate."""
    return int(torch.cuda.get_device_properties(device).total_memory * share)
