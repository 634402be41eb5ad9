"""What a run saves beside its results, and reads back to resume: the resolved spec, and
the manifest (versions, host, devices, the planned trials, start and end times)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import platform
import runpy
import socket
import sys
from typing import Any

import yaml

from analysis.place import Place
from analysis.rundir import MANIFEST, SPEC
from sweeps.plan.spec import SpecError, SweepSpec, parse_spec, read_yaml
from sweeps.version import __version__

IMPORT_PATH = "import_path"  # the folders a run imported its trainer from, first


def read_run(run_dir: Place) -> tuple[SweepSpec, dict[str, Any]]:
    """The resolved spec and the manifest a run saved; SpecError naming the file that is
    missing or unreadable."""
    if not (run_dir / SPEC).is_file():
        raise SpecError(f"{run_dir.uri!r} is not a run directory (no {SPEC})")
    texts = {}
    for name in (SPEC, MANIFEST):
        try:
            texts[name] = (run_dir / name).read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise SpecError(f"cannot read {run_dir / name}: {error}") from None
    try:
        data = read_yaml(texts[SPEC])
    except yaml.YAMLError:
        raise SpecError(f"{run_dir / SPEC}: not valid YAML") from None
    spec = parse_spec(data, f"{run_dir / SPEC}")
    try:
        manifest = json.loads(texts[MANIFEST])
    except json.JSONDecodeError as error:
        raise SpecError(f"{run_dir / MANIFEST}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict):
        raise SpecError(f"{run_dir / MANIFEST}: not the manifest of a run")
    if not isinstance(spec.resources.gpus, float | int) or spec.max_bundle == "auto":
        raise SpecError(f"{run_dir / SPEC}: not the resolved spec of a run")
    return spec, manifest


def new_manifest(spec: SweepSpec, run_id: str, address: str | None) -> dict[str, Any]:
    import ray

    resources = ray.cluster_resources()
    accelerators = sorted(
        key.removeprefix("accelerator_type:")
        for node in ray.nodes()
        for key in node.get("Resources", {})
        if key.startswith("accelerator_type:")
    )
    return {
        "run_id": run_id,
        "sweep": spec.name,
        "command": sys.argv,
        "sweeps": __version__,
        "python": platform.python_version(),
        "torch": torch_version(),
        "ray": ray.__version__,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "ray_address": address or "embedded",
        "ray_gcs_address": ray.get_runtime_context().gcs_address,
        "devices": {
            "cpus": resources.get("CPU", 0),
            "gpus": resources.get("GPU", 0),
            "gpu_kinds": accelerators,
        },
        "gpus_per_trial": spec.resources.gpus,
        "cpus_per_trial": spec.resources.cpus,
        "started_at": now(),
    }


def torch_version() -> str:
    """torch.__version__, its build included (2.14.1+cu130), read from torch/version.py
    without importing torch: the driver trains nothing, and the import took it 2.3 s."""
    spec = importlib.util.find_spec("torch")
    assert spec is not None and spec.submodule_search_locations, "torch is a dependency"
    version_file = os.path.join(spec.submodule_search_locations[0], "version.py")
    return runpy.run_path(version_file)["__version__"]


def recorded_import_path(manifest: dict[str, Any]) -> list[str]:
    """The folders the run imported its trainer from (its spec's, the one it was started
    in) that are still there: a resumed run imports it the same way."""
    recorded = manifest.get(IMPORT_PATH)
    folders = recorded if isinstance(recorded, list) else []
    return [folder for folder in folders if isinstance(folder, str) and os.path.isdir(folder)]


def write_manifest(run_dir: Place, manifest: dict[str, Any]) -> None:
    (run_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
