"""``nbdock demo``: the guided tour README's main-job command runs, offline, on a local base.

Each step prints what it does and what it shows, so a newcomer can read the output as a lesson:
a base image made from the machine's own busybox, containers that are really isolated, a
detached one that outlives its caller's attention, limits that hold.
"""

from __future__ import annotations

import argparse
import os
import socket
import time

from nbdock.client import Client, from_env
from nbdock.errors import ContainerError


def _step(title: str) -> None:
    print(f"\n== {title}")


def _show(client: Client, command: list[str], **options: object) -> str:
    print(f"$ nbdock run --rm busybox {' '.join(command)}")
    output = client.containers.run("busybox", command, remove=True, **options).decode()
    print(output.rstrip())
    return output


def run(args: argparse.Namespace) -> int:
    client = from_env()
    _step("1. A base image made locally from Debian's busybox-static (no registry needed)")
    image = client.images.bootstrap("busybox")
    print(f"{', '.join(image.tags)}  {image.short_id}  layers: {len(image.record.layers)}")

    _step("2. A container is a process with its own view of the machine")
    _show(client, ["sh", "-c", "echo my pid is $$; hostname; ls /proc | grep -cE '^[0-9]+$'"])
    print(f"(the host is {socket.gethostname()!r} and runs {len(_host_pids())} processes)")
    _show(client, ["ls", "/sys/class/net"])
    _show(client, ["sh", "-c", "grep CapEff /proc/self/status; mount -t tmpfs x /mnt || true"])

    _step("3. Writes stay in the container; the image is unchanged")
    writer = client.containers.run(
        "busybox", ["sh", "-c", "echo hello > /greeting"], detach=True, name="demo-writer"
    )
    writer.wait()
    _show(client, ["sh", "-c", "cat /greeting 2>&1 || echo no greeting in a fresh container"])
    writer.remove()

    _step("4. A detached container keeps running; logs, exec and stop work from anywhere")
    ticker = client.containers.run(
        "busybox", ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"],
        detach=True, name="demo-ticker",
    )
    time.sleep(0.7)
    print(f"status: {ticker.status}; logs so far: {ticker.logs().decode().split()[-2:]}")
    print("exec:", ticker.exec_run(["sh", "-c", "echo inside, pid $$"]).output.decode().strip())
    ticker.stop(timeout=1)
    print(f"after stop: {ticker.status}, exit code {ticker.attrs['State']['ExitCode']}")
    ticker.remove()

    _step("5. Limits hold: a memory hog under --memory 32m is OOM-killed, the host is fine")
    try:
        client.containers.run(
            "busybox", ["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a)"],
            remove=True, mem_limit="32m",
        )
    except ContainerError as error:
        print(f"exit status {error.exit_status} (137 = killed by the memory limit)")
    print("\nDone. Try: nbdock run --rm busybox sh -c 'cat /etc/hostname'")
    return 0


def _host_pids() -> list[str]:
    return [name for name in os.listdir("/proc") if name.isdigit()]
