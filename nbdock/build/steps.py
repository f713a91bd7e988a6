"""One step: expand the instruction, plan it, then take it from the cache or run it.

This is where Docker's cache contract is applied, step by step: the key chains on the previous
step's, a hit re-applies the step's recorded effect (its layer, its config change), a miss runs
it — and says why it missed — and records it at once, so that a later failure leaves it cached.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from nbdock.build import steps_copy, steps_meta, steps_run
from nbdock.build.args import plan_arg
from nbdock.build.cache import Miss, chain_key
from nbdock.build.events import StepCacheMiss, StepFinished, StepStarted
from nbdock.build.session import PlannedStep, Session
from nbdock.build.state import StageState
from nbdock.dockerfile import (
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expanded,
    Expose,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
    expand_instruction,
)
from nbdock.errors import BuildError, DockerfileError
from nbdock.image.records import LayerRecord

Planner = Callable[[Session, StageState, Any, Expanded], PlannedStep]

PLANNERS: dict[type[Any], Planner] = {
    Env: steps_meta.plan_env,
    Label: steps_meta.plan_label,
    Expose: steps_meta.plan_expose,
    Volume: steps_meta.plan_volume,
    Cmd: steps_meta.plan_cmd,
    Entrypoint: steps_meta.plan_entrypoint,
    Shell: steps_meta.plan_shell,
    Stopsignal: steps_meta.plan_stopsignal,
    Healthcheck: steps_meta.plan_healthcheck,
    User: steps_meta.plan_user,
    Maintainer: steps_meta.plan_maintainer,
    Onbuild: steps_meta.plan_onbuild,
    Workdir: steps_meta.plan_workdir,
    Copy: steps_copy.plan_copy,
    Add: steps_copy.plan_copy,
    Run: lambda session, state, instr, _expanded: steps_run.plan_run(session, state, instr),
}


def display_text(instr: Instruction) -> str:
    """How the progress output shows a step: the instruction's first line, as written."""
    first = instr.original.strip().splitlines()[0] if instr.original.strip() else instr.NAME
    return " ".join(first.split()) if len(first) < 400 else first[:399] + "…"


class StageRunner:
    """Runs the steps of one stage, tracking whether an earlier one was rebuilt."""

    def __init__(self, session: Session, state: StageState, meta: Mapping[str, str],
                 label: str, total: int, parent_rebuilt: bool) -> None:
        self.session = session
        self.state = state
        self.meta = meta
        self.label = label
        self.total = total
        self.index = 1
        self.rebuilt = parent_rebuilt
        self.cached_steps = 0
        self.built_steps = 0

    def step(self, instr: Instruction, *, prefix: str = "") -> None:
        session = self.session
        self.index += 1
        session.current_step += 1
        step_id = session.current_step
        shown = display_text(instr)
        session.emit(StepStarted(step_id, self.label, self.index, self.total, prefix + shown,
                                 instr.line))
        try:
            planned = self._plan(instr)
        except BuildError as exc:
            session.emit(StepFinished(step_id, "failed", 0.0, error=str(exc)))
            raise _located(exc, instr, shown) from None
        except DockerfileError as exc:
            session.emit(StepFinished(step_id, "failed", 0.0, error=str(exc)))
            raise exc.at(instr.line, shown) from None
        self._run(step_id, instr, planned, shown)

    def _plan(self, instr: Instruction) -> PlannedStep:
        session, state = self.session, self.state
        if isinstance(instr, Arg):
            return plan_arg(session, state, instr, self.meta)
        if isinstance(instr, Onbuild):
            expanded = Expanded(instr, frozenset(), frozenset())
        else:
            expanded = expand_instruction(instr, state.build_env, session.escape)
        return PLANNERS[type(instr)](session, state, instr, expanded)

    def _run(self, step_id: int, instr: Instruction, planned: PlannedStep, shown: str) -> None:
        session, state = self.session, self.state
        start = time.monotonic()
        parent = state.key
        key = chain_key(parent, planned.inputs)
        hit = None if session.options.no_cache else session.cache.lookup(key)
        miss: Miss | None = None
        if hit is not None and hit.layer is not None and not session.store.has_layer(hit.layer):
            hit, miss = None, Miss("layer-gone", "its cached layer was deleted from the store")
        if hit is not None:
            layer = (LayerRecord(hit.layer, hit.layer, hit.size or 0)
                     if hit.layer is not None else None)
            self._apply(planned, layer, key)
            self.cached_steps += 1
            session.emit(StepFinished(step_id, "cached", _since(start), hit.layer, hit.size))
            return
        if miss is None:
            miss = (Miss("no-cache", "--no-cache was given") if session.options.no_cache
                    else session.cache.explain(parent, planned.inputs,
                                               parent_rebuilt=self.rebuilt,
                                               stage_start=self.index == 2))
        session.emit(StepCacheMiss(step_id, miss.kind, miss.reason))
        try:
            layer = planned.execute() if planned.execute is not None else None
        except BuildError as exc:
            session.cache.record_failure(parent, planned.inputs)
            session.emit(StepFinished(step_id, "failed", _since(start), error=str(exc)))
            raise _located(exc, instr, shown) from None
        except DockerfileError as exc:
            session.emit(StepFinished(step_id, "failed", _since(start), error=str(exc)))
            raise exc.at(instr.line, shown) from None
        self._apply(planned, layer, key)
        session.cache.record(key, parent, planned.inputs,
                             layer.diff_id if layer else None, layer.size if layer else None)
        self.rebuilt = True
        self.built_steps += 1
        session.emit(StepFinished(step_id, "done", _since(start),
                                  layer.diff_id if layer else None,
                                  layer.size if layer else None))

    def _apply(self, planned: PlannedStep, layer: LayerRecord | None, key: str) -> None:
        state = self.state
        planned.apply(state)
        if layer is not None:
            state.layers.append(layer)
        if planned.created_by:
            state.history(planned.created_by, empty_layer=layer is None)
        state.key = key


def _located(exc: BuildError, instr: Instruction, shown: str) -> BuildError:
    if exc.line is not None and exc.step:
        return exc
    return BuildError(exc.message, step=exc.step or shown, line=exc.line or instr.line,
                      exit_code=exc.exit_code, build_log=exc.build_log, hint=exc.hint)


def _since(start: float) -> float:
    return round(time.monotonic() - start, 3)
