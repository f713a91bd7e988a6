"""The stage graph: which stages a target needs, in the order to build them.

A stage depends on an earlier stage when its FROM names it, when a ``COPY --from`` names it (by
name or index), or when a ``RUN --mount=…,from=`` does. Like BuildKit, only the stages the
target reaches are built; the others are skipped entirely (not even their base is resolved).
"""

from __future__ import annotations

from collections.abc import Mapping

from nbdock.dockerfile import Copy, Dockerfile, Onbuild, Run, Stage, expand_word
from nbdock.errors import DockerfileError


def stage_label(df: Dockerfile, stage: Stage) -> str:
    """How the progress output names a stage: its name, ``stage-N``, or nothing (single)."""
    if stage.name:
        return stage.name
    return "" if len(df.stages) == 1 else f"stage-{stage.index}"


def _find(df: Dockerfile, ref: str, before: int) -> int | None:
    """The index of the stage ``ref`` names, if it is a stage defined before ``before``."""
    if ref.isdigit():
        index = int(ref)
        return index if index < before else None
    wanted = ref.lower()
    for stage in reversed(df.stages[:before]):
        if stage.name == wanted:
            return stage.index
    return None


def base_of(df: Dockerfile, stage: Stage, meta: Mapping[str, str]) -> str:
    """The FROM image text after expanding the global args."""
    return expand_word(stage.base, meta, df.escape).strip()


def dependencies(df: Dockerfile, stage: Stage, meta: Mapping[str, str]) -> set[int]:
    deps: set[int] = set()
    base = base_of(df, stage, meta)
    found = _find(df, base, stage.index) if not base.isdigit() else None
    if found is not None:
        deps.add(found)
    for instr in stage.instructions:
        inner = instr.instruction if isinstance(instr, Onbuild) else None
        if inner is not None:
            continue  # triggers run in other builds
        refs: list[str] = []
        if isinstance(instr, Copy) and instr.from_stage:
            refs.append(instr.from_stage)
        if isinstance(instr, Run):
            refs += [m.from_stage for m in instr.mounts if m.from_stage]
        for ref in refs:
            index = _find(df, ref, stage.index)
            if index is not None:
                deps.add(index)
            elif ref.isdigit():
                raise DockerfileError(f"stage index {ref} must refer to an earlier stage",
                                      line=instr.line, hint="stages are numbered from 0")
    return deps


def build_order(df: Dockerfile, target: str | None, meta: Mapping[str, str]) -> list[int]:
    """Indices of the stages to build for ``target`` (default: the last stage), in order."""
    final = df.stage(target).index if target else len(df.stages) - 1
    needed: set[int] = set()
    pending = [final]
    while pending:
        index = pending.pop()
        if index in needed:
            continue
        needed.add(index)
        pending.extend(dependencies(df, df.stages[index], meta))
    return sorted(needed)
