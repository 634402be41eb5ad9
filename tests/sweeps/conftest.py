"""Ray for the sweep tests: started by the tests, with the user trainers importable."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PLUGINS = str(Path(__file__).parent / "plugins")


def plugin_env() -> dict[str, str]:
    """The environment for a `sweeps` subprocess (or a Ray head) whose Ray workers import
    the plugins, with this interpreter's environment first on PATH as a cluster node's is."""
    path = os.pathsep.join(p for p in (PLUGINS, os.environ.get("PYTHONPATH")) if p)
    bin_path = os.pathsep.join((os.path.dirname(sys.executable), os.environ.get("PATH", "")))
    return {**os.environ, "PYTHONPATH": path, "PATH": bin_path}


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A real local Ray with 2 CPUs; `sweeps` joins it instead of starting its own."""
    import ray

    os.environ["PYTHONPATH"] = plugin_env()["PYTHONPATH"]  # inherited by Ray's workers
    sys.path.insert(0, PLUGINS)
    # "local": a Ray of its own, not one `ray start` left on the machine (another test's head).
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        sys.path.remove(PLUGINS)


def run_cli(*args: str) -> int:
    """`sweeps ARGS` in this process; its exit code."""
    from sweeps.cli.app import main

    with pytest.raises(SystemExit) as exited:
        main(list(args))
    return exited.value.code
