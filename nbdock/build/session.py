"""What one build shares between its steps: options, the store, the cache, the context, events.

Step modules receive a ``Session`` and a ``StageState`` and return a ``PlannedStep``; they never
reach for globals, so each can be read (and tested) on its own.
"""

from __future__ import annotations

import os
import platform as host
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbdock.build.cache import CacheIndex, StepInputs
from nbdock.build.context import BuildContext
from nbdock.build.events import Event, EventSink
from nbdock.build.layerindex import LayerIndexes
from nbdock.build.rootfs import RootView
from nbdock.build.state import StageState
from nbdock.image.oci import host_platform
from nbdock.image.records import LayerRecord
from nbdock.image.store import ImageStore
from nbdock.runtime.runtime import Runtime

NetworkChoice = str  # "host" | "none"


@dataclass(frozen=True)
class BuildOptions:
    """``docker build``'s options (those nbdock supports)."""

    context: Path
    dockerfile: Path | None = None  # default: <context>/Dockerfile
    dockerfile_text: str | None = None  # the Dockerfile given inline (fileobj=, stdin)
    tags: tuple[str, ...] = ()
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    secrets: Mapping[str, Path] = field(default_factory=dict)  # --secret id=…,src=…
    network: NetworkChoice = "host"  # what RUN --network=default means
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass
class PlannedStep:
    """A step, ready to be looked up in the cache and, on a miss, executed.

    ``apply`` makes the step's metadata effects on the stage (run on hits and misses alike);
    ``execute`` builds its layer (None for metadata-only steps; it may return None when the
    step changed nothing, and then no layer is added, as BuildKit drops empty layers).
    """

    inputs: StepInputs
    created_by: str
    apply: Callable[[StageState], None] = lambda _state: None
    execute: Callable[[], LayerRecord | None] | None = None


@dataclass
class StageResult:
    """A finished stage: what ``COPY --from`` and ``FROM <stage>`` use."""

    state: StageState


def epoch() -> int:
    """``SOURCE_DATE_EPOCH`` (reproducible builds' convention), else 0: the Unix epoch."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return int(value) if value.isdigit() else 0


def platform_args() -> dict[str, str]:
    """BuildKit's automatic platform ARGs (this host builds for itself)."""
    arch, variant = host_platform()
    plat = f"linux/{arch}" + (f"/{variant}" if variant else "")
    values = {"OS": "linux", "ARCH": arch, "VARIANT": variant or "", "PLATFORM": plat}
    out = {}
    for prefix in ("TARGET", "BUILD"):
        for name, value in values.items():
            out[prefix + name] = value
    return out


class Session:
    """One build: options, collaborators and the stages finished so far."""

    def __init__(
        self,
        *,
        options: BuildOptions,
        store: ImageStore,
        cache: CacheIndex,
        runtime: Runtime,
        state_dir: Path,
        context: BuildContext,
        emit: EventSink,
        escape: str,
        index_memo: dict[str, Any] | None = None,
    ) -> None:
        self.options = options
        self.store = store
        self.cache = cache
        self.runtime = runtime
        self.state_dir = state_dir
        self.context = context
        self.emit_event = emit
        self.escape = escape
        self.indexes = LayerIndexes(store, state_dir, index_memo)
        self.epoch = epoch()
        self.stages: dict[int, StageResult] = {}
        self.stage_names: dict[str, int] = {}
        self.current_step = 0
        self.used_build_args: set[str] = set()
        self.log: list[str] = []
        self.temp_paths: list[str] = []
        self.declared_args: set[str] = set()
        self.stage_rebuilt: dict[int, bool] = {}
        self.machine = host.machine()

    def emit(self, event: Event) -> None:
        self.emit_event(event)

    def view(self, layers: list[LayerRecord]) -> RootView:
        return self.indexes.view(layers)

    def unpacked(self, layers: list[LayerRecord]) -> list[str]:
        """The layers' directories for a container or a merged read, unpacking as needed."""
        if not layers:
            empty = self.state_dir / "empty-layer"
            empty.mkdir(parents=True, exist_ok=True)
            return [str(empty)]
        return [str(p) for p in self.store.unpacked_dirs(layers)]
