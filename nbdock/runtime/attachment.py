"""The caller's end of a start: the event and output records its supervisor sends, as they come.

One per started container, held by whoever asked for the start (the API, the CLI, a notebook
cell, the builder's RUN step); the supervisor keeps the log file for everyone else.
"""

from __future__ import annotations

import os
import select
from collections.abc import Iterator

from nbdock.runtime import logs, trace


class Attachment:
    """The caller's live view of a starting container: events and output from its supervisor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._reader = logs.RecordReader()
        self._pending: list[logs.Record] = []
        self.exit_code: int | None = None
        self.oom_killed = False
        self.error = ""

    def records(self, timeout: float | None = None) -> Iterator[logs.Record]:
        """Yield records until the container exits (or ``timeout`` passes without data)."""
        while True:
            while self._pending:
                record = self._pending.pop(0)
                if record.stream == logs.EVENT:
                    event = record.event()
                    if event["event"] in ("exited", "failed"):
                        self.exit_code = event["exit_code"]
                        self.oom_killed = event.get("oom_killed", False)
                        self.error = event.get("message", "")
                yield record
            if self.fd < 0:
                return
            if timeout is not None and not select.select([self.fd], [], [], timeout)[0]:
                return
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                trace.mark("P end of stream")
                self.close()
                return
            self._pending.extend(self._reader.feed(chunk))

    def wait_started(self) -> dict[str, object]:
        """Read up to the first event; output records seen before it stay queued for the reader."""
        early: list[logs.Record] = []
        event: dict[str, object] = {
            "event": "failed", "exit_code": 125, "message": "supervisor vanished"
        }
        for record in self.records():
            if record.stream == logs.EVENT:
                event = record.event()
                break
            early.append(record)
        self._pending[:0] = early
        return event

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
