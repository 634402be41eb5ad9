"""docs/examples: the KubeRay RayJob and the SLURM script that docs/cluster.md shows,
checked offline as far as they can be, and shown there as they are."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweeps.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
RAYJOB = EXAMPLES / "rayjob.yaml"
SBATCH = EXAMPLES / "sweep.sbatch"


def sweeps_options(command: str) -> set[str]:
    """The options `sweeps COMMAND` takes."""
    import typer.main

    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    return {name for param in click_command.params for name in getattr(param, "opts", [])}


def used_options(line: str) -> tuple[str, set[str]]:
    """A `sweeps ...` command line: its command and the options it passes."""
    words = shlex.split(line)
    return words[1], {word for word in words if word.startswith("--")}


@pytest.fixture
def rayjob() -> dict[str, Any]:
    return yaml.safe_load(RAYJOB.read_text())


def test_rayjob_has_the_fields_kuberay_needs(rayjob: dict[str, Any]) -> None:
    assert (rayjob["apiVersion"], rayjob["kind"]) == ("ray.io/v1", "RayJob")
    assert rayjob["metadata"]["name"]
    spec = rayjob["spec"]
    cluster = spec["rayClusterSpec"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", cluster["rayVersion"])
    head = cluster["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict)
    assert all(isinstance(value, str) for value in head["rayStartParams"].values())
    assert head["template"]["spec"]["containers"][0]["image"]
    for group in cluster["workerGroupSpecs"]:
        assert group["groupName"]
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert isinstance(group["rayStartParams"], dict)
        container = group["template"]["spec"]["containers"][0]
        assert container["image"]
        assert "nvidia.com/gpu" in container["resources"]["limits"]
    # Every volume a container mounts is one its pod declares.
    for template in [head["template"], *(g["template"] for g in cluster["workerGroupSpecs"])]:
        declared = {volume["name"] for volume in template["spec"].get("volumes", [])}
        for container in template["spec"]["containers"]:
            assert {mount["name"] for mount in container.get("volumeMounts", [])} <= declared


def test_rayjob_runtime_env_is_yaml_with_the_code_and_the_data_root(
    rayjob: dict[str, Any],
) -> None:
    runtime_env = yaml.safe_load(rayjob["spec"]["runtimeEnvYAML"])
    assert runtime_env["working_dir"].endswith(".zip")  # Ray takes remote code as a zip
    mounts = {mount["mountPath"] for mount in rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]
              ["template"]["spec"]["containers"][0]["volumeMounts"]}  # fmt: skip
    assert runtime_env["env_vars"]["SWEEPS_DATA_DIR"] in mounts


def test_rayjob_entrypoint_is_a_sweeps_run_the_cli_takes(rayjob: dict[str, Any]) -> None:
    command, options = used_options(rayjob["spec"]["entrypoint"])
    assert command == "run"
    assert {"--address", "--results"} <= options
    assert options <= sweeps_options("run")


def test_sbatch_script_parses_and_runs_a_sweep_the_cli_takes() -> None:
    bash = shutil.which("bash")
    assert bash is not None
    checked = subprocess.run([bash, "-n", str(SBATCH)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    text = SBATCH.read_text()
    directives = re.findall(r"^#SBATCH (--[\w-]+)", text, re.MULTILINE)
    assert {"--nodes", "--tasks-per-node", "--gpus-per-task"} <= set(directives)
    # The driver's command, its continuation lines joined.
    joined = re.sub(r"\\\n\s*", " ", text)
    line = next(line for line in joined.splitlines() if line.startswith("sweeps run"))
    command, options = used_options(line)
    assert command == "run"
    assert options <= sweeps_options("run")
    assert "--address" in options


@pytest.mark.parametrize("example", [RAYJOB, SBATCH], ids=lambda path: path.name)
def test_cluster_docs_show_each_example_as_it_is(example: Path) -> None:
    page = (ROOT / "docs" / "cluster.md").read_text()
    assert example.read_text().rstrip() + "\n```" in page
