"""``nbdock build --check``: pure checks over a parsed Dockerfile, in the spirit of BuildKit's.

Each rule is a small function over the ``Dockerfile`` that yields ``LintWarning``s (line, rule
name, message, fix hint). Rule names are BuildKit's where BuildKit has the rule, so a user can
look them up at https://docs.docker.com/go/dockerfile/rule/…; nbdock adds
``AptGetInstallWithoutYes`` (the prompt that hangs a build) and ``InvalidExpansion`` (a ``${…}``
that would fail the build). The ``# check=skip=Rule1,Rule2`` directive (or ``skip=all``) is
honoured, as in BuildKit.

Lint never sees the base images, so variables inherited from an image's ENV are unknown: pass
``image_env`` (image reference → its ENV names) when they are known; ``PATH`` is always assumed.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field

from nbdock.dockerfile._shellcheck import (
    apt_argv_without_yes,
    apt_without_yes,
    exec_form_suggestion,
)
from nbdock.dockerfile._suggest import closest
from nbdock.dockerfile.expansion import expand_word
from nbdock.dockerfile.instructions import (
    Arg,
    Cmd,
    Dockerfile,
    Entrypoint,
    Env,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Run,
    Shell,
    Stage,
    Workdir,
)
from nbdock.dockerfile.substitution import expand_instruction
from nbdock.errors import DockerfileError

PLATFORM_ARGS = frozenset(
    f"{side}{part}"
    for side in ("BUILD", "TARGET")
    for part in ("PLATFORM", "OS", "OSVERSION", "ARCH", "VARIANT")
) | {"TARGETSTAGE"}
RESERVED_STAGE_NAMES = frozenset({"context", "scratch"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_DOCS = "https://docs.docker.com/go/dockerfile/rule/"


@dataclass(frozen=True)
class LintWarning:
    """One finding: ``rule`` (BuildKit's name when it has one), where, what and how to fix it."""

    rule: str
    message: str
    line: int | None
    hint: str | None = None
    url: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        where = f"Dockerfile:{self.line}" if self.line is not None else "Dockerfile"
        text = f"{where}: [{self.rule}] {self.message}"
        return text + (f" — {self.hint}" if self.hint else "")


def _url(rule: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", rule)
    return _DOCS + words.lower() + "/"


def _warn(rule: str, message: str, line: int | None, hint: str | None = None) -> LintWarning:
    return LintWarning(rule, message, line, hint, None if rule in NBDOCK_RULES else _url(rule))


NBDOCK_RULES = frozenset({"AptGetInstallWithoutYes", "InvalidExpansion"})


def parse_check_directive(value: str) -> tuple[frozenset[str], bool]:
    """``skip=A,B;error=true`` → (rules to skip, whether warnings should fail the build)."""
    skip: set[str] = set()
    error = False
    for part in value.split(";"):
        key, _, val = part.strip().partition("=")
        if key.strip().lower() == "skip":
            skip |= {name.strip() for name in val.split(",") if name.strip()}
        elif key.strip().lower() == "error":
            error = val.strip().lower() in ("1", "true", "yes")
    return frozenset(skip), error


def lint_dockerfile(
    df: Dockerfile, *, image_env: Mapping[str, Collection[str]] | None = None
) -> list[LintWarning]:
    """All warnings for ``df``, sorted by line, minus the rules ``# check=skip=…`` turns off."""
    skip, _ = parse_check_directive(df.directives.get("check", ""))
    found: list[LintWarning] = []
    for rule in (_casing, _stage_names, _per_stage, _variables):
        found.extend(rule(df, image_env or {}))
    found = [] if "all" in skip else [w for w in found if w.rule not in skip]
    return sorted(found, key=lambda w: (w.line or 0, w.rule))


def _casing(df: Dockerfile, _env: Mapping[str, Collection[str]]) -> Iterator[LintWarning]:
    """ConsistentInstructionCasing (majority wins) and FromAsCasing."""
    keywords = [(i.keyword, i.line) for st in df.stages for i in (st.from_, *st.instructions)]
    consistent = [k for k, _ in keywords if k in (k.lower(), k.upper())]
    lower = sum(1 for k in consistent if k == k.lower())
    majority_lower = lower > len(consistent) - lower
    for keyword, line in keywords:
        want = keyword.lower() if majority_lower else keyword.upper()
        if keyword != want:
            casing = "lowercase" if majority_lower else "uppercase"
            yield _warn(
                "ConsistentInstructionCasing",
                f"Command '{keyword}' should match the case of the command majority ({casing})",
                line,
                f"write {want}",
            )
    for st in df.stages:
        kw, as_kw = st.from_.keyword, st.from_.as_keyword
        if as_kw is None or kw not in (kw.lower(), kw.upper()):
            continue
        want = as_kw.lower() if kw == kw.lower() else as_kw.upper()
        if as_kw != want:
            yield _warn(
                "FromAsCasing",
                f"'{as_kw}' and '{kw}' keywords' casing do not match",
                st.line,
                f"write {kw} … {want} {st.name}",
            )


def _stage_names(df: Dockerfile, _env: Mapping[str, Collection[str]]) -> Iterator[LintWarning]:
    """StageNameCasing, DuplicateStageName, ReservedStageName."""
    seen: dict[str, int] = {}
    for st in df.stages:
        written = st.from_.stage_name_as_written
        if st.name is None or written is None:
            continue
        if written != written.lower():
            yield _warn(
                "StageNameCasing",
                f"Stage name '{written}' should be lowercase",
                st.line,
                f"write AS {written.lower()}",
            )
        if st.name in RESERVED_STAGE_NAMES:
            yield _warn(
                "ReservedStageName",
                f'Stage name should not use the same name as reserved stage "{st.name}"',
                st.line,
                "choose another stage name",
            )
        if st.name in seen:
            yield _warn(
                "DuplicateStageName",
                f'Duplicate stage name "{st.name}", stage names should be unique',
                st.line,
                f"rename one of the stages (the other is at line {seen[st.name]})",
            )
        seen.setdefault(st.name, st.line)


def _parent(df: Dockerfile, st: Stage) -> Stage | None:
    """The earlier stage this one builds on (``FROM <stage name>``), if any."""
    base = st.base.lower()
    return next((p for p in df.stages[: st.index] if p.name == base), None)


def _per_stage(df: Dockerfile, _env: Mapping[str, Collection[str]]) -> Iterator[LintWarning]:
    """Rules about the instructions of one stage (and what it inherits from a parent stage)."""
    shell_set: dict[int, bool] = {}
    workdir_set: dict[int, bool] = {}
    for st in df.stages:
        parent = _parent(df, st)
        has_shell = shell_set.get(parent.index, False) if parent else False
        has_workdir = workdir_set.get(parent.index, False) if parent else False
        last: dict[str, Instruction] = {}
        for instr in st.instructions:
            if isinstance(instr, Shell):
                has_shell = True
            elif isinstance(instr, (Cmd, Entrypoint, Healthcheck)):
                if instr.NAME in last:
                    yield _warn(
                        "MultipleInstructionsDisallowed",
                        f"Multiple {instr.NAME} instructions should not be used in the same "
                        "stage because only the last one will be used",
                        last[instr.NAME].line,
                        f"remove this {instr.NAME}: line {instr.line} replaces it",
                    )
                last[instr.NAME] = instr
                shell_form = isinstance(instr, (Cmd, Entrypoint)) and isinstance(instr.command, str)
                if shell_form and not has_shell:
                    yield _json_args(instr)
            elif isinstance(instr, Workdir):
                if not has_workdir and not instr.path.startswith(("/", "$")):
                    yield _warn(
                        "WorkdirRelativePath",
                        f'Relative workdir "{instr.path}" can have unexpected results if the '
                        "base image changes",
                        instr.line,
                        f"write an absolute path, e.g. WORKDIR /{instr.path.lstrip('./')}",
                    )
                has_workdir = True
            elif isinstance(instr, Maintainer):
                yield _warn(
                    "MaintainerDeprecated",
                    "Maintainer instruction is deprecated in favor of using label",
                    instr.line,
                    f'write LABEL org.opencontainers.image.authors="{instr.name}"',
                )
            elif isinstance(instr, (Env, Label)) and instr.legacy:
                key, value = instr.pairs[0]
                yield _warn(
                    "LegacyKeyValueFormat",
                    f'"{instr.NAME} key=value" should be used instead of legacy '
                    f'"{instr.NAME} key value" format',
                    instr.line,
                    f'write {instr.NAME} {key}="{value}"',
                )
            elif isinstance(instr, Run):
                yield from _apt(instr)
        shell_set[st.index], workdir_set[st.index] = has_shell, has_workdir


def _json_args(instr: Cmd | Entrypoint) -> LintWarning:
    command = instr.command if isinstance(instr.command, str) else ""
    suggestion = exec_form_suggestion(command)
    hint = (
        f"write {instr.NAME} {suggestion}"
        if suggestion
        else f'put the commands in a script and use {instr.NAME} ["/script.sh"], or set SHELL '
        "to make the shell explicit"
    )
    return _warn(
        "JSONArgsRecommended",
        f"JSON arguments recommended for {instr.NAME} to prevent unintended behavior related "
        "to OS signals",
        instr.line,
        hint,
    )


def _apt(instr: Run) -> Iterator[LintWarning]:
    if isinstance(instr.command, tuple):
        found = apt_argv_without_yes(instr.command) or next(
            (hit for part in instr.command if (hit := apt_without_yes(part))), None
        )
    else:
        scripts = [instr.command, *(d.content for d in instr.heredocs)]
        found = next((hit for s in scripts if (hit := apt_without_yes(s))), None)
    if found:
        yield _warn(
            "AptGetInstallWithoutYes",
            f"'{found}' asks for confirmation, and a build cannot answer it",
            instr.line,
            "add -y (e.g. apt-get install -y --no-install-recommends <packages>)",
        )


def _variables(df: Dockerfile, image_env: Mapping[str, Collection[str]]) -> Iterator[LintWarning]:
    """UndefinedArgInFrom, UndefinedVar, InvalidExpansion — by expanding with known names."""
    global_env: dict[str, str] = {}
    for arg in df.global_args:
        yield from _check(arg, global_env, df.escape, set(), "UndefinedVar")
        for a in arg.args:
            global_env[a.name] = _default(a.default, global_env, df.escape)
    stage_env: dict[int, set[str]] = {}
    for st in df.stages:
        env_for_from = {**{k: "x" for k in PLATFORM_ARGS}, **global_env}
        yield from _check(st.from_, env_for_from, df.escape, set(global_env), "UndefinedArgInFrom")
        parent = _parent(df, st)
        base = _default(st.base, global_env, df.escape)
        known = set(stage_env[parent.index]) if parent else {"PATH", *image_env.get(base, ())}
        for instr in st.instructions:
            env = dict.fromkeys(known, "x")
            yield from _check(instr, env, df.escape, set(global_env), "UndefinedVar")
            if isinstance(instr, Arg):
                known.update(a.name for a in instr.args)
            elif isinstance(instr, Env):
                known.update(_default(k, env, df.escape) for k, _ in instr.pairs)
        stage_env[st.index] = {n for n in known if n not in _arg_names(st)}


def _arg_names(st: Stage) -> set[str]:
    return {a.name for i in st.instructions if isinstance(i, Arg) for a in i.args}


def _default(text: str | None, env: Mapping[str, str], escape: str) -> str:
    if text is None:
        return ""
    try:
        return expand_word(text, env, escape)
    except DockerfileError:
        return text


def _check(
    instr: Instruction, env: Mapping[str, str], escape: str, globals_: set[str], rule: str
) -> Iterator[LintWarning]:
    try:
        unset = expand_instruction(instr, env, escape).unset
    except DockerfileError as exc:
        yield _warn("InvalidExpansion", exc.message, instr.line, exc.hint)
        return
    for name in sorted(n for n in unset if _IDENTIFIER.match(n)):
        if rule == "UndefinedArgInFrom":
            match = closest(name, globals_, case_sensitive=True)
            message = f"FROM argument '{name}' is not declared"
            hint = f"did you mean {match}?" if match else f"declare ARG {name} before the first FROM"
        else:
            match = closest(name, env, case_sensitive=True)
            message = f"Usage of undefined variable '${name}'"
            if match:
                message += f" (did you mean ${match}?)"
            hint = (
                f"a global ARG must be declared again inside the stage: ARG {name}"
                if name in globals_
                else f"define it first with ARG {name} or ENV {name}=…"
            )
        yield _warn(rule, message, instr.line, hint)
