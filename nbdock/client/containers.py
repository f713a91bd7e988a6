"""``client.containers``: the docker-py shaped container API over the in-process engine."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from nbdock.client import options as opts
from nbdock.engine import Attachment, Engine, ExecRequest, RunOptions, logs, parse_signal
from nbdock.errors import ContainerError, ContainerNotFound, InvalidArgument


class ExecResult(NamedTuple):
    exit_code: int
    output: Any  # bytes, or (stdout, stderr) with demux=True


class Container:
    """A handle on one container; ``attrs`` is its ``docker inspect`` JSON (``reload`` refreshes)."""

    def __init__(self, engine: Engine, container_id: str) -> None:
        self._engine = engine
        self.id = container_id
        self.attrs: dict[str, Any] = {}
        self.reload()

    def __repr__(self) -> str:
        return f"<Container: {self.short_id} {self.name}>"

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def name(self) -> str:
        return str(self.attrs["Name"]).lstrip("/")

    @property
    def status(self) -> str:
        return str(self.attrs["State"]["Status"])

    @property
    def image(self) -> str:
        return str(self.attrs["Config"]["Image"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.attrs["Config"]["Labels"] or {})

    def reload(self) -> None:
        self.attrs = self._engine.inspect_container(self.id)

    def start(self) -> None:
        attachment = self._engine.start_container(self.id)
        attachment.close()
        self.reload()

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        final = self._engine.runtime.wait(self.id, timeout)
        self.reload()
        error = {"Message": final.error} if final.error else None
        return {"StatusCode": final.exit_code if final.exit_code is not None else -1, "Error": error}

    def kill(self, signal: str | int = "SIGKILL") -> None:
        self._engine.runtime.kill(self.id, parse_signal(signal))
        self.reload()

    def stop(self, timeout: float = 10) -> None:
        self._engine.runtime.stop(self.id, timeout)
        self.reload()

    def remove(self, force: bool = False) -> None:
        self._engine.runtime.remove(self.id, force=force)

    def logs(
        self, stdout: bool = True, stderr: bool = True, stream: bool = False, follow: bool = False,
        timestamps: bool = False,
    ) -> bytes | Iterator[bytes]:
        wanted = {logs.STDOUT} if stdout else set()
        if stderr:
            wanted.add(logs.STDERR)

        def chunks() -> Iterator[bytes]:
            for record in self._engine.runtime.logs(self.id, follow=follow or stream and follow):
                if record.stream in wanted:
                    if timestamps:
                        yield format_timestamp(record.time_ns) + b" " + record.data
                    else:
                        yield record.data

        return chunks() if stream else b"".join(chunks())

    def exec_run(
        self, cmd: str | Iterable[str], stdout: bool = True, stderr: bool = True,
        environment: Mapping[str, str] | Iterable[str] | None = None, workdir: str | None = None,
        user: str = "", demux: bool = False,
    ) -> ExecResult:
        args = opts.parse_command(cmd) or ()
        request = ExecRequest(
            args=args, env=opts.parse_env(environment), cwd=workdir or "", user=user or None
        )
        import tempfile  # only exec_run needs it; keep `nbdock run` imports small

        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            code = self._engine.runtime.exec(self.id, request, out.fileno(), err.fileno())
            out.seek(0)
            err.seek(0)
            out_bytes = out.read() if stdout else b""
            err_bytes = err.read() if stderr else b""
        output: Any = (out_bytes or None, err_bytes or None) if demux else out_bytes + err_bytes
        return ExecResult(code, output)

    def exec_attached(
        self, cmd: Iterable[str], environment: Iterable[str] = (), workdir: str = "",
        user: str | None = None, stdout_fd: int = 1, stderr_fd: int = 2,
    ) -> int:
        """Run a command in the container writing straight to the given fds (``nbdock exec``)."""
        request = ExecRequest(
            args=tuple(cmd), env=opts.parse_env(list(environment)), cwd=workdir, user=user
        )
        return self._engine.runtime.exec(self.id, request, stdout_fd, stderr_fd)

    def log_records(self, follow: bool = False) -> Iterator[tuple[str, bytes, int]]:
        """(stream, data, time_ns) in order, stdout and stderr kept apart."""
        names = {logs.STDOUT: "stdout", logs.STDERR: "stderr"}
        for record in self._engine.runtime.logs(self.id, follow=follow):
            if record.stream in names:
                yield names[record.stream], record.data, record.time_ns

    def stats(self) -> dict[str, Any]:
        stats = self._engine.runtime.stats(self.id)
        if stats is None:
            return {}
        return {
            "cpu_usage_ns": stats.cpu_usage_ns,
            "memory_bytes": stats.memory_bytes,
            "memory_limit_bytes": stats.memory_limit_bytes,
            "pids": stats.pids_current,
        }


def format_timestamp(time_ns: int) -> bytes:
    import time

    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z").encode()


class AttachedRun:
    """A started, attached container: iterate ``output()`` for (stream, bytes) as they come."""

    def __init__(self, container_id: str, attachment: Attachment) -> None:
        self.container_id = container_id
        self.attachment = attachment

    def __repr__(self) -> str:
        return f"AttachedRun(container_id={self.container_id!r}, attachment={self.attachment!r})"

    def output(self) -> Iterator[tuple[str, bytes]]:
        for record in self.attachment.records():
            if record.stream == logs.STDOUT:
                yield "stdout", record.data
            elif record.stream == logs.STDERR:
                yield "stderr", record.data

    @property
    def exit_code(self) -> int | None:
        return self.attachment.exit_code

    @property
    def oom_killed(self) -> bool:
        return self.attachment.oom_killed


class ContainerCollection:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _create_id(
        self, image: str, command: str | Iterable[str] | None = None, *, name: str | None = None,
        environment: Mapping[str, str] | Iterable[str] | None = None,
        working_dir: str | None = None, user: str | None = None, hostname: str | None = None,
        entrypoint: str | Iterable[str] | None = None, volumes: Any = None,
        tmpfs: Mapping[str, str] | Iterable[str] | None = None, read_only: bool = False,
        mem_limit: int | str | None = None, cpus: float | None = None,
        nano_cpus: int | None = None, pids_limit: int | None = None,
        network_mode: str | None = None, network: str | None = None, auto_remove: bool = False,
        labels: Mapping[str, str] | None = None,
    ) -> str:
        mode = network_mode or network or "none"
        if mode not in ("none", "host"):
            raise InvalidArgument(
                f"network mode {mode!r} is not supported yet", hint="use none (default) or host"
            )
        parsed_entrypoint = opts.parse_command(entrypoint)
        if entrypoint == "":
            parsed_entrypoint = ()
        run_options = RunOptions(
            image=image,
            command=opts.parse_command(command),
            entrypoint=parsed_entrypoint,
            env=opts.parse_env(environment),
            workdir=working_dir or "",
            user=user,
            hostname=hostname or "",
            name=name or "",
            mounts=opts.parse_volumes(volumes) + opts.parse_tmpfs(tmpfs),
            readonly_rootfs=read_only,
            limits=opts.parse_limits(mem_limit, cpus, pids_limit, nano_cpus),
            network=mode,  # type: ignore[arg-type]
            auto_remove=auto_remove,
            labels=dict(labels or {}),
        )
        return self._engine.create_container(run_options).id

    def create(self, image: str, command: str | Iterable[str] | None = None,
               **create_options: Any) -> Container:
        """docker-py's create: the container, made but not started."""
        return Container(self._engine, self._create_id(image, command, **create_options))

    def run_attached(self, image: str, command: str | Iterable[str] | None = None,
                     **create_options: Any) -> AttachedRun:
        """Start and stream: the notebook and the CLI use this to show output as it comes."""
        # Only the id: a Container handle would build its inspect JSON, unused on this path.
        container_id = self._create_id(image, command, **create_options)
        return AttachedRun(container_id, self._engine.start_container(container_id))

    def run(
        self, image: str, command: str | Iterable[str] | None = None, *, stdout: bool = True,
        stderr: bool = False, remove: bool = False, detach: bool = False, stream: bool = False,
        **create_options: Any,
    ) -> Any:
        """docker-py's run: output bytes, a stream of chunks, or a Container with ``detach``."""
        if detach:
            container = self.create(image, command, auto_remove=remove, **create_options)
            container.start()
            return container
        # With remove, the supervisor deletes the container before it closes the stream (off
        # the caller's path); discard() covers a start that failed before it ran.
        attached = self.run_attached(image, command, auto_remove=remove, **create_options)
        wanted = {name for name, flag in (("stdout", stdout), ("stderr", stderr)) if flag}
        if stream:
            return self._stream(attached, wanted, remove)
        collected: list[bytes] = []
        error_output: list[bytes] = []
        for name, data in attached.output():
            if name in wanted:
                collected.append(data)
            if name == "stderr":
                error_output.append(data)
        exit_code = attached.exit_code if attached.exit_code is not None else 125
        if remove:
            self.discard(attached.container_id)
        if exit_code != 0:
            raise ContainerError(
                attached.container_id, exit_code, list(opts.parse_command(command) or ()), image,
                b"".join(error_output),
            )
        return b"".join(collected)

    def _stream(self, attached: AttachedRun, wanted: set[str], remove: bool) -> Iterator[bytes]:
        try:
            for name, data in attached.output():
                if name in wanted:
                    yield data
        finally:
            attached.attachment.close()
            if remove:
                self.discard(attached.container_id)

    def discard(self, container_id: str) -> None:
        """After an attached ``--rm`` run: remove the container unless its supervisor already did
        (it does before end-of-stream; a start that failed before the supervisor ran did not)."""
        if not self._engine.runtime.paths(container_id).directory.exists():
            return
        try:
            self._engine.runtime.remove(container_id, force=True)
        except ContainerNotFound:
            pass  # removed by the supervisor between our look and our removal

    def get(self, container_id: str) -> Container:
        return Container(self._engine, self._engine.runtime.resolve(container_id))

    def list(self, all: bool = False) -> list[Container]:  # noqa: A002 - docker-py's name
        states = self._engine.runtime.list()
        chosen = [s for s in states if all or s.status == "running"]
        chosen.sort(key=lambda s: s.created, reverse=True)
        containers = []
        for current in chosen:
            try:
                containers.append(Container(self._engine, current.id))
            except ContainerNotFound:
                continue  # removed (e.g. by its --rm supervisor) while we were listing
        return containers


