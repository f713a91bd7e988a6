"""Parse docker-run style option values (``32m``, ``/h:/c:ro``, ``K=V``) into engine types.

Shared by the Python client and the CLI (which goes through the client), so ``--memory 32m`` and
``mem_limit="32m"`` can never disagree. Every bad value raises ``InvalidArgument`` with a hint.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from nbdock.engine import Limits, Mount
from nbdock.errors import InvalidArgument

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_bytes(value: int | str) -> int:
    """Docker's RAMInBytes: ``512``, ``32m``, ``1.5g``, ``64MiB`` (binary units)."""
    if isinstance(value, int):
        return value
    text = value.strip().lower().removesuffix("ib").removesuffix("b") or "0"
    number, unit = text, ""
    if text[-1] in _UNITS and not text[-1].isdigit():
        number, unit = text[:-1], text[-1]
    try:
        amount = float(number)
    except ValueError:
        raise InvalidArgument(f"invalid size {value!r}", hint="use e.g. 32m, 1g, 512k") from None
    if amount < 0:
        raise InvalidArgument(f"invalid size {value!r}: must not be negative")
    return int(amount * _UNITS[unit])


def parse_env(environment: Mapping[str, str] | Iterable[str] | None) -> tuple[str, ...]:
    """A dict or ``K=V`` list; a bare ``K`` takes the caller's value, as ``docker run -e K`` does."""
    if environment is None:
        return ()
    if isinstance(environment, Mapping):
        return tuple(f"{k}={v}" for k, v in environment.items())
    result = []
    for item in environment:
        if not item or item.startswith("="):
            raise InvalidArgument(f"invalid environment variable {item!r}", hint="use KEY=VALUE")
        if "=" not in item:
            if item in os.environ:
                result.append(f"{item}={os.environ[item]}")
            continue
        result.append(item)
    return tuple(result)


def parse_volume(text: str) -> Mount:
    """``HOST:CTR[:ro|rw]`` — only host paths: named volumes do not exist in nbdock yet."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification {text!r}", hint="use /host/dir:/ctr/dir[:ro]")
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise InvalidArgument(f"invalid mode {mode!r} in volume {text!r}", hint="use ro or rw")
    if not os.path.isabs(source):
        raise InvalidArgument(
            f"{source!r} is not an absolute host path",
            hint="named volumes are not supported yet; give an absolute path like $PWD/data",
        )
    if not os.path.exists(source):
        os.makedirs(source, exist_ok=True)  # Docker creates a missing bind source directory
    return Mount(target=target, type="bind", source=os.path.realpath(source), readonly=mode == "ro")


def parse_volumes(volumes: Any) -> tuple[Mount, ...]:
    """docker-py accepts a list of strings or ``{host: {"bind": ctr, "mode": "ro"}}``."""
    if not volumes:
        return ()
    if isinstance(volumes, Mapping):
        return tuple(
            parse_volume(f"{host}:{spec['bind']}:{spec.get('mode', 'rw')}")
            for host, spec in volumes.items()
        )
    return tuple(parse_volume(item) for item in volumes)


def parse_tmpfs(tmpfs: Mapping[str, str] | Iterable[str] | None) -> tuple[Mount, ...]:
    """``/path[:options]`` or ``{path: options}``."""
    if not tmpfs:
        return ()
    items = tmpfs.items() if isinstance(tmpfs, Mapping) else (
        (entry.partition(":")[0], entry.partition(":")[2]) for entry in tmpfs
    )
    return tuple(
        Mount(target=path, type="tmpfs", options=tuple(o for o in opts.split(",") if o))
        for path, opts in items
    )


def parse_limits(
    mem_limit: int | str | None = None, cpus: float | str | None = None,
    pids_limit: int | None = None, nano_cpus: int | None = None,
) -> Limits:
    if cpus is not None:
        try:
            cpu_value: float | None = float(cpus)
        except ValueError:
            raise InvalidArgument(f"invalid --cpus {cpus!r}", hint="e.g. --cpus 0.5") from None
    else:
        cpu_value = nano_cpus / 1e9 if nano_cpus else None
    pids = None if pids_limit is None or pids_limit < 0 else pids_limit
    return Limits(
        memory_bytes=parse_bytes(mem_limit) if mem_limit not in (None, "", 0) else None,
        cpus=cpu_value,
        pids=pids,
    )


def parse_command(command: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """docker-py takes a string (split like a shell) or a list."""
    if command is None:
        return None
    if isinstance(command, str):
        import shlex

        return tuple(shlex.split(command))
    return tuple(command)


def parse_labels(items: Iterable[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid label {item!r}", hint="use KEY=VALUE")
        labels[key] = value
    return labels


def run_kwargs(args: Any) -> dict[str, Any]:
    """``docker run``'s options as parsed by a front end (the CLI's argparse, the notebook's
    magic_arguments: attributes ``name env workdir user hostname entrypoint volume tmpfs
    read_only memory cpus pids_limit network label``) → ``containers.create`` keyword arguments."""
    entrypoint: Any = args.entrypoint
    if entrypoint:  # one word, as `docker run --entrypoint`; "" clears the image's
        entrypoint = [entrypoint]
    return {
        "name": args.name or None,
        "environment": list(args.env),
        "working_dir": args.workdir or None,
        "user": args.user,
        "hostname": args.hostname or None,
        "entrypoint": entrypoint,
        "volumes": list(args.volume),
        "tmpfs": list(args.tmpfs),
        "read_only": args.read_only,
        "mem_limit": args.memory,
        "cpus": args.cpus,
        "pids_limit": args.pids_limit,
        "network_mode": args.network,
        "labels": parse_labels(args.label),
    }
