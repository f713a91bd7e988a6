"""Container commands: run, create, start, ps, logs, stop, kill, rm, wait, exec, inspect."""

from __future__ import annotations

import json
import signal
import sys
from typing import TYPE_CHECKING, Any

from nbdock.cli.fmt import human_duration, since, table
from nbdock.client import Client, from_env
from nbdock.client.containers import AttachedRun, format_timestamp, parse_signal
from nbdock.errors import InvalidArgument, NbdockError, NotFound

if TYPE_CHECKING:  # handlers get argparse's namespace, or quickparse's for a plain `run`
    import argparse


def _create_options(args: argparse.Namespace) -> dict[str, Any]:
    from nbdock.client.options import run_kwargs

    return run_kwargs(args)


def _stream(attached: AttachedRun, client: Client) -> int:
    """Copy output as it comes; forward Ctrl-C and SIGTERM to the container, like docker's proxy."""

    def forward(signum: int, _frame: Any) -> None:
        try:
            client.engine.runtime.kill(attached.container_id, signum)
        except NbdockError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for stream, data in attached.output():
            target = sys.stdout.buffer if stream == "stdout" else sys.stderr.buffer
            target.write(data)
            target.flush()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if attached.attachment.error:
        print(f"nbdock: {attached.attachment.error}", file=sys.stderr)
    return attached.exit_code if attached.exit_code is not None else 125


def run(args: argparse.Namespace) -> int:
    client = from_env()
    options = _create_options(args)
    if args.detach:
        container = client.containers.create(
            args.image, args.command or None, auto_remove=args.rm, **options
        )
        attachment = client.engine.start_container(container.id)
        attachment.close()
        if attachment.exit_code is not None and attachment.error:
            print(f"nbdock: {attachment.error}", file=sys.stderr)
            return attachment.exit_code
        print(container.id)
        return 0
    attached = client.containers.run_attached(
        args.image, args.command or None, auto_remove=args.rm, **options
    )
    code = _stream(attached, client)
    if args.rm and client.engine.runtime.paths(attached.container_id).directory.exists():
        try:  # the supervisor removes it before end-of-stream; this covers a failed start
            client.engine.runtime.remove(attached.container_id, force=True)
        except NotFound:
            pass
    return code


def create(args: argparse.Namespace) -> int:
    client = from_env()
    container = client.containers.create(args.image, args.command or None, **_create_options(args))
    print(container.id)
    return 0


def start(args: argparse.Namespace) -> int:
    client = from_env()
    code = 0
    for name in args.containers:
        container = client.containers.get(name)
        attachment = client.engine.start_container(container.id)
        if args.attach:
            code = _stream(AttachedRun(container.id, attachment), client)
        else:
            attachment.close()
            print(name)
    return code


def _status_text(attrs: dict[str, Any]) -> str:
    state = attrs["State"]
    if state["Status"] == "running":
        return f"Up {human_duration(since(state['StartedAt']))}"
    if state["Status"] == "exited":
        oom = " (OOM killed)" if state["OOMKilled"] else ""
        return f"Exited ({state['ExitCode']}){oom} {human_duration(since(state['FinishedAt']))} ago"
    return state["Status"].capitalize()


def ps(args: argparse.Namespace) -> int:
    client = from_env()
    containers = client.containers.list(all=args.all)
    if args.quiet:
        for container in containers:
            print(container.short_id)
        return 0
    rows = []
    for container in containers:
        attrs = container.attrs
        command = " ".join([attrs["Path"], *attrs["Args"]])
        rows.append([
            container.short_id, container.image,
            json.dumps(command if len(command) <= 20 else command[:19] + "…"),
            f"{human_duration(since(attrs['Created']))} ago", _status_text(attrs), container.name,
        ])
    print(table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"], rows))
    return 0


def logs(args: argparse.Namespace) -> int:
    client = from_env()
    container = client.containers.get(args.container)
    for stream, data, time_ns in container.log_records(follow=args.follow):
        target = sys.stdout.buffer if stream == "stdout" else sys.stderr.buffer
        if args.timestamps:
            target.write(format_timestamp(time_ns) + b" ")
        target.write(data)
        target.flush()
    return 0


def _each(args: argparse.Namespace, action: Any) -> int:
    client = from_env()
    failed = 0
    for name in args.containers:
        try:
            action(client.containers.get(name))
            print(name)
        except NbdockError as error:
            print(f"nbdock: {error}", file=sys.stderr)
            failed = 1
    return failed


def stop(args: argparse.Namespace) -> int:
    return _each(args, lambda c: c.stop(timeout=args.time))


def kill(args: argparse.Namespace) -> int:
    number = parse_signal(args.signal)
    return _each(args, lambda c: c.kill(number))


def rm(args: argparse.Namespace) -> int:
    return _each(args, lambda c: c.remove(force=args.force))


def wait(args: argparse.Namespace) -> int:
    client = from_env()
    for name in args.containers:
        print(client.containers.get(name).wait()["StatusCode"])
    return 0


def exec_(args: argparse.Namespace) -> int:
    if not args.command:
        raise InvalidArgument("exec needs a command", hint="nbdock exec CONTAINER ls /")
    container = from_env().containers.get(args.container)
    sys.stdout.flush()
    return container.exec_attached(args.command, args.env, args.workdir, args.user)


def inspect(args: argparse.Namespace) -> int:
    client = from_env()
    result = []
    for name in args.objects:
        if args.type != "image":
            try:
                result.append(client.containers.get(name).attrs)
                continue
            except NotFound:
                if args.type == "container":
                    raise
        result.append(client.images.get(name).attrs)
    print(json.dumps(result, indent=4))
    return 0
