"""Build arguments, scoped as BuildKit scopes them.

- Before the first FROM, ``ARG``s are *global* ("meta") args: they can be used in FROM lines and
  nowhere else, unless a stage re-declares them (``ARG NAME`` without a value inherits the
  global value). BuildKit's platform args (``TARGETARCH``, ``BUILDPLATFORM``, …) are global too.
- Inside a stage, ``ARG NAME[=default]`` takes the ``--build-arg`` value, else its default
  (expanded with what is defined so far), else the global value. From there on it is in the
  environment of RUN steps and of word expansion — but never in the image's ``Env``.

The ARG step's cache key holds its declaration, not its value: Docker's cache misses at the
first *use* of a changed argument, not at its definition.
"""

from __future__ import annotations

from collections.abc import Mapping

from nbdock.build.cache import StepInputs
from nbdock.build.session import PlannedStep, Session, platform_args
from nbdock.build.state import StageState
from nbdock.dockerfile import Arg, Dockerfile, expand_word


def global_args(df: Dockerfile, build_args: Mapping[str, str]) -> tuple[dict[str, str], set[str]]:
    """The meta args (values for FROM lines) and every name declared before the first FROM."""
    values = platform_args()
    declared: set[str] = set()
    for instr in df.global_args:
        for arg in instr.args:
            declared.add(arg.name)
            if arg.name in build_args:
                values[arg.name] = build_args[arg.name]
            elif arg.default is not None:
                values[arg.name] = expand_word(arg.default, values, df.escape)
    return values, declared


def plan_arg(session: Session, state: StageState, instr: Arg,
             meta: Mapping[str, str]) -> PlannedStep:
    build_args = session.options.build_args
    env = dict(state.build_env)
    decided: list[tuple[str, str | None]] = []
    for arg in instr.args:
        value: str | None
        if arg.name in build_args:
            value = build_args[arg.name]
        elif arg.default is not None:
            value = expand_word(arg.default, env, session.escape)
        else:
            value = meta.get(arg.name)
        session.declared_args.add(arg.name)
        decided.append((arg.name, value))
        if value is not None:
            env[arg.name] = value
    text = "ARG " + " ".join(a.name + ("=" + a.default if a.default is not None else "")
                             for a in instr.args)
    created_by = "ARG " + " ".join(n + ("" if v is None else f"={v}") for n, v in decided)

    def apply(st: StageState) -> None:
        for name, value in decided:
            st.set_arg(name, value)

    return PlannedStep(StepInputs(original=instr.original.strip(), text=text), created_by, apply)
