"""What a build tells its front ends, as plain JSON-serialisable events.

The builder never prints: it emits these, and each front end renders them its own way (the CLI's
``--progress plain`` lines, ``--progress json`` one object per line, the notebook's widgets).
Because ``to_json`` / ``event_from_json`` round-trip, an event stream can also be stored or sent
over the daemon's HTTP API and rendered later exactly as it would have been live.

A step is identified by ``id`` (``#3`` in the plain output, counting from 1 across the whole
build), and it goes ``StepStarted`` → (``StepCacheMiss`` → ``StepOutput``…)? → ``StepFinished``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

MissKind = Literal[
    "no-cache",  # --no-cache was given
    "parent",  # an earlier step was rebuilt, so everything after it is
    "instruction",  # the instruction text (after expansion) changed
    "build-arg",  # a build argument the step uses changed
    "files",  # files the step copies changed
    "base",  # the FROM image is a different image now
    "layer-gone",  # the cached layer was deleted from the store
    "new",  # the step was never built before (or its last attempt failed)
]
StepStatus = Literal["cached", "done", "failed"]


@dataclass(frozen=True)
class Event:
    """Base class; ``type`` names the event in its JSON form."""

    type: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class BuildStarted(Event):
    """The Dockerfile was read and parsed; ``stages`` are the ones this build will run."""

    type: ClassVar[str] = "build-started"
    dockerfile: str
    context: str
    stages: list[str] = field(default_factory=list)
    target: str | None = None


@dataclass(frozen=True)
class ContextLoaded(Event):
    """The build context was scanned: how much of it had to be read (the rest came from the
    stat cache, which is why an unchanged context costs only a walk)."""

    type: ClassVar[str] = "context-loaded"
    files: int
    bytes: int
    hashed_files: int
    hashed_bytes: int
    seconds: float


@dataclass(frozen=True)
class StepStarted(Event):
    """``#id [stage index/total] text`` — ``text`` is the instruction after expansion."""

    type: ClassVar[str] = "step-started"
    id: int
    stage: str
    index: int
    total: int
    text: str
    line: int | None = None


@dataclass(frozen=True)
class StepCacheMiss(Event):
    """Why the step runs instead of coming from the cache (``kind`` for programs, ``reason``
    for people: "files changed: app.py", "build arg VERSION changed", …)."""

    type: ClassVar[str] = "step-cache-miss"
    id: int
    kind: MissKind
    reason: str


@dataclass(frozen=True)
class StepOutput(Event):
    """Output of a running step (RUN's stdout/stderr), as it arrives."""

    type: ClassVar[str] = "step-output"
    id: int
    stream: Literal["stdout", "stderr"]
    text: str


@dataclass(frozen=True)
class StepFinished(Event):
    """The step is done: from the cache, built (with its layer's size, if it made one), or
    failed (``error`` says why)."""

    type: ClassVar[str] = "step-finished"
    id: int
    status: StepStatus
    seconds: float
    layer: str | None = None
    layer_size: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class BuildWarning(Event):
    """A lint warning (``--check``) or a notice such as unused build arguments."""

    type: ClassVar[str] = "warning"
    message: str
    rule: str = ""
    line: int | None = None
    hint: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class BuildFinished(Event):
    """The image was written (or found already written) and tagged."""

    type: ClassVar[str] = "build-finished"
    image_id: str
    tags: list[str]
    seconds: float
    cached_steps: int
    built_steps: int


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        BuildStarted, ContextLoaded, StepStarted, StepCacheMiss, StepOutput, StepFinished,
        BuildWarning, BuildFinished,
    )
}  # fmt: skip

EventSink = Callable[[Event], None]


def event_from_json(data: dict[str, Any]) -> Event:
    """The inverse of ``Event.to_json``."""
    fields = dict(data)
    cls = EVENT_TYPES[fields.pop("type")]
    return cls(**fields)
