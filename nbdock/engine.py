"""The engine: composes the image store and the runtime, and owns Docker's run semantics.

This is where an image config meets the user's options: Entrypoint/Cmd/Env/WorkingDir/User are
merged exactly as ``docker run`` merges them, and the result is a plain ``ContainerSpec`` for the
runtime, which never sees an image.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from nbdock._paths import data_root
from nbdock._types import NetworkMode
from nbdock.errors import Conflict, InvalidArgument
from nbdock.image.store import ImageRecord, ImageStore
from nbdock.runtime import logs
from nbdock.runtime.attachment import Attachment
from nbdock.runtime.exec import ExecRequest
from nbdock.runtime.runtime import Runtime
from nbdock.runtime.spec import DEFAULT_PATH, ContainerSpec, Limits, Mount, Process
from nbdock.runtime.state import State

# What the front ends (client, cli, notebook) may use of the layers below, re-exported so they
# import only the engine (the design's layering rule, checked by tests/unit/test_layering.py).
__all__ = [
    "Attachment", "Engine", "ExecRequest", "ImageRecord", "Limits", "Mount", "RunOptions", "State",
    "logs", "parse_signal",
]

_ADJECTIVES = (
    "brave", "calm", "clever", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid",
    "merry", "nifty", "proud", "quirky", "sharp", "tender", "vivid", "witty", "zealous", "bold",
)
_NOUNS = (
    "babbage", "curie", "darwin", "euler", "fermat", "gauss", "hopper", "hypatia", "kepler",
    "lovelace", "noether", "pascal", "ritchie", "shannon", "tesla", "turing", "wozniak", "yonath",
)


_NO_LABELS: Mapping[str, str] = MappingProxyType({})


class RunOptions(NamedTuple):
    """What ``docker run`` takes, minus attach/detach (a front-end concern).

    Immutable; a NamedTuple rather than a frozen dataclass, which costs ~0.8 ms to define on
    every ``nbdock run`` (its methods are generated through exec).
    """

    image: str
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None  # () clears the image's entrypoint
    env: tuple[str, ...] = ()
    workdir: str = ""
    user: str | None = None
    hostname: str = ""
    name: str = ""
    mounts: tuple[Mount, ...] = ()
    readonly_rootfs: bool = False
    limits: Limits = Limits()  # frozen: one shared default is safe
    network: NetworkMode = "none"
    auto_remove: bool = False
    labels: Mapping[str, str] = _NO_LABELS


_NAME_ATTEMPTS = 20


def _random_name() -> str:
    """``adjective_scientist``, as Docker names containers."""
    pick = int.from_bytes(os.urandom(4), "big")
    return f"{_ADJECTIVES[pick % len(_ADJECTIVES)]}_{_NOUNS[(pick >> 16) % len(_NOUNS)]}"


def _merge_env(image_env: list[str], overrides: tuple[str, ...]) -> tuple[str, ...]:
    merged: dict[str, str] = {}
    for item in [*image_env, *overrides]:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable {item!r}", hint="use KEY=VALUE")
        merged[key] = value if sep else merged.get(key, "")
    merged.setdefault("PATH", DEFAULT_PATH)
    return tuple(f"{k}={v}" for k, v in merged.items())


def parse_signal(value: str | int) -> int:
    """``SIGTERM``, ``term``, ``15`` or 15 → 15, as ``docker kill -s`` and STOPSIGNAL take it."""
    if isinstance(value, int):
        return value
    text = value.upper()
    if text.isdigit():
        return int(text)
    try:
        return int(signal.Signals[text if text.startswith("SIG") else f"SIG{text}"])
    except KeyError:
        raise InvalidArgument(f"invalid signal {value!r}", hint="e.g. SIGTERM, KILL or 9") from None


def _stop_signal(value: Any) -> int:
    return parse_signal(str(value)) if value else int(signal.SIGTERM)


def command_for(config: dict[str, Any], options: RunOptions) -> list[str]:
    """Docker's rule: --entrypoint replaces the image's and drops its CMD unless a command is given."""
    entrypoint = list(config.get("Entrypoint") or [])
    cmd = list(config.get("Cmd") or [])
    if options.entrypoint is not None:
        entrypoint = list(options.entrypoint)
        cmd = []
    if options.command:
        cmd = list(options.command)
    return entrypoint + cmd


class Engine:
    """One store and one runtime under a state root (``$NBDOCK_ROOT`` or the default)."""

    def __init__(self, root: Path | None = None, cleanup: bool = True) -> None:
        self.root = Path(root) if root else data_root()
        self.images = ImageStore(self.root / "image")
        self.runtime = Runtime(self.root / "containers")
        if cleanup:
            self.runtime.cleanup()

    def close(self) -> None:
        """Release the runtime's helper process and pre-warmed containers; containers stay."""
        self.runtime.close()

    def prewarm(self) -> None:
        """Have a pre-warmed container ready now (``runtime/pool.py``) rather than after the
        next start; a no-op where pre-warming is off (the CLI, ``NBDOCK_POOL=0``)."""
        self.runtime.prewarm()

    # ------------------------------------------------------------------ images
    def bootstrap_image(self, kind: str, suite: str | None = None) -> ImageRecord:
        """A local base image without a registry: ``busybox`` (busybox-static) or ``debian``."""
        from nbdock.image import bootstrap

        if kind == "busybox":
            return bootstrap.bootstrap_busybox(self.images)
        if kind == "debian":
            return bootstrap.bootstrap_debian(self.images, suite)
        raise InvalidArgument(f"unknown base image kind {kind!r}", hint="use busybox or debian")

    # ------------------------------------------------------------------ containers
    def create_container(self, options: RunOptions) -> State:
        image = self.images.get(options.image)
        config = image.config.get("config") or {}
        args = command_for(config, options)
        if not args:
            raise InvalidArgument(
                f"no command specified for image {options.image}",
                hint="give a command after the image name, or set CMD/ENTRYPOINT in the image",
            )
        container_id = os.urandom(32).hex()
        spec = ContainerSpec(
            id=container_id,
            name=options.name or _random_name(),
            process=Process(
                args=tuple(args),
                env=_merge_env(list(config.get("Env") or []), options.env),
                cwd=options.workdir or config.get("WorkingDir") or "/",
                user=options.user if options.user is not None else config.get("User") or "",
            ),
            layers=tuple(str(p) for p in self.images.layer_dirs(image)),
            hostname=options.hostname,
            mounts=options.mounts,
            readonly_rootfs=options.readonly_rootfs,
            limits=options.limits,
            network=options.network,
            stop_signal=_stop_signal(config.get("StopSignal")),
            annotations=self._annotations(image, options, config),
        )
        return self._create_named(spec, options)

    def _create_named(self, spec: ContainerSpec, options: RunOptions) -> State:
        """Create; a generated name another container holds is drawn again.

        The runtime checks names under its lock (two processes may pick at once); asking it is
        cheaper than listing every container first to pick a free name (O(containers) each).
        """
        for _ in range(_NAME_ATTEMPTS):
            try:
                return self.runtime.create(spec, auto_remove=options.auto_remove)
            except Conflict:
                if options.name:
                    raise
                spec = spec.replace(name=_random_name())
        spec = spec.replace(name=f"{_ADJECTIVES[0]}_{os.urandom(3).hex()}")
        return self.runtime.create(spec, auto_remove=options.auto_remove)

    @staticmethod
    def _annotations(image: ImageRecord, options: RunOptions, config: dict[str, Any]) -> dict[str, str]:
        import json

        labels = {**(config.get("Labels") or {}), **options.labels}
        return {
            "image.ref": options.image,
            "image.id": image.id,
            "labels": json.dumps(labels, sort_keys=True),
            "entrypoint": json.dumps(
                list(options.entrypoint) if options.entrypoint is not None
                else config.get("Entrypoint")
            ),
            "cmd": json.dumps(
                list(options.command) if options.command
                else ([] if options.entrypoint is not None else config.get("Cmd"))
            ),
        }

    def start_container(self, container_id: str) -> Attachment:
        return self.runtime.start(container_id)

    def run(self, options: RunOptions) -> tuple[State, Attachment]:
        created = self.create_container(options)
        return created, self.runtime.start(created.id)

    def inspect_container(self, name_or_id: str) -> dict[str, Any]:
        from nbdock.inspection import container_inspect

        container_id = self.runtime.resolve(name_or_id)
        return container_inspect(self.runtime.state(container_id), self.runtime.spec(container_id))

    # ------------------------------------------------------------------ builds
    def build(
        self,
        context: str | Path,
        *,
        dockerfile: str | Path | None = None,
        dockerfile_text: str | None = None,
        tags: tuple[str, ...] | list[str] = (),
        build_args: dict[str, str] | None = None,
        target: str | None = None,
        no_cache: bool = False,
        secrets: dict[str, str | Path] | None = None,
        labels: dict[str, str] | None = None,
        on_event: Any = None,
        check: bool = False,
    ) -> Any:
        """``docker build``: returns a ``BuildResult`` (``.image``, ``.events``).

        Build containers live in their own runtime root (``<root>/build/containers``), so they
        never show in ``ps -a``; ``on_event`` receives each progress event as it happens.
        ``check=True`` only lints (``build --check``) and returns a ``CheckResult``.
        """
        from nbdock.build import Builder, BuildOptions

        if getattr(self, "_builder", None) is None:
            self._builder = Builder(self.images, self.root / "build")
        options = BuildOptions(
            context=Path(context),
            dockerfile=Path(dockerfile) if dockerfile is not None else None,
            dockerfile_text=dockerfile_text,
            tags=tuple(tags),
            build_args=dict(build_args or {}),
            target=target,
            no_cache=no_cache,
            secrets={k: Path(v) for k, v in (secrets or {}).items()},
            labels=dict(labels or {}),
        )
        if check:
            return self._builder.check(options)
        return self._builder.build(options, on_event)

    def history(self, reference: str) -> list[Any]:
        """``docker history``: one row per history entry, newest first, with layer sizes."""
        from nbdock.build.history import history

        return history(self.images.get(reference))
