"""The Dockerfile front end: parse, typed instructions, word expansion, ``.dockerignore``, lint.

Pure: no I/O beyond the text the caller passes in; imports only ``nbdock.errors`` of nbdock.

    parse_dockerfile(text) -> Dockerfile            stages of typed, frozen instructions
    expand_word / expand_words / expand_word_tracking   BuildKit's word expansion
    expand_instruction(instr, env, escape) -> Expanded  the fields Docker expands, + vars read
    DockerIgnore.from_text(text).matches(path)      Docker's .dockerignore semantics
    lint_dockerfile(df) -> [LintWarning]            ``nbdock build --check``

Every error is a ``nbdock.errors.DockerfileError`` with ``line`` and ``hint``.
"""

from nbdock.dockerfile.dockerignore import DockerIgnore, Pattern
from nbdock.dockerfile.expansion import (
    Expansion,
    ShellLexer,
    expand_word,
    expand_word_tracking,
    expand_words,
)
from nbdock.dockerfile.instructions import (
    INSTRUCTION_NAMES,
    Add,
    Arg,
    ArgDef,
    Cmd,
    Copy,
    Dockerfile,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Heredoc,
    Instruction,
    InstructionBase,
    Label,
    Maintainer,
    Mount,
    Onbuild,
    Run,
    Shell,
    Stage,
    Stopsignal,
    User,
    Volume,
    Workdir,
)
from nbdock.dockerfile.lint import LintWarning, lint_dockerfile, parse_check_directive
from nbdock.dockerfile.parse import parse_dockerfile
from nbdock.dockerfile.substitution import Expanded, expand_instruction
from nbdock.errors import DockerfileError

__all__ = [
    "INSTRUCTION_NAMES",
    "Add",
    "Arg",
    "ArgDef",
    "Cmd",
    "Copy",
    "DockerIgnore",
    "Dockerfile",
    "DockerfileError",
    "Entrypoint",
    "Env",
    "Expanded",
    "Expansion",
    "Expose",
    "From",
    "Healthcheck",
    "Heredoc",
    "Instruction",
    "InstructionBase",
    "Label",
    "LintWarning",
    "Maintainer",
    "Mount",
    "Onbuild",
    "Pattern",
    "Run",
    "Shell",
    "ShellLexer",
    "Stage",
    "Stopsignal",
    "User",
    "Volume",
    "Workdir",
    "expand_instruction",
    "expand_word",
    "expand_word_tracking",
    "expand_words",
    "lint_dockerfile",
    "parse_check_directive",
    "parse_dockerfile",
]
