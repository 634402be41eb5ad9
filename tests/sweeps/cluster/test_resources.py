"""sweeps.cluster.resources: what a trial takes and whether the cluster can hold it, on the
cluster's resources as plain data (what Ray would report), and on a real local Ray."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import ray
import ray._private.state
import ray._private.worker
from ray.core.generated.autoscaler_pb2 import ClusterConfig, NodeGroupConfig

from sweeps.cluster import resources
from sweeps.cluster.resources import ResourceError, check_fits, resolve_gpus, slots
from sweeps.plan.spec import DEFAULT_TRAINER, SweepSpec, parse_spec
from tests.sweeps.cluster.conftest import ray_env, run_python

# Two live nodes, neither with both many CPUs and a GPU, and a dead one that would hold
# anything: what ray.nodes() reports of it must not count.
NODES = [
    {"Alive": True, "Resources": {"CPU": 8.0, "memory": 1e9}},
    {"Alive": True, "Resources": {"CPU": 4.0, "GPU": 1.0}},
    {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}},
]
TOTALS = "(cluster: 12 CPUs, 1 GPU)"
WAITS = ": trials wait for the autoscaler to add a node that fits"


def spec_of(**fields: Any) -> SweepSpec:
    """A spec with a trainer of the user's (no packs) unless `fields` say otherwise."""
    return parse_spec(
        {"name": "r", "trainer": "user_trainers:steady", "dataset": None, **fields}, "test"
    )


# --- resolve_gpus ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "visible", "embedded", "gpus", "said"),
    [
        ({}, 2.0, True, 0.25, []),  # "auto" on GPUs: trials share one
        ({"trainer": DEFAULT_TRAINER, "dataset": "mnist"}, 2.0, True, 1.0, []),
        ({"trainer": DEFAULT_TRAINER, "dataset": "mnist", "pack": "off"}, 2.0, True,
         0.25, []),
        ({}, 0.0, False, 0.0, ["trials run on CPUs (1 each)"]),
        ({"resources": {"gpus": 0.5, "cpus": 2}}, 0.0, True, 0.0,
         ["no GPU on this machine: running on CPUs instead of 0.5 GPU per trial",
          "trials run on CPUs (2 each)"]),
        # A cluster's GPU nodes may be yet to come: its trials wait for them.
        ({"resources": {"gpus": 0.5}}, 0.0, False, 0.5, []),
        ({"resources": {"gpus": 1}}, 2.0, True, 1.0, []),
        ({"resources": {"gpus": 0, "cpus": 0.5}}, 2.0, True, 0.0,
         ["trials run on CPUs (0.5 each)"]),
    ],
    ids=["auto-shared", "auto-packed", "auto-pack-off", "auto-no-gpu", "asked-none-here",
         "asked-none-on-cluster", "asked-and-there", "cpu-only"],
)  # fmt: skip
def test_resolve_gpus(
    monkeypatch: pytest.MonkeyPatch,
    fields: dict[str, Any],
    visible: float,
    embedded: bool,
    gpus: float,
    said: list[str],
) -> None:
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 8.0, "GPU": visible})
    spec = spec_of(**fields)
    notes: list[str] = []
    resolved = resolve_gpus(spec, embedded=embedded, say=notes.append)
    assert resolved.resources.gpus == gpus
    assert resolved.resources.cpus == spec.resources.cpus
    assert notes == said
    assert resolved.model_copy(update={"resources": spec.resources}) == spec  # only gpus


# --- slots -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cluster", "resources", "max_concurrent", "expected"),
    [
        ({"CPU": 8.0}, {"cpus": 2, "gpus": 0}, None, 4),
        ({"CPU": 9.0}, {"cpus": 2, "gpus": 0}, None, 4),  # half a trial does not run
        ({"CPU": 8.0}, {"cpus": 2, "gpus": 0}, 3, 3),
        ({"CPU": 8.0}, {"cpus": 2, "gpus": 0}, 10, 4),
        ({"CPU": 64.0, "GPU": 2.0}, {"cpus": 1, "gpus": 0.5}, None, 4),  # the GPUs bound it
        ({"CPU": 2.0, "GPU": 2.0}, {"cpus": 1, "gpus": 0.25}, 6, 6),  # not the CPUs
        # Fractions as Ray counts them, where float division is one short.
        ({"CPU": 1.0}, {"cpus": 0.2, "gpus": 0}, None, 5),  # 1 // 0.2 == 4.0
        ({"CPU": 3.0}, {"cpus": 0.1, "gpus": 0}, None, 30),  # 3 // 0.1 == 29.0
        ({"CPU": 8.0, "GPU": 0.3}, {"cpus": 1, "gpus": 0.1}, None, 3),  # 0.3 / 0.1 < 3
    ],
)
def test_slots(
    monkeypatch: pytest.MonkeyPatch,
    cluster: dict[str, float],
    resources: dict[str, float],
    max_concurrent: int | None,
    expected: int,
) -> None:
    monkeypatch.setattr(ray, "cluster_resources", lambda: cluster)
    spec = spec_of(resources=resources, max_concurrent=max_concurrent)
    assert slots(spec) == expected


# --- check_fits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpus", "gpus", "refused"),
    [
        (8, 0, None),
        (4, 1, None),
        (0.5, 0.25, None),
        (16, 0, f"a trial asks for 16 CPUs but the largest node has 8 CPUs {TOTALS}"),
        (1, 2, f"a trial asks for 2 GPUs but the largest node has 1 GPU {TOTALS}"),
        (8, 1, f"a trial asks for 8 CPUs and 1 GPU but no node has both {TOTALS}"),
    ],
)
def test_check_fits_on_the_live_nodes_of_a_fixed_cluster(
    monkeypatch: pytest.MonkeyPatch, cpus: float, gpus: float, refused: str | None
) -> None:
    monkeypatch.setattr(ray, "nodes", lambda: NODES)
    if refused is None:
        assert check_fits(cpus, gpus, autoscaling=False) is None
        assert check_fits(cpus, gpus, autoscaling=True) is None
    else:
        with pytest.raises(ResourceError) as raised:
            check_fits(cpus, gpus, autoscaling=False)
        assert str(raised.value) == refused
        assert check_fits(cpus, gpus, autoscaling=True) == refused + WAITS


@pytest.fixture
def joined(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., None]:
    """This process as a driver joined to a cluster of NODES (no Ray of its own, so whether
    nodes may still join is asked); what it gives sets what the cluster tells of itself:
    the launcher's bootstrap config in HOME, its autoscaler's node groups (None: none)."""
    monkeypatch.setattr(ray, "nodes", lambda: NODES)
    monkeypatch.setattr(ray._private.worker, "_global_node", None)
    monkeypatch.setattr(resources, "BOOTSTRAP_CONFIG", tmp_path / "ray_bootstrap_config.yaml")

    def set_up(*, bootstrap: bool = False, groups: list[NodeGroupConfig] | None = None) -> None:
        if bootstrap:
            (tmp_path / "ray_bootstrap_config.yaml").write_text("cluster_name: test\n")
        config = None if groups is None else ClusterConfig(node_group_configs=groups)
        monkeypatch.setattr(ray._private.state.state, "get_cluster_config", lambda: config)

    return set_up


def group(min_count: int, max_count: int, cpus: int = 16) -> NodeGroupConfig:
    return NodeGroupConfig(
        name="workers", resources={"CPU": cpus} if cpus else {}, min_count=min_count,
        max_count=max_count,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("bootstrap", "groups"),
    [
        (True, None),  # the cluster launcher's head
        (False, [group(0, 0), group(0, -1)]),  # -1: no limit
        (False, [group(1, 4)]),
    ],
    ids=["launcher", "unbounded-group", "group-below-its-max"],
)
def test_check_fits_waits_on_a_cluster_that_can_grow(
    joined: Callable[..., None], bootstrap: bool, groups: list[NodeGroupConfig] | None
) -> None:
    joined(bootstrap=bootstrap, groups=groups)
    shortfall = f"a trial asks for 16 CPUs but the largest node has 8 CPUs {TOTALS}"
    assert check_fits(16, 0) == shortfall + WAITS


@pytest.mark.parametrize(
    "groups",
    [None, [], [group(2, 2), group(0, 0)], [group(0, -1, cpus=0)]],
    ids=["no-config", "no-groups", "groups-at-their-max", "group-of-no-resources"],
)
def test_check_fits_refuses_on_a_cluster_that_cannot_grow(
    joined: Callable[..., None], groups: list[NodeGroupConfig] | None
) -> None:
    joined(groups=groups)
    with pytest.raises(ResourceError, match="a trial asks for 16 CPUs"):
        check_fits(16, 0)


@pytest.mark.slow
def test_check_fits_on_a_fixed_local_ray(ray_tmp: Path) -> None:
    lines = run_python(
        """
        import json
        from sweeps.cluster.resources import ResourceError, check_fits
        from sweeps.cluster.session import ray_session
        def fits(cpus, gpus, **options):
            try:
                return check_fits(cpus, gpus, **options)
            except ResourceError as error:
                return "ResourceError: " + str(error)
        with ray_session(None, num_cpus=2):
            print(json.dumps([
                fits(1, 0), fits(2, 0), fits(64, 0), fits(1, 1), fits(1, 0.25),
                fits(64, 0, autoscaling=True),
            ]))
        """,
        ray_env(ray_tmp),
        timeout_s=90,
    )
    one, two, too_many_cpus, a_gpu, part_of_a_gpu, waits = json.loads(lines[-1])
    assert one is None and two is None
    cluster = "(cluster: 2 CPUs, 0 GPUs)"
    assert too_many_cpus == (
        f"ResourceError: a trial asks for 64 CPUs but the largest node has 2 CPUs {cluster}"
    )
    assert (
        a_gpu == f"ResourceError: a trial asks for 1 GPU but the largest node has 0 GPUs {cluster}"
    )
    assert part_of_a_gpu.startswith("ResourceError: a trial asks for 0.25 GPUs")
    assert "64 CPUs" in waits and "autoscaler" in waits
