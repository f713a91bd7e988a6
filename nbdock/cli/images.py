"""Image commands: images, rmi, import, tag, bootstrap."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from nbdock.cli.fmt import human_duration, human_size, since, table
from nbdock.client import from_env
from nbdock.errors import InvalidArgument


def images(args: argparse.Namespace) -> int:
    client = from_env()
    rows = []
    for image in client.images.list():
        tags = image.tags or ["<none>:<none>"]
        for tag in tags:
            repository, _, name = tag.rpartition(":")
            rows.append([
                repository, name, image.short_id,
                f"{human_duration(since(image.record.created))} ago" if image.record.created
                else "N/A", human_size(image.record.size),
            ])
    if args.quiet:
        for image in client.images.list():
            print(image.short_id)
        return 0
    print(table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows))
    return 0


def rmi(args: argparse.Namespace) -> int:
    client = from_env()
    for name in args.images:
        for line in client.images.remove(name, force=args.force):
            print(line)
    return 0


def _changes_to_config(changes: list[str]) -> dict[str, Any]:
    """``docker import --change``: the config-only Dockerfile instructions."""
    import json

    config: dict[str, Any] = {}
    for change in changes:
        keyword, _, rest = change.strip().partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword in ("CMD", "ENTRYPOINT"):
            value = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
            config["Cmd" if keyword == "CMD" else "Entrypoint"] = value
        elif keyword == "ENV":
            key, sep, val = rest.partition("=")
            if not sep:
                key, _, val = rest.partition(" ")
            config.setdefault("Env", []).append(f"{key}={val.strip()}")
        elif keyword == "WORKDIR":
            config["WorkingDir"] = rest
        elif keyword == "USER":
            config["User"] = rest
        elif keyword == "LABEL":
            for pair in shlex.split(rest):
                key, _, val = pair.partition("=")
                config.setdefault("Labels", {})[key] = val
        else:
            raise InvalidArgument(
                f"{keyword} is not supported by --change",
                hint="use CMD, ENTRYPOINT, ENV, WORKDIR, USER or LABEL",
            )
    return config


def import_(args: argparse.Namespace) -> int:
    client = from_env()
    config = _changes_to_config(args.change) or None
    source: Any = sys.stdin.buffer if args.tarball == "-" else args.tarball
    image = client.images.import_image(source, args.reference, config=config)
    print(image.id)
    return 0


def tag(args: argparse.Namespace) -> int:
    client = from_env()
    client.images.get(args.source).tag(args.target)
    return 0


def bootstrap(args: argparse.Namespace) -> int:
    client = from_env()
    image = client.images.bootstrap(args.kind, args.suite)
    print(f"{', '.join(image.tags)} {image.id}")
    return 0
