"""The one error tree of nbdock.

Every failure a user can cause or meet is an ``NbdockError`` subclass that carries the context
needed to act on it (the image reference, the Dockerfile line, the exit status), so the CLI, the
HTTP daemon and the notebook magics can each render it their own way without parsing messages.

    NbdockError
    ├── InvalidArgument          a value given by the user is malformed (bad memory size, bad -v)
    │   └── InvalidReference     an image reference that Docker would reject, with a hint
    ├── DockerfileError          a bad Dockerfile or .dockerignore, with its line and a hint
    ├── BuildError               a build step failed (a RUN exited non-zero, a COPY source is
    │                            missing); carries the step, the line, the exit code, the log
    ├── NotFound
    │   ├── ImageNotFound
    │   └── ContainerNotFound
    ├── Conflict                 name already in use, container still running, image in use
    ├── ImageStoreError          corrupt or unsafe content
    │   ├── DigestMismatch       a blob whose bytes do not hash to its name
    │   └── UnsafeLayerError     a layer tar entry that would escape the rootfs
    ├── RuntimeFailure           the runtime could not create or start a container
    │   └── UnsupportedFeature   the kernel or privileges lack what was asked (cgroup, userns)
    ├── MissingHostTool          a host program nbdock needs is not installed; names the package
    └── ContainerError           a container ran and exited non-zero (docker-py's shape)

This module imports nothing of nbdock, so every layer may import it.
"""

from __future__ import annotations


class NbdockError(Exception):
    """Root of every error nbdock raises on purpose."""


class InvalidArgument(NbdockError):
    """A value given by the user is malformed; ``hint`` says how to write it instead."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(f"{message}\n  hint: {hint}" if hint else message)


class InvalidReference(InvalidArgument):
    """An image reference Docker would refuse, such as ``UBUNTU`` (repository names are lowercase)."""

    def __init__(self, reference: str, reason: str, hint: str | None = None) -> None:
        self.reference = reference
        self.reason = reason
        super().__init__(f"invalid reference format {reference!r}: {reason}", hint)


class DockerfileError(NbdockError):
    """A Dockerfile (or ``.dockerignore``) that cannot be parsed, expanded or linted into a build.

    Carries the 1-based ``line`` (None when unknown), a ``hint`` saying how to fix it, the
    ``instruction`` text it is about and the ``filename``, so every front end can point at the
    source: ``Dockerfile:3: unknown instruction "RUNN" — did you mean "RUN"?``.
    """

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        hint: str | None = None,
        instruction: str | None = None,
        filename: str = "Dockerfile",
    ) -> None:
        self.message = message
        self.line = line
        self.hint = hint
        self.instruction = instruction
        self.filename = filename
        where = f"{filename}:{line}: " if line is not None else f"{filename}: "
        text = f"{where}{message}"
        if hint:
            text += f" — {hint}"
        if instruction:
            text += "\n    " + instruction.strip().replace("\n", "\n    ")
        super().__init__(text)

    def at(self, line: int | None, instruction: str | None = None) -> DockerfileError:
        """The same error placed at ``line`` (for errors raised below the instruction level)."""
        return DockerfileError(
            self.message,
            line=line if self.line is None else self.line,
            hint=self.hint,
            instruction=instruction if self.instruction is None else self.instruction,
            filename=self.filename,
        )


class BuildError(NbdockError):
    """A build step could not be completed (mirrors docker-py's ``BuildError``).

    ``step`` is the instruction as shown in the build output (``RUN make``), ``line`` its
    1-based line in the Dockerfile (None when unknown), ``exit_code`` the RUN command's status
    (None for non-RUN failures), ``build_log`` the output lines of the build so far (the tail of
    the failing command's output last) and ``hint`` how to fix it. Steps before the failing one
    stay cached: fix the step and build again.
    """

    def __init__(
        self,
        message: str,
        *,
        step: str = "",
        line: int | None = None,
        exit_code: int | None = None,
        build_log: list[str] | None = None,
        hint: str | None = None,
        filename: str = "Dockerfile",
    ) -> None:
        self.message = message
        self.step = step
        self.line = line
        self.exit_code = exit_code
        self.build_log = list(build_log or [])
        self.hint = hint
        self.filename = filename
        where = f"{filename}:{line}: " if line is not None else ""
        text = f"{where}{message}"
        if hint:
            text += f" — {hint}"
        super().__init__(text)


class NotFound(NbdockError):
    """Something named by the user does not exist."""


class ImageNotFound(NotFound):
    def __init__(self, reference: str) -> None:
        self.reference = reference
        super().__init__(f"No such image: {reference}")


class ContainerNotFound(NotFound):
    def __init__(self, container: str) -> None:
        self.container = container
        super().__init__(f"No such container: {container}")


class Conflict(NbdockError):
    """The operation clashes with the current state (a name in use, a running container)."""


class ImageStoreError(NbdockError):
    """The image store met corrupt or unsafe content; the store itself stays consistent."""


class DigestMismatch(ImageStoreError):
    def __init__(self, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"content digest mismatch: expected {expected}, got {actual}")


class UnsafeLayerError(ImageStoreError):
    """A layer entry would create, change or remove something outside the rootfs."""

    def __init__(self, entry: str, reason: str) -> None:
        self.entry = entry
        self.reason = reason
        super().__init__(f"refusing layer entry {entry!r}: {reason}")


class RuntimeFailure(NbdockError):
    """The runtime could not create or start a container (before the user's command ran)."""

    def __init__(self, message: str, container: str | None = None) -> None:
        self.container = container
        super().__init__(message)


class UnsupportedFeature(RuntimeFailure):
    """The kernel, the cgroup layout or the caller's privileges cannot provide what was asked."""


class MissingHostTool(NbdockError):
    """A program on the host that nbdock needs (busybox-static, mmdebstrap) is not installed."""

    def __init__(self, tool: str, package: str, purpose: str) -> None:
        self.tool = tool
        self.package = package
        self.purpose = purpose
        super().__init__(
            f"{tool} is needed {purpose} but is not installed: apt-get install {package}"
        )


class ContainerError(NbdockError):
    """A container exited with a non-zero status (mirrors docker-py's ``ContainerError``)."""

    def __init__(
        self, container: str, exit_status: int, command: list[str], image: str, stderr: bytes
    ) -> None:
        self.container = container
        self.exit_status = exit_status
        self.command = command
        self.image = image
        self.stderr = stderr
        tail = stderr.decode(errors="replace").strip()
        detail = f": {tail}" if tail else ""
        super().__init__(
            f"Command {command!r} in image {image!r} returned non-zero exit status "
            f"{exit_status}{detail}"
        )
