"""Every preset validates, and each distinct model in it builds and takes a step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sweeps.plan.groups import configurations
from sweeps.plan.spec import load_spec, preset_names
from sweeps.runs.runner import check_configs
from trainers import TrainConfig
from trainers.data import make_splits
from trainers.models import build_model
from trainers.optim import make_optimizer

EXPERIMENTS = {
    "quickstart", "report-a-batch-size", "report-a-lr-loss", "report-a-activations",
    "report-b-width", "report-b-depth", "report-b-activations", "report-b-batch",
    "report-b-lr", "report-b-final", "report-b-cnn",
}  # fmt: skip


def test_one_preset_per_experiment() -> None:
    assert set(preset_names()) == EXPERIMENTS


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_preset_configs_build_and_step(name: str, request: pytest.FixtureRequest) -> None:
    spec = load_spec(name)
    dataset = request.getfixturevalue("digits" if spec.dataset == "digits" else "mnist")
    check_configs(spec, configurations(spec), dataset)  # every configuration, against the real data
    splits = make_splits(dataset, 0.0, seed=0, device=torch.device("cpu"))
    images, labels = splits.train.images[:2], splits.train.labels[:2]
    built = set()
    for config in configurations(spec):
        cfg = TrainConfig.from_dict(config)
        shape = (cfg.model, cfg.hidden, cfg.activation, cfg.loss, cfg.optimizer)
        if shape in built:
            continue
        built.add(shape)
        model = build_model(cfg.model, dataset.image_shape, cfg.hidden, cfg.activation,
                            cfg.kernel_initializer, torch.Generator().manual_seed(0),
                            torch.device("cpu"))  # fmt: skip
        before = [p.clone() for p in model.params]
        logits = torch.empty(2, 10)
        grads = model.gradients(model.inputs(images), F.one_hot(labels, 10).float(), logits,
                                cfg.loss)  # fmt: skip
        make_optimizer(cfg.optimizer, model.params, cfg.lr).step(grads)
        assert logits.isfinite().all()
        assert any(not torch.equal(a, b) for a, b in zip(before, model.params, strict=True))
    assert built


def test_presets_carry_the_reports_figures() -> None:
    for name in EXPERIMENTS - {"quickstart"}:
        spec = load_spec(name)
        assert spec.reference, name
        for reference in spec.reference:
            for row in reference.rows:
                keys = set(row) & set(spec.swept)
                assert keys or not spec.swept, (name, row)
                for key in keys:  # each row names a configuration the grid contains
                    assert row[key] in spec.grid[key], (name, key, row[key])
