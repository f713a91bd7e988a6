"""The container status widget: state, uptime, CPU, memory, the last log lines, Stop and Remove.

The state lives in traitlets (``state``, ``exit_code``, ``cpu_percent``, ``memory_bytes``,
``log_tail``, ...); the children (HTML views and buttons) are redrawn from them. Two daemon
threads keep them current while the container runs: one polls ``container.stats()`` and its
state every ``interval`` seconds, one follows its log. Threads only ever set traits — ipywidgets
sends each change as a comm message, which ipykernel delivers from any thread — and never use an
``Output`` context manager, which captures by thread-unsafe global state.

Its ``text/plain`` says what was started, not how it is doing, so it is the same on every run.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import ipywidgets as widgets
from traitlets import Float, Int, List, Unicode, observe

from nbdock.client import Container
from nbdock.errors import NbdockError, NotFound
from nbdock.notebook._display import GREY, RED, clock, esc, human_size, parse_time, state_badge

_LIVE = ("created", "running")


class ContainerStatus(widgets.VBox):
    """Live view of one container; ``refresh()`` updates it now, ``watch()`` keeps it updating."""

    container_id = Unicode("")
    container_name = Unicode("")
    image = Unicode("")
    command = Unicode("")
    state = Unicode("unknown")
    exit_code = Int(None, allow_none=True)
    error = Unicode("")
    uptime_seconds = Float(0.0)
    cpu_percent = Float(None, allow_none=True)
    memory_bytes = Int(None, allow_none=True)
    memory_limit_bytes = Int(None, allow_none=True)
    pids = Int(None, allow_none=True)
    log_tail = List(Unicode())
    message = Unicode("")

    def __init__(self, container: Container, interval: float = 1.0, tail_lines: int = 8,
                 stop_timeout: float = 10.0) -> None:
        self.container = container
        self.interval = interval
        self.stop_timeout = stop_timeout
        self._lines: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._partial = ""
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_cpu: tuple[float, int] | None = None
        self._header = widgets.HTML()
        self._stats = widgets.HTML()
        self._logs = widgets.HTML()
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="warning",
                                          tooltip="docker stop: the stop signal, then SIGKILL")
        self.remove_button = widgets.Button(description="Remove", icon="trash",
                                            button_style="danger",
                                            tooltip="docker rm -f: kill if running, then remove")
        self.stop_button.add_class("nbdock-stop")
        self.remove_button.add_class("nbdock-remove")
        self.stop_button.on_click(lambda _b: self._in_background(self.stop))
        self.remove_button.on_click(lambda _b: self._in_background(self.remove))
        super().__init__(children=[
            self._header, self._stats, self._logs,
            widgets.HBox([self.stop_button, self.remove_button]),
        ])
        self.add_class("nbdock-status")
        self.container_id = container.id
        self.container_name = container.name
        self.image = container.image
        self.command = " ".join([container.attrs.get("Path", ""), *container.attrs.get("Args", [])])
        self.refresh()

    # ------------------------------------------------------------------ state
    def refresh(self) -> None:
        """Read the container's state, stats and log tail now (any thread may call this)."""
        with self._lock:
            if self.state == "removed":
                return
            try:
                self.container.reload()
            except NotFound:
                self.state = "removed"
                self.cpu_percent = None
                self._push_logs()
                return
            attrs = self.container.attrs["State"]
            self.error = str(attrs.get("Error") or "")
            self.exit_code = int(attrs["ExitCode"]) if attrs["Status"] == "exited" else None
            self._uptime(attrs)
            self._usage(attrs["Status"])
            self._push_logs()
            self.state = str(attrs["Status"])

    def _uptime(self, attrs: dict[str, Any]) -> None:
        started = parse_time(str(attrs.get("StartedAt", "")))
        if started is None:
            self.uptime_seconds = 0.0
            return
        finished = parse_time(str(attrs.get("FinishedAt", "")))
        self.uptime_seconds = max(0.0, (finished or time.time()) - started)

    def _usage(self, status: str) -> None:
        stats = self.container.stats() if status == "running" else {}
        if not stats:
            self.cpu_percent = None
            self._last_cpu = None
            return
        now, used = time.monotonic(), int(stats["cpu_usage_ns"])
        if self._last_cpu is not None and now > self._last_cpu[0]:
            spent = (used - self._last_cpu[1]) / 1e9
            self.cpu_percent = max(0.0, 100.0 * spent / (now - self._last_cpu[0]))
        self._last_cpu = (now, used)
        self.memory_bytes = stats.get("memory_bytes")
        self.memory_limit_bytes = stats.get("memory_limit_bytes")
        self.pids = stats.get("pids")

    def add_log(self, data: bytes) -> None:
        """Feed log bytes (the follower thread does); whole lines go into the tail."""
        text = self._partial + data.decode(errors="replace")
        *lines, self._partial = text.split("\n")
        self._lines.extend(lines)

    def _push_logs(self) -> None:
        tail = list(self._lines) + ([self._partial] if self._partial else [])
        if tail != self.log_tail:
            self.log_tail = tail

    # ------------------------------------------------------------------ actions
    def stop(self) -> None:
        self._act(lambda: self.container.stop(timeout=self.stop_timeout), "stopping")

    def remove(self) -> None:
        self._act(lambda: self.container.remove(force=True), "removing")

    def _act(self, action: Any, doing: str) -> None:
        self.message = f"{doing}…"
        try:
            action()
            self.message = ""
        except NbdockError as error:
            self.message = str(error)
        self.refresh()

    def _in_background(self, action: Any) -> None:
        """Button clicks arrive on the kernel's main thread; a stop can take seconds."""
        threading.Thread(target=action, daemon=True, name="nbdock-status-action").start()

    # ------------------------------------------------------------------ live updates
    def watch(self) -> None:
        """Start the poller and the log follower (daemon threads; both end with the container)."""
        if self._threads:
            return
        self._threads = [
            threading.Thread(target=self._poll, daemon=True, name="nbdock-status-poll"),
            threading.Thread(target=self._follow, daemon=True, name="nbdock-status-logs"),
        ]
        for thread in self._threads:
            thread.start()

    def unwatch(self, timeout: float | None = None) -> None:
        """Stop the poller now. The log follower cannot be woken while it waits for output; it
        ignores what comes after this and ends with the container (it is a daemon thread)."""
        self._halt.set()
        if self._threads:
            self._threads[0].join(timeout)

    def _poll(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                self.refresh()
            except NbdockError as error:
                self.message = str(error)
                return
            if self.state not in _LIVE:
                follower = self._threads[1]
                follower.join(5 * self.interval)  # the last lines, then one final update
                self.refresh()
                return

    def _follow(self) -> None:
        try:
            for _stream, data, _time in self.container.log_records(follow=True):
                if self._halt.is_set():
                    return
                self.add_log(data)
        except (NbdockError, OSError):
            return  # removed while following: the poller reports that

    def close(self) -> None:
        self._halt.set()
        super().close()

    # ------------------------------------------------------------------ rendering
    @observe("state", "exit_code", "error", "uptime_seconds", "cpu_percent", "memory_bytes",
             "log_tail", "message")
    def _render(self, _change: Any = None) -> None:
        self._header.value = (
            f'<div class="nbdock-status-header"><b>{esc(self.container_name)}</b> '
            f'<code>{esc(self.container_id[:12])}</code> '
            f'<span style="color:{GREY}">{esc(self.image)} · {esc(self.command)}</span> '
            f"{state_badge(self.state, self.exit_code)}</div>"
        )
        parts = []
        if self.state in ("running", "exited"):
            parts.append(f"uptime {clock(self.uptime_seconds)}")
        if self.cpu_percent is not None:
            parts.append(f"CPU {self.cpu_percent:.1f}%")
        if self.memory_bytes is not None and self.state == "running":
            limit = f" / {human_size(self.memory_limit_bytes)}" if self.memory_limit_bytes else ""
            parts.append(f"memory {human_size(self.memory_bytes)}{limit}")
        if self.pids is not None and self.state == "running":
            parts.append(f"{self.pids} processes")
        note = self.message or self.error
        warn = f' <span style="color:{RED}">{esc(note)}</span>' if note else ""
        self._stats.value = f'<div class="nbdock-status-stats">{esc(" · ".join(parts))}{warn}</div>'
        self._logs.value = (
            '<pre class="nbdock-status-logs" style="margin:0;max-height:12em;overflow:auto">'
            f"{esc(chr(10).join(self.log_tail))}</pre>"
        )
        gone = self.state == "removed"
        self.stop_button.disabled = self.state != "running"
        self.remove_button.disabled = gone

    def text(self) -> str:
        """The stable summary: what runs where, not how it is doing (that changes every second)."""
        return f"container {self.container_name} (image {self.image}) started detached"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = self.text()
        return bundle
