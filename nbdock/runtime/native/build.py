"""Compile ``*.c`` here into ``nbdock-init``: called by the package build (``hatch_build.py``) and
by ``./dev setup`` when a source is newer than the program.

Standard library only: the build hook loads this file by path, before nbdock's dependencies
exist. Linked statically: a static program skips the dynamic loader on every container start,
and ``exec`` can run it inside a container, where the host's libraries are out of reach.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = os.path.join(HERE, "nbdock-init")


def sources() -> list[str]:
    return sorted(glob.glob(os.path.join(HERE, "*.c")))
FLAGS = ("-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11")


class BuildFailed(RuntimeError):
    pass


def compiler() -> str:
    for name in (os.environ.get("CC", ""), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    raise BuildFailed(
        "nbdock-init needs a C compiler to build (Debian: apt-get install gcc libc6-dev)"
    )


def is_stale(binary: str = BINARY) -> bool:
    inputs = [*sources(), *glob.glob(os.path.join(HERE, "*.h"))]
    try:
        return os.stat(binary).st_mtime < max(os.stat(path).st_mtime for path in inputs)
    except FileNotFoundError:
        return True


def build(binary: str = BINARY) -> str:
    """Compile to a temporary name and rename: a running start never sees half a program.

    Static, always: ``exec`` runs the program inside a container's mount namespace, where the
    host's dynamic loader and C library are not there.
    """
    cc = compiler()
    partial = f"{binary}.{os.getpid()}.tmp"
    result = subprocess.run(
        [cc, *FLAGS, "-static", "-o", partial, *sources()], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise BuildFailed(
            f"compiling {HERE}/*.c failed (a static build needs the C library's libc.a: "
            f"Debian's libc6-dev):\n{result.stderr}"
        )
    os.chmod(partial, 0o755)
    os.replace(partial, binary)
    return binary


def main() -> int:
    if "--if-stale" in sys.argv[1:] and not is_stale():
        return 0
    try:
        print(f"built {build()}")
    except BuildFailed as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
