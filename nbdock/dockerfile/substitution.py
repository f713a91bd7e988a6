"""Applying word expansion to an instruction: exactly the fields BuildKit expands.

At build time each instruction is expanded with the ENV/ARG values reached so far (``FROM`` with
the global ARGs only). Which fields are expanded is Docker's contract, listed in the
``_EXPANDERS`` table: ENV/LABEL keys and values, ARG names and defaults, COPY/ADD sources,
destination, ``--chown``/``--chmod`` (and ADD's ``--checksum``), heredoc bodies whose delimiter
was not quoted, WORKDIR, USER, VOLUME, STOPSIGNAL, EXPOSE (split into words), RUN's mount
options, FROM's image and ``--platform``. RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK commands are
never expanded here: the shell in the container does it. ``COPY --from`` is never expanded.

The result also says which variables were read (``used``; a changed ARG among them invalidates
the step's cache) and which of those were unset (``unset``; lint's ``UndefinedVar``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from nbdock.dockerfile.expansion import ShellLexer
from nbdock.dockerfile.instructions import (
    Add,
    Arg,
    ArgDef,
    Copy,
    Env,
    Expose,
    From,
    Heredoc,
    Instruction,
    Label,
    Run,
    Stopsignal,
    User,
    Volume,
    Workdir,
)
from nbdock.errors import DockerfileError


@dataclass(frozen=True)
class Expanded:
    """An instruction after expansion, and the variables the expansion read."""

    instruction: Instruction
    used: frozenset[str]
    unset: frozenset[str]


class _Expander:
    def __init__(self, env: Mapping[str, str], escape: str) -> None:
        self.env = env
        self.lexer = ShellLexer(escape)
        # Heredoc bodies: quotes are text there, and BuildKit always uses '\' for them.
        self.body_lexer = ShellLexer("\\", skip_quotes=True)
        self.used: set[str] = set()
        self.unset: set[str] = set()

    def _track(self, lexer: ShellLexer, text: str) -> tuple[str, tuple[str, ...]]:
        result = lexer.process(text, self.env)
        self.used |= result.used
        self.unset |= result.unset
        return result.value, result.words

    def word(self, text: str) -> str:
        return self._track(self.lexer, text)[0]

    def opt(self, text: str | None) -> str | None:
        return None if text is None else self.word(text)

    def words(self, text: str) -> tuple[str, ...]:
        return self._track(self.lexer, text)[1]

    def body(self, doc: Heredoc) -> Heredoc:
        if not doc.expand:
            return doc
        return replace(doc, content=self._track(self.body_lexer, doc.content)[0])

    def pairs(self, pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        return tuple((self.word(k), self.word(v)) for k, v in pairs)


def _env(e: _Expander, i: Env) -> Env:
    return replace(i, pairs=e.pairs(i.pairs))


def _label(e: _Expander, i: Label) -> Label:
    return replace(i, pairs=e.pairs(i.pairs))


def _arg(e: _Expander, i: Arg) -> Arg:
    return replace(i, args=tuple(ArgDef(e.word(a.name), e.opt(a.default)) for a in i.args))


def _copy(e: _Expander, i: Copy) -> Copy:
    return replace(
        i,
        sources=tuple(e.word(s) for s in i.sources),
        dest=e.word(i.dest),
        chown=e.opt(i.chown),
        chmod=e.opt(i.chmod),
        heredocs=tuple(e.body(d) for d in i.heredocs),
    )


def _add(e: _Expander, i: Add) -> Add:
    return replace(
        i,
        sources=tuple(e.word(s) for s in i.sources),
        dest=e.word(i.dest),
        chown=e.opt(i.chown),
        chmod=e.opt(i.chmod),
        checksum=e.opt(i.checksum),
        heredocs=tuple(e.body(d) for d in i.heredocs),
    )


def _run(e: _Expander, i: Run) -> Run:
    mounts = tuple(
        replace(
            m,
            target=e.opt(m.target),
            source=e.opt(m.source),
            from_stage=e.opt(m.from_stage),
            id=e.opt(m.id),
            env=e.opt(m.env),
        )
        for m in i.mounts
    )
    return replace(i, mounts=mounts)


def _expose(e: _Expander, i: Expose) -> Expose:
    return replace(i, ports=tuple(w for port in i.ports for w in e.words(port)))


def _from(e: _Expander, i: From) -> From:
    return replace(i, image=e.word(i.image), platform=e.opt(i.platform))


_EXPANDERS: dict[type[Any], Callable[[_Expander, Any], Instruction]] = {
    Env: _env,
    Label: _label,
    Arg: _arg,
    Copy: _copy,
    Add: _add,
    Run: _run,
    Expose: _expose,
    From: _from,
    Workdir: lambda e, i: replace(i, path=e.word(i.path)),
    User: lambda e, i: replace(i, user=e.word(i.user)),
    Volume: lambda e, i: replace(i, paths=tuple(e.word(p) for p in i.paths)),
    Stopsignal: lambda e, i: replace(i, signal=e.word(i.signal)),
}


def expand_instruction(
    instruction: Instruction, env: Mapping[str, str], escape: str = "\\"
) -> Expanded:
    """Expand ``instruction``'s expandable fields with ``env``.

    ``env`` is the build-time environment at this point of the stage (ENV values and ARG values,
    ARGs overriding nothing they do not declare); for ``From`` pass the global ARGs. Raises
    ``DockerfileError`` at the instruction's line on bad syntax or ``${VAR:?msg}`` failures.
    """
    handler = _EXPANDERS.get(type(instruction))
    if handler is None:
        return Expanded(instruction, frozenset(), frozenset())
    expander = _Expander(env, escape)
    try:
        result = handler(expander, instruction)
    except DockerfileError as exc:
        raise exc.at(instruction.line, instruction.original.strip().splitlines()[0]) from None
    return Expanded(result, frozenset(expander.used), frozenset(expander.unset))
