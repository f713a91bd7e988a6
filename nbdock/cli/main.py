"""``nbdock``: the command line, shaped like ``docker``'s, over the Python client.

The parser lives here; handlers live in ``containers.py`` and ``images.py``. Every ``NbdockError``
becomes one ``nbdock: message`` line on stderr and Docker's exit codes (125 for run's own errors),
never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from nbdock.errors import NbdockError


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--rm", action="store_true", help="remove the container when it exits")
    add("-d", "--detach", action="store_true", help="run in the background, print the id")
    add("--name", default="", help="name the container")
    add("-e", "--env", action="append", default=[], metavar="K=V", help="set an environment var")
    add("-w", "--workdir", default="", help="working directory inside the container")
    add("-u", "--user", default=None, help="USER[:GROUP] (names from the image's /etc/passwd)")
    add("--hostname", "-h", default="", help="container hostname (default: short id)")
    add("--entrypoint", default=None, help="override the image's ENTRYPOINT ('' clears it)")
    add("-v", "--volume", action="append", default=[], metavar="HOST:CTR[:ro]", help="bind mount")
    add("--tmpfs", action="append", default=[], metavar="PATH[:OPTS]", help="mount a tmpfs")
    add("--read-only", action="store_true", help="mount the root filesystem read-only")
    add("-m", "--memory", default=None, help="memory limit, e.g. 32m (no swap beyond it)")
    add("--cpus", default=None, help="number of CPUs, e.g. 0.5")
    add("--pids-limit", type=int, default=None, help="maximum number of processes")
    add("--network", "--net", default="none", choices=("none", "host"), help="network mode")
    add("--label", "-l", action="append", default=[], metavar="K=V", help="set a label")
    add("image", help="image reference, e.g. busybox or debian:bookworm")
    add("command", nargs=argparse.REMAINDER, help="command and arguments")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nbdock", description="A container engine for Jupyter.")
    parser.add_argument("--version", action="version", version="nbdock 0.1.0")
    commands = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    def sub(name: str, help_text: str, aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, aliases=list(aliases),
                                   add_help=name not in ("run", "create"))

    run = sub("run", "create and start a container")
    run.add_argument("--help", action="help", help="show this help message and exit")
    _add_run_options(run)
    create = sub("create", "create a container without starting it")
    create.add_argument("--help", action="help", help="show this help message and exit")
    _add_run_options(create)
    start = sub("start", "start a created or exited container")
    start.add_argument("-a", "--attach", action="store_true", help="stream its output")
    start.add_argument("containers", nargs="+")
    ps = sub("ps", "list containers")
    ps.add_argument("-a", "--all", action="store_true", help="include stopped containers")
    ps.add_argument("-q", "--quiet", action="store_true", help="only ids")
    logs = sub("logs", "show a container's output")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-t", "--timestamps", action="store_true")
    logs.add_argument("container")
    stop = sub("stop", "stop containers (stop signal, then SIGKILL)")
    stop.add_argument("-t", "--time", type=float, default=10.0, help="seconds before SIGKILL")
    stop.add_argument("containers", nargs="+")
    kill = sub("kill", "send a signal to containers")
    kill.add_argument("-s", "--signal", default="KILL")
    kill.add_argument("containers", nargs="+")
    rm = sub("rm", "remove containers")
    rm.add_argument("-f", "--force", action="store_true", help="kill a running one first")
    rm.add_argument("containers", nargs="+")
    wait = sub("wait", "wait for containers to exit, print exit codes")
    wait.add_argument("containers", nargs="+")
    exec_ = sub("exec", "run a command in a running container")
    exec_.add_argument("-e", "--env", action="append", default=[])
    exec_.add_argument("-w", "--workdir", default="")
    exec_.add_argument("-u", "--user", default=None)
    exec_.add_argument("container")
    exec_.add_argument("command", nargs=argparse.REMAINDER)
    inspect = sub("inspect", "show low-level JSON of containers or images")
    inspect.add_argument("--type", choices=("container", "image"), default=None)
    inspect.add_argument("objects", nargs="+")
    images = sub("images", "list images")
    images.add_argument("-q", "--quiet", action="store_true")
    rmi = sub("rmi", "remove images")
    rmi.add_argument("-f", "--force", action="store_true")
    rmi.add_argument("images", nargs="+")
    import_ = sub("import", "make a one-layer image from a rootfs tarball ('-' reads stdin)")
    import_.add_argument("-c", "--change", action="append", default=[],
                         help="Dockerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER")
    import_.add_argument("tarball")
    import_.add_argument("reference", nargs="?")
    tag = sub("tag", "add a name to an image")
    tag.add_argument("source")
    tag.add_argument("target")
    bootstrap = sub("bootstrap", "make a local base image: busybox or debian (no registry)")
    bootstrap.add_argument("kind", choices=("busybox", "debian"))
    bootstrap.add_argument("--suite", default=None, help="Debian suite (default: the host's)")
    sub("demo", "a guided tour: local base image, isolation, detached containers, limits")
    from nbdock.cli.build import add_build_parser

    add_build_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from nbdock.cli import build, containers, demo, images

    handlers = {
        "run": containers.run, "create": containers.create, "start": containers.start,
        "ps": containers.ps, "logs": containers.logs, "stop": containers.stop,
        "kill": containers.kill, "rm": containers.rm, "wait": containers.wait,
        "exec": containers.exec_, "inspect": containers.inspect, "images": images.images,
        "rmi": images.rmi, "import": images.import_, "tag": images.tag,
        "bootstrap": images.bootstrap, "demo": demo.run,
        "build": build.build, "history": build.history,
    }
    try:
        return handlers[args.cmd](args)
    except NbdockError as error:
        print(f"nbdock: {error}", file=sys.stderr)
        return 125 if args.cmd in ("run", "create", "start", "exec") else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def entry() -> None:
    """Console-script entry: skip the interpreter's slow teardown (~15 ms) once output is out.

    Everything the CLI writes is flushed and every file it changed was replaced atomically, so
    there is nothing left for a normal shutdown to do but free memory.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)


if __name__ == "__main__":
    entry()
