"""The builder: Dockerfile + context → an image in the store, step by step, with Docker's cache.

    read and parse the Dockerfile ─ the .dockerignore ─ global ARGs
    → the stages the target needs (stages.build_order)
    → per stage: FROM (an image, ``scratch`` or an earlier stage), the base image's ONBUILD
      triggers, then each instruction through ``steps.StageRunner`` (cache hit or run)
    → the image config and layers → ``ImageStore.create_image`` (or the identical image that
      already exists) → tags

State lives under ``<root>/build/``: the cache index (``cache.db``), the stat caches, layer
indexes, ``RUN --mount=type=cache`` directories, and the runtime root of build containers
(``containers/``), separate from the user's containers so that ``nbdock ps -a`` never lists them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from nbdock.build.args import global_args
from nbdock.build.cache import CacheIndex, base_key
from nbdock.build.context import BuildContext
from nbdock.build.events import (
    BuildFinished,
    BuildStarted,
    BuildWarning,
    ContextLoaded,
    Event,
    StepFinished,
    StepStarted,
)
from nbdock.build.session import BuildOptions, Session, StageResult, platform_args
from nbdock.build.stages import base_of, build_order, stage_label
from nbdock.build.statcache import StatCache
from nbdock.build.state import StageState
from nbdock.build.steps import StageRunner
from nbdock.build.steps_run import PROXY_ARGS
from nbdock.dockerfile import (
    Dockerfile,
    DockerIgnore,
    Instruction,
    Stage,
    expand_word,
    lint_dockerfile,
    parse_check_directive,
    parse_dockerfile,
)
from nbdock.errors import (
    BuildError,
    DockerfileError,
    ImageNotFound,
    InvalidReference,
    NbdockError,
)
from nbdock.image.oci import canonical_json, host_platform
from nbdock.image.records import ImageRecord
from nbdock.image.reference import parse_reference
from nbdock.image.store import ImageStore
from nbdock.runtime.runtime import Runtime


@dataclass
class BuildResult:
    """The built image and every event the build emitted (the same the callback saw)."""

    image: ImageRecord
    events: list[Event] = field(default_factory=list)


@dataclass
class CheckResult:
    """``--check``: the lint warnings, and whether ``# check=error=true`` makes them fatal."""

    warnings: list[BuildWarning]
    error: bool


def read_dockerfile(options: BuildOptions) -> tuple[str, str, Path | None]:
    """(text, name shown in messages, path or None when given inline)."""
    if options.dockerfile_text is not None:
        return options.dockerfile_text, "Dockerfile", None
    path = options.dockerfile or Path("Dockerfile")
    if not path.is_absolute():
        path = Path(options.context) / path  # docker-py: relative to the context
    try:
        return path.read_text(encoding="utf-8"), path.name, path
    except FileNotFoundError:
        raise BuildError(f"no Dockerfile at {path}",
                         hint="create one, or name it with -f/--file (dockerfile=)") from None


def load_ignore(context: Path, dockerfile: Path | None) -> DockerIgnore:
    """``<Dockerfile>.dockerignore`` next to the Dockerfile wins over ``<context>/.dockerignore``."""
    candidates = []
    if dockerfile is not None:
        candidates.append(dockerfile.with_name(dockerfile.name + ".dockerignore"))
    candidates.append(context / ".dockerignore")
    for path in candidates:
        try:
            return DockerIgnore.from_text(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
    return DockerIgnore(())


class Builder:
    """Builds Dockerfiles into ``store``, keeping its state under ``state_dir``."""

    def __init__(self, store: ImageStore, state_dir: Path) -> None:
        self.store = store
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._cache: CacheIndex | None = None
        self._runtime: Runtime | None = None
        self._index_memo: dict[str, object] = {}

    @property
    def cache(self) -> CacheIndex:
        if self._cache is None:
            self._cache = CacheIndex(self.state_dir / "cache.db")
        return self._cache

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = Runtime(self.state_dir / "containers")
            self._sweep(self._runtime)
            trash = self.state_dir / "trash"
            if trash.is_dir():  # left by a process that exited while deleting (steps_run)
                for leftover in trash.iterdir():
                    shutil.rmtree(leftover, ignore_errors=True)
        return self._runtime

    @staticmethod
    def _sweep(runtime: Runtime) -> None:
        """Remove build containers a killed build left behind (a build removes its own)."""
        runtime.cleanup()
        for leftover in runtime.list():
            if leftover.status == "exited":
                try:
                    runtime.remove(leftover.id, force=True)
                except NbdockError:
                    continue

    def parse(self, options: BuildOptions) -> tuple[Dockerfile, str, Path | None]:
        text, name, path = read_dockerfile(options)
        try:
            return parse_dockerfile(text), name, path
        except DockerfileError as exc:
            exc.filename = name
            raise

    def check(self, options: BuildOptions) -> CheckResult:
        """Lint the Dockerfile (BuildKit's build checks) without building anything."""
        df, _, _ = self.parse(options)
        meta, _ = global_args(df, options.build_args)
        image_env: dict[str, list[str]] = {}
        for stage in df.stages:
            base = stage.base
            try:
                image = self.store.get(base_of(df, stage, meta))
            except (ImageNotFound, InvalidReference, DockerfileError):
                continue
            env = (image.config.get("config") or {}).get("Env") or []
            image_env[base] = [item.partition("=")[0] for item in env]
        warnings = [
            BuildWarning(w.message, rule=w.rule, line=w.line, hint=w.hint, url=w.url)
            for w in lint_dockerfile(df, image_env=image_env)
        ]
        _, error = parse_check_directive(df.directives.get("check", ""))
        return CheckResult(warnings, error)

    def build(self, options: BuildOptions,
              on_event: Callable[[Event], None] | None = None) -> BuildResult:
        started = time.monotonic()
        events: list[Event] = []

        def emit(event: Event) -> None:
            events.append(event)
            if on_event is not None:
                on_event(event)

        for tag in options.tags:
            parse_reference(tag)  # a bad -t fails now, not after the whole build
        df, name, path = self.parse(options)
        context_dir = Path(options.context)
        if not context_dir.is_dir():
            raise BuildError(f"build context {context_dir} is not a directory",
                             hint="give the directory holding the files COPY uses, e.g. .")
        context = BuildContext(context_dir, load_ignore(context_dir, path),
                               StatCache.for_context(self.state_dir, context_dir))
        session = Session(options=options, store=self.store, cache=self.cache,
                          runtime=self.runtime, state_dir=self.state_dir, context=context,
                          emit=emit, escape=df.escape, index_memo=self._index_memo)
        meta, declared = global_args(df, options.build_args)
        session.declared_args |= declared
        order = build_order(df, options.target, meta)
        emit(BuildStarted(name, str(context_dir), [stage_label(df, df.stages[i]) or str(i)
                                                   for i in order], options.target))
        cached = built = 0
        try:
            for index in order:
                runner = self._stage(session, df, df.stages[index], meta)
                cached += runner.cached_steps
                built += runner.built_steps
            context.statcache.save()
            emit(ContextLoaded(context.files_seen, context.bytes_seen,
                               context.statcache.hashed_files, context.statcache.hashed_bytes,
                               round(context.seconds, 3)))
            final = session.stages[order[-1]].state
            record = self._commit(session, final)
        finally:
            for temp in session.temp_paths:
                try:
                    os.unlink(temp)
                except OSError:
                    pass
        unused = sorted(set(options.build_args) - session.declared_args - PROXY_ARGS)
        if unused:
            emit(BuildWarning(f"one or more build-args {unused} were not consumed",
                              rule="UnusedBuildArgs",
                              hint="declare them with ARG, or drop the --build-arg"))
        emit(BuildFinished(record.id, [parse_reference(t).familiar for t in options.tags],
                           round(time.monotonic() - started, 3), cached, built))
        return BuildResult(record, events)

    # -- stages --------------------------------------------------------------------------------

    def _stage(self, session: Session, df: Dockerfile, stage: Stage,
               meta: dict[str, str]) -> StageRunner:
        label = stage_label(df, stage)
        base = base_of(df, stage, meta)
        session.current_step += 1
        step_id = session.current_step
        started = time.monotonic()
        state, triggers, parent_rebuilt, shown = self._from(session, df, stage, base, label)
        total = 1 + len(triggers) + len(stage.instructions)
        session.emit(StepStarted(step_id, label, 1, total, shown, stage.line))
        session.emit(StepFinished(step_id, "done", round(time.monotonic() - started, 3)))
        runner = StageRunner(session, state, meta, label, total, parent_rebuilt)
        for trigger in triggers:
            runner.step(trigger, prefix="ONBUILD ")
        for instr in stage.instructions:
            runner.step(instr)
        session.stages[stage.index] = StageResult(runner.state)
        session.stage_rebuilt[stage.index] = runner.rebuilt
        if stage.name:
            session.stage_names[stage.name] = stage.index
        return runner

    def _from(self, session: Session, df: Dockerfile, stage: Stage, base: str,
              label: str) -> tuple[StageState, list[Instruction], bool, str]:
        created = datetime.fromtimestamp(session.epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        arch, variant = host_platform()
        plat = f"linux/{arch}" + (f"/{variant}" if variant else "")
        if stage.platform:
            wanted = expand_word(stage.platform, {**platform_args()}, df.escape)
            if wanted not in (plat, f"linux/{arch}"):
                raise BuildError(f"FROM --platform={wanted}: nbdock builds for this host's "
                                 f"platform ({plat}) only", line=stage.line,
                                 step=stage.from_.original.strip(),
                                 hint=f"remove --platform, or use --platform={plat}")
        earlier = session.stage_names.get(base.lower())
        if earlier is not None and earlier < stage.index:
            parent = session.stages[earlier].state
            return (parent.clone(label), [], session.stage_rebuilt.get(earlier, False),
                    f"FROM {base}")
        if base == "scratch":
            key = base_key("scratch", session.epoch, plat)
            return StageState.from_image(label, key, [], None, created), [], False, "FROM scratch"
        try:
            ref = parse_reference(base)
            image = self.store.get(base)
        except InvalidReference as exc:
            raise DockerfileError(f"invalid image name {base!r}: {exc.reason}", line=stage.line,
                                  hint=exc.hint or "image names are lowercase, e.g. "
                                  f"FROM {base.lower()}",
                                  instruction=stage.from_.original) from None
        except ImageNotFound:
            raise BuildError(f"base image {base!r} is not in the image store", line=stage.line,
                             step=f"FROM {base}",
                             hint="nbdock has no registry pull yet: make a local base with "
                                  "'nbdock bootstrap busybox' (or debian), or tag an image "
                                  f"you have as {base}") from None
        key = base_key(image.id, session.epoch, plat)
        self._note_base(session, ref.canonical, image.id, key)
        state = StageState.from_image(label, key, list(image.layers), image.config, created)
        triggers = self._triggers(image, stage)
        return state, triggers, False, f"FROM {ref.canonical}@{image.id[:19]}"

    @staticmethod
    def _note_base(session: Session, ref: str, image_id: str, key: str) -> None:
        row = session.cache.db.execute(
            "SELECT 1 FROM bases WHERE ref = ? AND image = ?", (ref, image_id)).fetchone()
        if row is None:
            session.cache.note_base(ref, image_id, key)

    @staticmethod
    def _triggers(image: ImageRecord, stage: Stage) -> list[Instruction]:
        """The base image's ONBUILD triggers, parsed, located at this stage's FROM line."""
        out: list[Instruction] = []
        for trigger in (image.config.get("config") or {}).get("OnBuild") or []:
            try:
                parsed = parse_dockerfile(f"FROM scratch\n{trigger}\n").stages[0].instructions
            except DockerfileError as exc:
                raise DockerfileError(f"bad ONBUILD trigger in the base image: {exc.message}",
                                      line=stage.line, instruction=trigger) from None
            out += [_relocate(i, stage.line) for i in parsed]
        return out

    # -- the image ------------------------------------------------------------------------------

    def _commit(self, session: Session, state: StageState) -> ImageRecord:
        config = state.final_config()
        if session.options.labels:
            labels = dict(config["config"].get("Labels") or {})
            labels.update(session.options.labels)
            config["config"]["Labels"] = labels
        layers = list(state.layers)
        identity = "sha256:" + hashlib.sha256(canonical_json(
            {"config": config, "layers": [layer.diff_id for layer in layers]})).hexdigest()
        record: ImageRecord | None = None
        known = session.cache.image_for(identity)
        if known is not None:
            try:
                record = self.store.get(known)
            except ImageNotFound:
                record = None
        tags = list(session.options.tags)
        if record is None:
            # The image and all its tags go in one store transaction.
            record = self.store.create_image(config, layers, tags[0] if tags else None,
                                             extra_tags=tags[1:])
            session.cache.remember_image(identity, record.id)
            return record
        missing = [tag for tag in tags if parse_reference(tag).familiar not in record.repo_tags]
        if missing:
            record = self.store.tag(record.id, *missing)
        return record


def _relocate(instr: Instruction, line: int) -> Instruction:
    from dataclasses import replace

    return replace(instr, line=line, end_line=line)
