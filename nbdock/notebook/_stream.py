"""Copy an attached container's output into the running cell as it arrives.

Output goes to ``sys.stdout``/``sys.stderr`` with a flush after every chunk: under ipykernel that
sends a ``stream`` message at once, so a container printing a line per second shows each line
while it runs, and nbclient/nbval record ordinary stream outputs. Bytes are decoded incrementally,
so a UTF-8 character split across two reads is not mangled.

An interrupt (the notebook's stop button, i.e. ``KeyboardInterrupt``) stops the container the way
``docker stop`` does, then keeps draining what it printed before it died.
"""

from __future__ import annotations

import codecs
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from nbdock.client import Client
from nbdock.client.containers import AttachedRun
from nbdock.errors import NbdockError

Writer = Callable[[str, str], None]


@dataclass(frozen=True)
class Outcome:
    """How an attached run ended."""

    container_id: str
    exit_code: int | None
    error: str
    interrupted: bool
    oom_killed: bool
    seconds: float


def write_to_cell(stream: str, text: str) -> None:
    """The default writer: the cell's stdout or stderr, flushed so it is sent now."""
    target = sys.stdout if stream == "stdout" else sys.stderr
    target.write(text)
    target.flush()


def stream_run(client: Client, attached: AttachedRun, write: Writer = write_to_cell,
               stop_timeout: float = 3.0) -> Outcome:
    """Stream until the container exits; returns its exit code and why it ended."""
    started = time.monotonic()
    decoders = {name: codecs.getincrementaldecoder("utf-8")(errors="replace")
                for name in ("stdout", "stderr")}
    interrupted = False
    while True:
        try:
            for name, data in attached.output():
                text = decoders[name].decode(data)
                if text:
                    write(name, text)
            break
        except KeyboardInterrupt:
            if interrupted:  # a second interrupt: stop waiting politely
                _kill(client, attached.container_id)
            interrupted = True
            # stop from a thread and keep reading here: the supervisor must be able to write what
            # the container printed before it died, and the attachment keeps its fd, so the loop
            # going round again shows that output
            threading.Thread(
                target=_stop, args=(client, attached.container_id, stop_timeout), daemon=True
            ).start()
    for name, decoder in decoders.items():
        tail = decoder.decode(b"", final=True)
        if tail:
            write(name, tail)
    attached.attachment.close()
    return Outcome(
        container_id=attached.container_id,
        exit_code=attached.exit_code,
        error=attached.attachment.error,
        interrupted=interrupted,
        oom_killed=attached.oom_killed,
        seconds=time.monotonic() - started,
    )


def _stop(client: Client, container_id: str, timeout: float) -> None:
    try:
        client.containers.get(container_id).stop(timeout=timeout)
    except NbdockError:
        pass  # already gone: nothing left to stop


def _kill(client: Client, container_id: str) -> None:
    try:
        client.containers.get(container_id).kill()
    except NbdockError:
        pass


