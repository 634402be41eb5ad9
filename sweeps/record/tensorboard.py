"""`<run_dir>/tensorboard/<trial_id>/`: a folder of event files per configuration, so
`tensorboard --logdir RUN_DIR` shows each configuration's curves by epoch and, in its
HPARAMS view, their configs (TensorBoard infers the experiment from the sessions).

The event files are written here, in the listener, not by tensorboardX's SummaryWriter:
its writer thread and exit hook raise where nothing can catch them (a full disk printed
tracebacks after the run's one-line error); here a failed write raises in the callback,
where sweeps.record.loggers stops this logger and the run goes on.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from analysis.place import Place
from analysis.rundir import TRIALS
from sweeps.record.curves import CurveListener
from sweeps.record.events import Configuration

if TYPE_CHECKING:
    from tensorboardX.event_file_writer import EventsWriter

TENSORBOARD = "tensorboard"  # the run directory's folder of event files


class TensorBoardLogger(CurveListener):
    """A configuration's curves as scalars by epoch, its config as the hparams of a
    session. A run in a bucket writes them in a local folder first and copies each
    configuration's once it ends."""

    name = TENSORBOARD

    def __init__(self, run_dir: Place) -> None:
        super().__init__()
        import_tensorboardx()
        self.place = run_dir / TENSORBOARD
        self.root = self.place.path if run_dir.local else tempfile.mkdtemp(prefix="sweeps-tb-")
        self.writers: dict[str, EventsWriter] = {}

    def setup(self) -> None:
        self._guard(self._drop_unfinished)

    def _drop_unfinished(self) -> None:
        """A resumed run trains the configurations without a trials row again, under new
        trial ids: the folders of their interrupted attempts go, as their epochs did."""
        folders = self.place.subdirectories()
        if not folders:
            return
        trials = self.place.parent / TRIALS
        finished: set[str] = set()
        for path in trials.parquet_files():
            table = pq.read_table(path, columns=["trial_id"], filesystem=trials.fs)
            finished.update(table.column("trial_id").to_pylist())
        for folder in folders:
            if folder.name not in finished:
                folder.fs.delete_dir(folder.path)

    def begin(self, configuration: Configuration) -> None:
        from tensorboardX.event_file_writer import EventsWriter

        self._close(configuration.id)
        folder = os.path.join(self.root, configuration.id)
        shutil.rmtree(folder, ignore_errors=True)  # a retry's epochs replace the last try's
        os.makedirs(folder)
        writer = EventsWriter(os.path.join(folder, "events"))
        self.writers[configuration.id] = writer
        _write(writer, _session_start(configuration.config))

    def log(self, configuration: Configuration, step: int, values: dict[str, float]) -> None:
        from tensorboardX.summary import scalar

        writer = self.writers[configuration.id]
        for name, value in values.items():
            _write(writer, scalar(name, value), step=step)

    def close(self, configuration: Configuration, failed: bool) -> None:
        writer = self.writers.get(configuration.id)
        if writer is None:
            return
        _write(writer, _session_end(failed))
        self._close(configuration.id)
        if not self.place.local:
            import pyarrow.fs as pafs

            pafs.copy_files(os.path.join(self.root, configuration.id),
                            (self.place / configuration.id).path,
                            destination_filesystem=self.place.fs)  # fmt: skip

    def finished(self) -> None:
        self.abandon()
        if not self.place.local:
            shutil.rmtree(self.root, ignore_errors=True)

    def abandon(self) -> None:
        """Close every file, whatever fails: after a failed write (a full disk) the run
        goes on without this logger."""
        for trial_id in list(self.writers):
            with contextlib.suppress(OSError):
                self._close(trial_id)

    def _close(self, trial_id: str) -> None:
        writer = self.writers.pop(trial_id, None)
        if writer is not None:
            writer.close()


def import_tensorboardx() -> None:
    """Import tensorboardX with torch out of its sight, unless torch is in already: the
    package imports its SummaryWriter, which imports torch only to name torch.Tensor in type
    hints (1.5-2.5 s of a run's start on a 2-core machine), and the driver, which writes
    floats, imports torch nowhere else. Called before Tune starts its threads, so that no
    other import of torch can happen meanwhile."""
    if "torch" in sys.modules or "tensorboardX" in sys.modules:
        return
    sys.modules["torch"] = None  # type: ignore[assignment]  # ImportError: tensorboardX's fallback
    try:
        import tensorboardX.event_file_writer
        import tensorboardX.summary  # noqa: F401
    finally:
        del sys.modules["torch"]


def _write(writer: EventsWriter, summary: Any, step: int = 0) -> None:
    """One event, on disk before this returns: `tensorboard` shows each epoch as it ends."""
    from tensorboardX.proto.event_pb2 import Event

    writer.write_event(Event(wall_time=time.time(), step=step, summary=summary))
    writer.flush()


def _hparam(value: Any) -> bool | int | float | str | None:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return value if math.isfinite(value) else str(value)
    return str(value)  # a list (hidden: [64, 64]) as its text


def _session_start(config: Mapping[str, Any]) -> Any:
    from tensorboardX.summary import hparams

    _, start, _ = hparams({key: _hparam(value) for key, value in config.items()}, {})
    return start


def _session_end(failed: bool) -> Any:
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    status = Status.Value("STATUS_FAILURE" if failed else "STATUS_SUCCESS")
    content = HParamsPluginData(session_end_info=SessionEndInfo(status=status), version=0)
    plugin = SummaryMetadata.PluginData(plugin_name="hparams",
                                        content=content.SerializeToString())  # fmt: skip
    value = Summary.Value(tag="_hparams_/session_end_info",
                          metadata=SummaryMetadata(plugin_data=plugin))  # fmt: skip
    return Summary(value=[value])
