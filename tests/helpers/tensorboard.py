"""TensorBoard's event files read back as TensorBoard reads them, for the tests of the
TensorBoard logger (tests/sweeps/record/test_tensorboard.py) and of a whole run's loggers
(test_loggers.py)."""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@dataclasses.dataclass
class EventFolder:
    scalars: dict[str, dict[int, float]]  # tag -> {step: value}
    hparams: dict[str, Any]
    status: str | None  # the session's end, as TensorBoard's hparams view shows it


def tfrecords(path: Path) -> Iterator[bytes]:
    """The records of a TFRecord file (what TensorBoard reads), each checked by its CRC."""
    from tensorboardX.record_writer import masked_crc32c

    data, position = path.read_bytes(), 0
    while position < len(data):
        header = data[position : position + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[position + 8 : position + 12])
        body = data[position + 12 : position + 12 + length]
        (body_crc,) = struct.unpack("<I", data[position + 12 + length : position + 16 + length])
        assert header_crc == masked_crc32c(header) and body_crc == masked_crc32c(body), path
        yield body
        position += 16 + length


def read_events(folder: Path) -> EventFolder:
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    scalars: dict[str, dict[int, float]] = {}
    hparams: dict[str, Any] = {}
    status = None
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for record in tfrecords(path):
            event = Event.FromString(record)
            for value in event.summary.value:
                plugin = value.metadata.plugin_data
                if plugin.plugin_name != "hparams":
                    scalars.setdefault(value.tag, {})[event.step] = value.simple_value
                    continue
                data = HParamsPluginData.FromString(plugin.content)
                for key, given in data.session_start_info.hparams.items():
                    hparams[key] = getattr(given, given.WhichOneof("kind"))
                if data.HasField("session_end_info"):
                    status = Status.Name(data.session_end_info.status)
    return EventFolder(scalars, hparams, status)
