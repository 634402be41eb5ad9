"""The training loop: bundles (trainers.bundle) trained epoch by epoch, Keras' fit()
semantics.

`train(config)` trains one model; `train_members(configs)` trains a bundle, K same-shape
MLPs stacked into one model, each member exactly as it would train alone; a pack
(trainers.pack) trains several bundles in one process. All three are `train_bundles`:
each round launches every running bundle's epoch before it collects any, so that on one
GPU their kernels overlap; `train` and `train_members` are a pack of one (`train_bundle`)
whose errors are raised as they were, where a pack ends a failing bundle alone. On CUDA
the epoch's steps run as captured graphs (trainers.graphs) unless the config says
`graphs: off`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from trainers.bundle import Bundle
from trainers.data import Dataset

Report = Callable[[dict[str, Any]], None]
MembersReport = Callable[[list[dict[str, Any]]], None]
Placed = list[tuple[int, Bundle]]  # bundles, each with its caller's place for it
# (the bundle's place, each of its configurations' epoch or final metrics)
BundleReport = Callable[[int, list[dict[str, Any]]], None]
Failed = Callable[[int, Exception], None]  # (the bundle's place, why it failed)


def train(
    config: Mapping[str, Any], dataset: Dataset | None = None, report: Report | None = None
) -> dict[str, Any]:
    """Train one model as `config` says and return its final metrics.

    `dataset` is loaded from the config's data root when not given (a sweep passes the
    one the driver loaded). `report` is called after every epoch with `epoch` (1-based),
    `loss`, `accuracy`, `val_loss`, `val_accuracy` and `epoch_time_s`. Bad config raises
    ConfigError before any work.
    """
    each = None if report is None else (lambda metrics: report(metrics[0]))
    return train_members([config], dataset, each)[0]


def train_members(
    configs: Sequence[Mapping[str, Any]],
    dataset: Dataset | None = None,
    report: MembersReport | None = None,
) -> list[dict[str, Any]]:
    """Train `configs` together; each one's final metrics, in their order.

    More than one must be MLPs agreeing on every key but trainers.config.FUSABLE_KEYS
    (ConfigError names the first key they do not). `report` is called after every epoch
    with the list of each configuration's epoch metrics (what `train` reports for one).
    Whatever the bundle raises, ConfigError before any work included, is raised here.
    """
    return train_bundle(Bundle.from_configs(configs, dataset), report)


def train_bundle(bundle: Bundle, report: MembersReport | None = None) -> list[dict[str, Any]]:
    """`bundle` trained alone, a pack of one; each configuration's final metrics in the
    given order. Whatever the bundle raises is raised here, as it was. A bundle restored
    at its last epoch (trainers.checkpoint) only finishes."""
    if not bundle.epochs_left:
        return bundle.finish()
    each = None if report is None else (lambda place, metrics: report(metrics))
    finals: list[list[dict[str, Any]]] = []
    train_bundles([(0, bundle)], each, lambda place, final: finals.append(final), _raise)
    return finals[0]


def train_bundles(
    bundles: Placed, report: BundleReport | None, end: BundleReport, fail: Failed
) -> None:
    """Train `bundles` to their last epoch: every bundle captures its graphs before any
    trains (a capture waits for the whole device), then each round launches every running
    bundle's epoch before it collects any. `report` gets each bundle's every epoch, `end`
    its final metrics (made before its last epoch is reported). A bundle that raises goes
    to `fail` and trains no further; `fail` raising ends the loop. The caller keeps
    `bundles` alive until this returns (trainers.graphs: destroying a graph frees its
    stream's cuBLAS workspace)."""
    running = _surviving(bundles, lambda bundle: bundle.capture(), fail)
    while running:
        launched = _surviving(running, lambda bundle: bundle.launch_epoch(), fail)
        running = []
        for place, bundle in launched:
            try:
                metrics = bundle.collect_epoch()
                final = None if bundle.epochs_left else bundle.finish()
            except Exception as error:
                fail(place, error)
                continue
            if report is not None:  # outside the try: the caller's errors, not the bundle's
                report(place, metrics)
            if final is None:
                running.append((place, bundle))
            else:
                end(place, final)


def _surviving(bundles: Placed, work: Callable[[Bundle], None], fail: Failed) -> Placed:
    """The bundles whose `work` went through; each one that raised went to `fail`."""
    kept = []
    for place, bundle in bundles:
        try:
            work(bundle)
        except Exception as error:
            fail(place, error)
        else:
            kept.append((place, bundle))
    return kept


def _raise(place: int, error: Exception) -> None:
    """A lone bundle's error is its caller's, raised as it was."""
    raise error
