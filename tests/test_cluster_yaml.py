"""cluster.yaml, checked offline with the Ray autoscaler's own prepare/validate functions."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_YAML = Path(__file__).resolve().parents[1] / "cluster.yaml"


@pytest.fixture
def config() -> dict[str, Any]:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def test_cluster_yaml_is_valid_for_the_ray_cluster_launcher(config: dict[str, Any]) -> None:
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    assert prepared["provider"]["type"] == "aws"
    assert prepared["head_node_type"] == "head"


def test_cluster_yaml_says_what_sweeps_needs(config: dict[str, Any]) -> None:
    nodes = config["available_node_types"]
    assert nodes["head"]["resources"]["sweep_slots"] >= 1  # the job queue's slots
    assert nodes["gpu_worker"]["min_workers"] == 0 and nodes["gpu_worker"]["max_workers"] >= 1
    assert any('pip install -e "$HOME/sweeps[wandb,mlflow]"' in command
               for command in config["setup_commands"])  # fmt: skip
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    for command in (*config["head_start_ray_commands"], *config["worker_start_ray_commands"]):
        if "ray start" in command:
            assert "RAY_AUTH_MODE=token" in command
    assert {".git", "results", "data"} <= set(config["rsync_exclude"])


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ((), "max_wokers"),
        (("available_node_types", "gpu_worker"), "min_worker"),
        (("available_node_types", "head"), "resorces"),
    ],
)
def test_a_wrong_key_is_named(config: dict[str, Any], path: tuple[str, ...], key: str) -> None:
    section = config
    for part in path:
        section = section[part]
    section[key] = 1
    with pytest.raises(jsonschema.ValidationError, match=f"'{key}' was unexpected"):
        validate_config(prepare_config(config))
