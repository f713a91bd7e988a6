"""The typed Dockerfile model: one frozen dataclass per instruction, grouped into stages.

The model is what the Dockerfile *says*, not what it means at build time: word values are kept
unexpanded and with their quotes (``ENV A="x y"`` has the value ``"x y"``), because expansion
depends on the ENV/ARG state reached while building (see ``substitution.expand_instruction``).
Flags are already checked and typed, so the builder never sees an unknown flag.

Every instruction carries ``line`` / ``end_line`` (1-based, a heredoc or continuation can span
several lines), ``original`` (the instruction text as BuildKit joined it) and ``keyword`` (the
instruction name as written, for the casing lint). Each class documents its syntax.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from nbdock.dockerfile._suggest import did_you_mean
from nbdock.errors import DockerfileError

MountType = Literal["bind", "cache", "tmpfs", "secret", "ssh"]
CacheSharing = Literal["shared", "private", "locked"]
RunNetwork = Literal["default", "none", "host"]
RunSecurity = Literal["sandbox", "insecure"]


@dataclass(frozen=True)
class Heredoc:
    """An inline document: ``<<EOF`` … ``EOF`` (``<<-EOF`` strips leading tabs: ``chomp``).

    ``content`` is the body with tabs already stripped when ``chomp``; ``expand`` is False when the
    delimiter was quoted (``<<'EOF'``), meaning ``$VAR`` in the body must stay literal; ``fd`` is
    the file descriptor of ``3<<EOF`` (0 by default).
    """

    name: str
    content: str
    fd: int = 0
    expand: bool = True
    chomp: bool = False


@dataclass(frozen=True)
class Mount:
    """One ``RUN --mount=type=…,target=…`` (BuildKit's mount options, checked, unexpanded).

    ``type=bind`` (default; ``from``, ``source``), ``cache`` (``id``, ``sharing``, ``mode``,
    ``uid``, ``gid``), ``tmpfs`` (``size`` in bytes), ``secret`` / ``ssh`` (``id``, ``required``,
    ``env``). ``readonly`` defaults to True for bind/secret/ssh and False for cache/tmpfs.
    """

    type: MountType
    target: str | None = None
    source: str | None = None
    from_stage: str | None = None
    readonly: bool = False
    id: str | None = None
    sharing: CacheSharing | None = None
    required: bool = False
    size: int | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    env: str | None = None


@dataclass(frozen=True, kw_only=True)
class InstructionBase:
    """Where an instruction comes from; shared by all instruction classes."""

    NAME: ClassVar[str] = ""
    line: int
    end_line: int
    original: str
    keyword: str


@dataclass(frozen=True, kw_only=True)
class From(InstructionBase):
    """``FROM [--platform=<p>] <image> [AS <name>]`` — starts a stage.

    ``image`` may be ``scratch``, an image reference, an earlier stage's name or contain global
    ``$ARG``s; the builder resolves it. ``stage_name`` is lowercased (stage names are
    case-insensitive); ``stage_name_as_written`` and ``as_keyword`` keep the casing for lint.
    """

    NAME: ClassVar[str] = "FROM"
    image: str
    stage_name: str | None = None
    platform: str | None = None
    as_keyword: str | None = None
    stage_name_as_written: str | None = None


@dataclass(frozen=True, kw_only=True)
class Run(InstructionBase):
    """``RUN [--mount=…]… [--network=default|none|host] [--security=sandbox|insecure] <command>``.

    Shell form ``RUN echo $HOME`` (``command`` is a str run by the stage's SHELL) or exec form
    ``RUN ["echo", "hi"]`` (``command`` is a tuple, ``is_exec_form``). Heredocs
    (``RUN <<EOF`` … ``EOF``) are in ``heredocs``, in order.
    """

    NAME: ClassVar[str] = "RUN"
    command: str | tuple[str, ...]
    is_exec_form: bool = False
    heredocs: tuple[Heredoc, ...] = ()
    mounts: tuple[Mount, ...] = ()
    network: RunNetwork = "default"
    security: RunSecurity = "sandbox"


@dataclass(frozen=True, kw_only=True)
class Copy(InstructionBase):
    """``COPY [--from=<stage|image|index>] [--chown=<u>[:<g>]] [--chmod=<mode>] [--link]
    [--parents] [--exclude=<pattern>]… <src>… <dest>`` (or the JSON form ``["src", "dest"]``).

    ``sources`` are paths or wildcards in the context (or in ``from_stage``); inline sources
    ``COPY <<EOF /dest`` are in ``heredocs`` (each ``name`` is the file name to create).
    """

    NAME: ClassVar[str] = "COPY"
    sources: tuple[str, ...]
    dest: str
    heredocs: tuple[Heredoc, ...] = ()
    from_stage: str | None = None
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    parents: bool = False
    exclude: tuple[str, ...] = ()
    is_exec_form: bool = False


@dataclass(frozen=True, kw_only=True)
class Add(InstructionBase):
    """``ADD [--chown=…] [--chmod=…] [--link] [--checksum=<digest>] [--keep-git-dir]
    [--unpack] [--exclude=<pattern>]… <src>… <dest>``.

    Like COPY, plus: sources may be http(s) URLs (``checksum`` verifies them) and local tar
    archives are extracted. ``keep_git_dir`` (git sources) is parsed and ignored by nbdock.
    """

    NAME: ClassVar[str] = "ADD"
    sources: tuple[str, ...]
    dest: str
    heredocs: tuple[Heredoc, ...] = ()
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    checksum: str | None = None
    keep_git_dir: bool | None = None
    unpack: bool | None = None
    exclude: tuple[str, ...] = ()
    is_exec_form: bool = False


@dataclass(frozen=True, kw_only=True)
class Env(InstructionBase):
    """``ENV <key>=<value> …`` or the legacy ``ENV <key> <value with spaces>`` (``legacy``)."""

    NAME: ClassVar[str] = "ENV"
    pairs: tuple[tuple[str, str], ...]
    legacy: bool = False


@dataclass(frozen=True)
class ArgDef:
    """One ``name`` or ``name=default`` of an ARG (``default`` None: no default)."""

    name: str
    default: str | None = None


@dataclass(frozen=True, kw_only=True)
class Arg(InstructionBase):
    """``ARG <name>[=<default>] …`` — a build argument (global before the first FROM)."""

    NAME: ClassVar[str] = "ARG"
    args: tuple[ArgDef, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args)


@dataclass(frozen=True, kw_only=True)
class Workdir(InstructionBase):
    """``WORKDIR <path>`` — relative paths are relative to the previous WORKDIR."""

    NAME: ClassVar[str] = "WORKDIR"
    path: str


@dataclass(frozen=True, kw_only=True)
class User(InstructionBase):
    """``USER <user>[:<group>]`` (names or numeric ids)."""

    NAME: ClassVar[str] = "USER"
    user: str


@dataclass(frozen=True, kw_only=True)
class Label(InstructionBase):
    """``LABEL <key>=<value> …`` (legacy ``LABEL <key> <value>`` is accepted: ``legacy``)."""

    NAME: ClassVar[str] = "LABEL"
    pairs: tuple[tuple[str, str], ...]
    legacy: bool = False


@dataclass(frozen=True, kw_only=True)
class Expose(InstructionBase):
    """``EXPOSE <port>[/<proto>] …`` (documentation for ``-p``; kept as written)."""

    NAME: ClassVar[str] = "EXPOSE"
    ports: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Volume(InstructionBase):
    """``VOLUME <path> …`` or ``VOLUME ["<path>", …]``."""

    NAME: ClassVar[str] = "VOLUME"
    paths: tuple[str, ...]
    is_exec_form: bool = False


@dataclass(frozen=True, kw_only=True)
class Cmd(InstructionBase):
    """``CMD ["exe", "arg"]`` (exec form), ``CMD command arg`` (shell form) or ``CMD ["arg"]``
    (default arguments for the ENTRYPOINT). ``CMD []`` clears it."""

    NAME: ClassVar[str] = "CMD"
    command: str | tuple[str, ...]
    is_exec_form: bool = False


@dataclass(frozen=True, kw_only=True)
class Entrypoint(InstructionBase):
    """``ENTRYPOINT ["exe", "arg"]`` (exec form) or ``ENTRYPOINT command arg`` (shell form)."""

    NAME: ClassVar[str] = "ENTRYPOINT"
    command: str | tuple[str, ...]
    is_exec_form: bool = False


@dataclass(frozen=True, kw_only=True)
class Shell(InstructionBase):
    """``SHELL ["executable", "param"]`` — the shell for the shell forms that follow (JSON only)."""

    NAME: ClassVar[str] = "SHELL"
    shell: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Healthcheck(InstructionBase):
    """``HEALTHCHECK NONE`` or ``HEALTHCHECK [--interval=<d>] [--timeout=<d>]
    [--start-period=<d>] [--start-interval=<d>] [--retries=<n>] CMD <command>``.

    Durations use Go's syntax (``30s``, ``1m30s``, ``500ms``) and are stored in nanoseconds,
    as in the image config; None when the flag was not given.
    """

    NAME: ClassVar[str] = "HEALTHCHECK"
    kind: Literal["NONE", "CMD"]
    command: str | tuple[str, ...] | None = None
    is_exec_form: bool = False
    interval: int | None = None
    timeout: int | None = None
    start_period: int | None = None
    start_interval: int | None = None
    retries: int | None = None

    @property
    def test(self) -> tuple[str, ...]:
        """The image config's ``Healthcheck.Test``: NONE, CMD + argv, or CMD-SHELL + command."""
        if self.kind == "NONE" or self.command is None:
            return ("NONE",)
        if isinstance(self.command, tuple):
            return ("CMD", *self.command)
        return ("CMD-SHELL", self.command)


@dataclass(frozen=True, kw_only=True)
class Stopsignal(InstructionBase):
    """``STOPSIGNAL <signal>`` (``SIGTERM``, ``TERM`` or a number)."""

    NAME: ClassVar[str] = "STOPSIGNAL"
    signal: str


@dataclass(frozen=True, kw_only=True)
class Onbuild(InstructionBase):
    """``ONBUILD <instruction>`` — a trigger run when the image is used as a base.

    ``instruction`` is the parsed trigger (checked now, so a typo fails here rather than in
    someone else's build); ``expression`` is its text, as stored in the image config.
    """

    NAME: ClassVar[str] = "ONBUILD"
    instruction: Instruction
    expression: str


@dataclass(frozen=True, kw_only=True)
class Maintainer(InstructionBase):
    """``MAINTAINER <name>`` — deprecated; ``LABEL org.opencontainers.image.authors=…`` instead."""

    NAME: ClassVar[str] = "MAINTAINER"
    name: str


Instruction = (
    From | Run | Copy | Add | Env | Arg | Workdir | User | Label | Expose | Volume | Cmd
    | Entrypoint | Shell | Healthcheck | Stopsignal | Onbuild | Maintainer
)

INSTRUCTION_CLASSES: tuple[type[InstructionBase], ...] = (
    From, Run, Copy, Add, Env, Arg, Workdir, User, Label, Expose, Volume, Cmd,
    Entrypoint, Shell, Healthcheck, Stopsignal, Onbuild, Maintainer,
)  # fmt: skip
INSTRUCTION_NAMES: tuple[str, ...] = tuple(cls.NAME for cls in INSTRUCTION_CLASSES)


@dataclass(frozen=True)
class Stage:
    """One ``FROM … [AS name]`` and the instructions up to the next FROM.

    ``base`` is the FROM image text (unexpanded); ``index`` counts stages from 0, which is what
    ``COPY --from=0`` refers to.
    """

    index: int
    name: str | None
    base: str
    platform: str | None
    line: int
    from_: From
    instructions: tuple[Instruction, ...]

    def __iter__(self) -> Iterator[Instruction]:
        return iter(self.instructions)


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile: its stages, the ARGs before the first FROM and the parser directives.

    ``directives`` maps ``syntax`` / ``escape`` / ``check`` to their values; ``escape`` is the
    escape character (``\\`` or the backtick) that word expansion must use.
    """

    stages: tuple[Stage, ...]
    global_args: tuple[Arg, ...] = ()
    directives: dict[str, str] = field(default_factory=dict, hash=False)
    escape: str = "\\"

    def stage(self, ref: str | int) -> Stage:
        """The stage named ``ref`` (case-insensitive) or at index ``ref``."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdecimal()):
            index = int(ref)
            if 0 <= index < len(self.stages):
                return self.stages[index]
            raise DockerfileError(
                f"stage index {index} is out of range",
                hint=f"this Dockerfile has {len(self.stages)} stage(s), numbered from 0",
            )
        wanted = ref.lower()
        for st in reversed(self.stages):  # a later duplicate name shadows an earlier one
            if st.name == wanted:
                return st
        names = [st.name for st in self.stages if st.name]
        hint = did_you_mean(wanted, names, quote=True) or (
            f"stages are: {', '.join(names)}" if names else "no stage has a name (FROM … AS name)"
        )
        raise DockerfileError(f"unknown stage {ref!r}", hint=hint)

    def instructions(self) -> Iterator[Instruction]:
        """Every instruction in source order: global ARGs, then each stage's FROM and body."""
        yield from self.global_args
        for st in self.stages:
            yield st.from_
            yield from st.instructions
