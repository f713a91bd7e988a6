"""The container log: framed records that keep stdout and stderr apart, with timestamps.

One format serves the log file on disk and the live attach pipe from the supervisor, so readers of
either share one parser. A record is ``stream (1 byte) | time_ns (8) | length (4) | payload``;
stream 0 carries supervisor events as JSON (started, exited) on the attach pipe only.
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

EVENT, STDOUT, STDERR = 0, 1, 2
_HEADER = struct.Struct("<BQI")


class Record(NamedTuple):
    stream: int
    time_ns: int
    data: bytes

    def event(self) -> dict[str, Any]:
        return json.loads(self.data)


def frame(stream: int, data: bytes, time_ns: int | None = None) -> bytes:
    return _HEADER.pack(stream, time_ns if time_ns is not None else time.time_ns(), len(data)) + data


def event_frame(**fields: Any) -> bytes:
    return frame(EVENT, json.dumps(fields).encode())


class RecordReader:
    """Incremental parser: feed bytes as they arrive, take whole records out."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> Iterator[Record]:
        self._buffer += chunk
        while len(self._buffer) >= _HEADER.size:
            stream, stamp, length = _HEADER.unpack_from(self._buffer)
            end = _HEADER.size + length
            if len(self._buffer) < end:
                break
            data = bytes(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            yield Record(stream, stamp, data)


def read_log(path: str, since_offset: int = 0) -> tuple[list[Record], int]:
    """Whole records from ``since_offset``; returns them and the offset after the last one."""
    try:
        with open(path, "rb") as handle:
            handle.seek(since_offset)
            raw = handle.read()
    except FileNotFoundError:
        return [], since_offset
    reader = RecordReader()
    records = list(reader.feed(raw))
    consumed = len(raw) - len(reader._buffer)
    return records, since_offset + consumed


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
