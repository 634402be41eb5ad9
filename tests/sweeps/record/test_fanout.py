"""The fan-out: Tune's trial events as each configuration's events, decoded once."""

from __future__ import annotations

import math

from analysis.rundir import Status
from sweeps.record.events import Ended, Epoch, Listener, Started
from sweeps.record.fanout import Fanout
from sweeps.record.protocol import EPOCH, FINAL, encode

CONFIGS = [{"x": 1}, {"x": 2}, {"x": 3}]


class Heard(Listener):
    """Every event, as a line: what a listener is told, in order."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def started(self, event: Started) -> None:
        self.lines.append(f"started {event.configuration.id}{' again' if event.retry else ''}")

    def epoch(self, event: Epoch) -> None:
        self.lines.append(f"epoch {event.configuration.id} {event.metrics['epoch']}")

    def ended(self, name: str, events: list[Ended]) -> None:
        ends = ", ".join(f"{e.configuration.id} {e.status.value} {e.why}" for e in events)
        self.lines.append(f"ended {name}: {ends}")

    def note(self, group: str, text: str) -> None:
        self.lines.append(f"note {group}: {text}")


def metrics(epoch: int, loss: float = 0.5) -> dict[str, float]:
    return {"epoch": epoch, "loss": loss, "val_loss": loss, "val_accuracy": 0.9}


def test_a_group_is_its_configurations_with_ids_and_one_status_each() -> None:
    heard = Heard()
    fanout = Fanout(CONFIGS, [[0, 1]], heard, [])
    fanout.start("t", [0, 1])
    fanout.report("t", encode(EPOCH, [metrics(1), metrics(1, loss=math.nan)],
                              notes=["capture failed: eager"]))  # fmt: skip
    fanout.report("t", encode(FINAL, [metrics(1), metrics(1, loss=math.nan)]))
    fanout.end("t", None)
    assert heard.lines == [
        "started t-0",
        "started t-1",
        "note t: capture failed: eager",
        "epoch t-0 1",
        "epoch t-1 1",
        "ended t: t-0 TERMINATED None, t-1 DIVERGED loss became NaN at epoch 1",
    ]


def test_a_retried_pack_reports_nothing_twice() -> None:
    """Bundle [0] ends at once; the pack fails; Tune retries it, and the retry trains
    all three again: the first bundle is not started, nor ended, a second time."""
    heard = Heard()
    fanout = Fanout(CONFIGS, [[0, 1, 2]], heard, [])
    fanout.start("p", [0, 1, 2])
    fanout.report("p", encode(FINAL, [metrics(1)], positions=[0], errors=[None]))
    fanout.start("p", [0, 1, 2])  # on_trial_recover
    fanout.report("p", encode(EPOCH, [metrics(1), metrics(1), metrics(1)], positions=[0, 1, 2]))
    fanout.report("p", encode(FINAL, [{}], positions=[2], errors=["RuntimeError: oom"]))
    fanout.end("p", "ActorDiedError: gone")
    assert heard.lines == [
        "started p-0",
        "started p-1",
        "started p-2",
        "ended p-0: p-0 TERMINATED None",
        "started p-1 again",
        "started p-2 again",
        "epoch p-1 1",
        "epoch p-2 1",
        "ended p-2: p-2 ERROR RuntimeError: oom",
        "ended p: p-1 ERROR ActorDiedError: gone",
    ]


class Full(Listener):
    def ended(self, name: str, events: list[Ended]) -> None:
        raise OSError(28, "No space left on device")


def test_a_record_that_cannot_write_stops_the_run_and_the_views_go_on() -> None:
    view = Heard()
    fanout = Fanout(CONFIGS, [[0], [1]], Full(), [view])
    for key, index in (("a", 0), ("b", 1)):
        fanout.start(key, [index])
        fanout.end(key, None)
    assert fanout.failure is not None and fanout.failure.errno == 28
    assert fanout.stopper.stop_all()
    assert view.lines == ["started a", "ended a: a STOPPED None",
                          "started b", "ended b: b STOPPED None"]  # fmt: skip


def test_an_ended_event_carries_what_the_writer_and_the_loggers_need() -> None:
    ends: list[Ended] = []

    class Keep(Listener):
        def ended(self, name: str, events: list[Ended]) -> None:
            ends.extend(events)

    fanout = Fanout(CONFIGS, [[2]], Keep(), [])
    fanout.start("t", [2])
    fanout.report("t", encode(EPOCH, [metrics(1)]))
    fanout.report("t", encode(FINAL, [{**metrics(1), "test_accuracy": 0.8,
                                       "confusion": [[1, 0], [0, 1]]}]))  # fmt: skip
    fanout.end("t", None)
    (end,) = ends
    assert end.configuration.index == 2 and end.configuration.config == {"x": 3}
    assert end.configuration.bundle_id is None and end.status is Status.DONE
    assert end.final["confusion"] == [[1, 0], [0, 1]]  # as reported: not a scalar
    assert end.last["test_accuracy"] == 0.8 and len(end.epochs) == 1
