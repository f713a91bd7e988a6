"""``nbdock build`` and ``nbdock history``: the builder's events rendered for a terminal.

``--progress plain`` (and ``auto``) prints BuildKit's plain format: one ``#N [i/n] INSTRUCTION``
line per step, ``#N CACHED`` on a hit, ``#N rebuilding: <reason>`` on a miss, the step's output
as it arrives, and ``#N DONE 0.1s`` with the size of the layer it made. ``--progress json`` prints
every event as one JSON object per line — the same stream the notebook front end renders.
``--check`` lints the Dockerfile without building (BuildKit's build checks).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from nbdock.cli.fmt import human_duration, human_size, since, table
from nbdock.client import from_env
from nbdock.errors import InvalidArgument


def add_build_parser(commands: Any) -> None:
    """The ``build`` and ``history`` subcommands (called from ``main.build_parser``)."""
    build = commands.add_parser("build", help="build an image from a Dockerfile")
    add = build.add_argument
    add("-t", "--tag", action="append", default=[], help="name:tag for the image (repeatable)")
    add("-f", "--file", default=None, help="the Dockerfile (default: CONTEXT/Dockerfile; - reads stdin)")
    add("--build-arg", action="append", default=[], metavar="K=V", help="set a build argument")
    add("--target", default=None, help="build this stage (and the stages it needs) only")
    add("--no-cache", action="store_true", help="do not use the build cache")
    add("--progress", choices=("auto", "plain", "json", "quiet"), default="auto",
        help="output format (json: one event per line)")
    add("-q", "--quiet", action="store_true", help="print only the image id")
    add("--check", action="store_true", help="lint the Dockerfile, do not build")
    add("--secret", action="append", default=[], metavar="id=ID,src=PATH",
        help="a secret for RUN --mount=type=secret")
    add("--label", action="append", default=[], metavar="K=V", help="add a label to the image")
    add("context", help="the build context directory")
    history = commands.add_parser("history", help="show the layers of an image and what made them")
    history.add_argument("--no-trunc", action="store_true", help="do not shorten the output")
    history.add_argument("-q", "--quiet", action="store_true", help="only image ids")
    history.add_argument("image")


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not key:
            raise InvalidArgument(f"invalid {flag} {value!r}", hint=f"write {flag} KEY=VALUE")
        if not sep:
            import os

            val = os.environ.get(key, "")  # docker: --build-arg NAME takes it from the env
        out[key] = val
    return out


def _secrets(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        fields = dict(part.partition("=")[::2] for part in value.split(","))
        ident = fields.get("id")
        src = fields.get("src") or fields.get("source")
        if not ident or not src:
            raise InvalidArgument(f"invalid --secret {value!r}",
                                  hint="write --secret id=mytoken,src=./token.txt")
        out[ident] = src
    return out


class PlainRenderer:
    """BuildKit's ``--progress=plain`` lines from the builder's events."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.started: dict[int, float] = {}
        self.last_id = 0
        self.partial: dict[int, str] = {}

    def __call__(self, event: Any) -> None:
        data = event.to_json()
        handler = getattr(self, "_" + data["type"].replace("-", "_"), None)
        if handler is not None:
            handler(data)
        self.out.flush()

    def _write(self, step: int, text: str) -> None:
        self.out.write(f"#{step} {text}\n")

    def _build_started(self, data: dict[str, Any]) -> None:
        self.out.write(f"#0 building {data['dockerfile']} in {data['context']}"
                       + (f" (target {data['target']})" if data.get("target") else "") + "\n")

    def _step_started(self, data: dict[str, Any]) -> None:
        step = data["id"]
        self.last_id = max(self.last_id, step)
        self.started[step] = time.monotonic()
        stage = f"{data['stage']} " if data["stage"] else ""
        self._write(step, f"[{stage}{data['index']}/{data['total']}] {data['text']}")

    def _step_cache_miss(self, data: dict[str, Any]) -> None:
        self._write(data["id"], f"rebuilding: {data['reason']}")

    def _step_output(self, data: dict[str, Any]) -> None:
        step = data["id"]
        text = self.partial.pop(step, "") + data["text"]
        *lines, rest = text.split("\n")
        if rest:
            self.partial[step] = rest
        offset = time.monotonic() - self.started.get(step, time.monotonic())
        for line in lines:
            self._write(step, f"{offset:.3f} {line}")

    def _step_finished(self, data: dict[str, Any]) -> None:
        step = data["id"]
        if self.partial.get(step):
            self._step_output({"id": step, "text": "\n"})
        if data["status"] == "cached":
            self._write(step, "CACHED")
        elif data["status"] == "failed":
            self._write(step, f"ERROR {data['seconds']:.1f}s")
        else:
            layer = f" (layer {human_size(data['layer_size'])})" if data.get("layer_size") else ""
            self._write(step, f"DONE {data['seconds']:.1f}s{layer}")

    def _context_loaded(self, data: dict[str, Any]) -> None:
        self.last_id += 1
        self._write(self.last_id, f"[internal] build context: {data['files']} files, "
                    f"{human_size(data['bytes'])} ({data['hashed_files']} read, "
                    f"{human_size(data['hashed_bytes'])}; the rest from the stat cache)")

    def _warning(self, data: dict[str, Any]) -> None:
        where = f" (line {data['line']})" if data.get("line") else ""
        hint = f" — {data['hint']}" if data.get("hint") else ""
        self.out.write(f"WARNING: {data['message']}{where}{hint}\n")

    def _build_finished(self, data: dict[str, Any]) -> None:
        self.last_id += 1
        step = self.last_id
        self._write(step, "exporting to image")
        self._write(step, f"writing image {data['image_id']}")
        for tag in data["tags"]:
            self._write(step, f"naming to {tag}")
        self._write(step, f"DONE {data['seconds']:.1f}s — {data['cached_steps']} cached, "
                    f"{data['built_steps']} built")


def build(args: argparse.Namespace) -> int:
    client = from_env()
    fileobj = None
    dockerfile = args.file
    if dockerfile == "-":
        fileobj, dockerfile = sys.stdin, None
    elif dockerfile is not None and not Path(dockerfile).is_absolute():
        dockerfile = str(Path.cwd() / dockerfile)  # -f is relative to where the user is
    if args.check:
        return _check(client, args, dockerfile, fileobj)
    progress: Any = None
    if args.quiet or args.progress == "quiet":
        progress = None
    elif args.progress == "json":
        def progress(event: Any) -> None:
            sys.stdout.write(json.dumps(event.to_json()) + "\n")
            sys.stdout.flush()
    else:
        progress = PlainRenderer(sys.stderr)
    image, _ = client.images.build(
        path=args.context, tag=args.tag, dockerfile=dockerfile, fileobj=fileobj,
        buildargs=_pairs(args.build_arg, "--build-arg"), target=args.target,
        nocache=args.no_cache, labels=_pairs(args.label, "--label"),
        secrets=_secrets(args.secret), progress=progress,
    )
    if args.quiet or args.progress == "quiet":
        print(image.id)
    return 0


def _check(client: Any, args: argparse.Namespace, dockerfile: str | None, fileobj: Any) -> int:
    warnings, fail = client.images.check(path=args.context, dockerfile=dockerfile, fileobj=fileobj)
    for warning in warnings:
        print(f"WARNING: {warning.rule}" + (f" - {warning.url}" if warning.url else ""))
        print(f"{warning.message}" + (f"\n  hint: {warning.hint}" if warning.hint else ""))
        if warning.line is not None:
            print(f"Dockerfile:{warning.line}")
        print()
    count = len(warnings)
    if count:
        print(f"Check complete, {count} warning{'s' if count != 1 else ''} "
              f"{'have' if count != 1 else 'has'} been found!")
    else:
        print("Check complete, no warnings found.")
    return 1 if (fail and count) else 0


def history(args: argparse.Namespace) -> int:
    client = from_env()
    rows = client.images.get(args.image).history()
    if args.quiet:
        for row in rows:
            print(row["Id"] if args.no_trunc or row["Id"] == "<missing>" else row["Id"][7:19])
        return 0
    out = []
    for row in rows:
        created_by = " ".join(row["CreatedBy"].split())
        if not args.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        ident = row["Id"]
        if ident != "<missing>" and not args.no_trunc:
            ident = ident.removeprefix("sha256:")[:12]
        age = since(row["Created"])
        created = f"{human_duration(age)} ago" if age else "N/A"
        out.append([ident, created, created_by, human_size(row["Size"]), row["Comment"]])
    print(table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], out))
    return 0
