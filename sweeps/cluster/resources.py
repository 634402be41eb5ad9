"""What the cluster can hold: the GPUs a trial takes, how many trials run at once, and
whether any node can hold one at all (checked before a run starts)."""

from __future__ import annotations

from pathlib import Path

from analysis.numbers import count
from sweeps.cluster.session import Say
from sweeps.plan.groups import packs_apply
from sweeps.plan.spec import SweepSpec

AUTO_GPU_FRACTION = 0.25  # trials on one GPU without packs
# The Ray cluster launcher writes this on an autoscaling head; Ray Tune's own test
# (ray.tune.execution.cluster_info._is_ray_cluster) for "resources may still come".
BOOTSTRAP_CONFIG = Path("~/ray_bootstrap_config.yaml")


class ResourceError(ValueError):
    """A trial asks for more than any node of a fixed-size cluster has."""


def resolve_gpus(spec: SweepSpec, embedded: bool, say: Say) -> SweepSpec:
    import ray

    visible = ray.cluster_resources().get("GPU", 0)
    gpus = spec.resources.gpus
    if gpus == "auto":
        # A pack is one process that owns its GPU; without packs several trials share one.
        gpus = (1.0 if packs_apply(spec) else AUTO_GPU_FRACTION) if visible else 0.0
    elif gpus > 0 and not visible and embedded:
        say(f"no GPU on this machine: running on CPUs instead of {gpus} GPU per trial")
        gpus = 0.0
    if gpus == 0:
        say(f"trials run on CPUs ({spec.resources.cpus:g} each)")
    resources = spec.resources.model_copy(update={"gpus": gpus})
    return spec.model_copy(update={"resources": resources})


def slots(spec: SweepSpec) -> int:
    """Trials the cluster can run at once now."""
    import ray

    gpus, resources = float(spec.resources.gpus), ray.cluster_resources()
    if gpus > 0:
        slots = _times(resources.get("GPU", 0), gpus)
    else:
        slots = _times(resources.get("CPU", 0), spec.resources.cpus)
    return min(slots, spec.max_concurrent or slots)


def _times(total: float, share: float) -> int:
    """How many `share`s `total` holds, as Ray counts (to 1e-4): 5 trials of 0.2 CPU on 1,
    where float division says 4 (1 // 0.2) or 2 (0.3 / 0.1 = 2.9999...)."""
    return round(total * 10_000) // round(share * 10_000)


def say_if_waiting(spec: SweepSpec, say: Say) -> None:
    message = check_fits(spec.resources.cpus, float(spec.resources.gpus))  # resolved
    if message:
        say(message)


def check_fits(cpus: float, gpus: float, *, autoscaling: bool | None = None) -> str | None:
    """With Ray up: can one alive node hold a trial of `cpus` CPUs and `gpus` GPUs? None if
    so; if not, ResourceError on a fixed-size cluster, and on an autoscaling one the
    message to print (trials wait for the autoscaler). `autoscaling` None: detected."""
    import ray

    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    if any(_holds(node, cpus, gpus) for node in nodes):
        return None
    shortfall = _shortfall(nodes, cpus, gpus)
    if autoscaling is None:
        autoscaling = _autoscaling()
    if not autoscaling:
        raise ResourceError(shortfall)
    return f"{shortfall}: trials wait for the autoscaler to add a node that fits"


def _holds(node: dict[str, float], cpus: float, gpus: float) -> bool:
    return node.get("CPU", 0) >= cpus and node.get("GPU", 0) >= gpus


def _shortfall(nodes: list[dict[str, float]], cpus: float, gpus: float) -> str:
    most_cpus = max((node.get("CPU", 0) for node in nodes), default=0)
    most_gpus = max((node.get("GPU", 0) for node in nodes), default=0)
    cluster = (
        f"cluster: {count(sum(n.get('CPU', 0) for n in nodes), 'CPU')},"
        f" {count(sum(n.get('GPU', 0) for n in nodes), 'GPU')}"
    )
    if most_cpus < cpus:
        asked, largest = count(cpus, "CPU"), count(most_cpus, "CPU")
    elif most_gpus < gpus:
        asked, largest = count(gpus, "GPU"), count(most_gpus, "GPU")
    else:
        return (
            f"a trial asks for {count(cpus, 'CPU')} and {count(gpus, 'GPU')}"
            f" but no node has both ({cluster})"
        )
    return f"a trial asks for {asked} but the largest node has {largest} ({cluster})"


def _autoscaling() -> bool:
    """Whether nodes may still join: never for a Ray this process started; for a cluster,
    Ray Tune's test (the launcher's bootstrap config) or an autoscaler's node groups
    that can grow (Ray Data's test). Under Ray Client neither can be read: assume so."""
    import ray
    from ray.util.client import ray as ray_client

    worker = ray._private.worker
    if worker._global_node is not None and worker._global_node.is_head():
        return False
    if ray_client.is_connected():
        return True
    return BOOTSTRAP_CONFIG.expanduser().exists() or _config_can_grow()


def _config_can_grow() -> bool:
    import ray._private.state

    config = ray._private.state.state.get_cluster_config()
    if config is None:
        return False
    return any(
        group.max_count == -1 or group.max_count > group.min_count
        for group in config.node_group_configs
        if group.resources and group.max_count != 0
    )
