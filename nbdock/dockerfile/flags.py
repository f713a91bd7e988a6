"""Instruction flags (``--from=…``, ``--mount=…``), checked strictly like BuildKit's ``BFlags``.

A typo in a flag must fail the parse with the flag's name and a suggestion, not be ignored:
``COPY --chwon=1000 …`` silently copying as root is the kind of surprise nbdock exists to avoid.
Values stay unexpanded here; typed values (booleans, durations, sizes, modes) are converted.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from typing import Literal, cast

from nbdock.dockerfile._suggest import closest
from nbdock.dockerfile.instructions import CacheSharing, Mount, MountType
from nbdock.errors import DockerfileError

FlagKind = Literal["bool", "string", "strings"]
FlagValue = bool | str | list[str]

#: The flags each instruction accepts (BuildKit's, minus the ``labs`` channel ones).
FLAGS: dict[str, dict[str, FlagKind]] = {
    "FROM": {"platform": "string"},
    "RUN": {"mount": "strings", "network": "string", "security": "string"},
    "COPY": {
        "from": "string",
        "chown": "string",
        "chmod": "string",
        "link": "bool",
        "parents": "bool",
        "exclude": "strings",
    },
    "ADD": {
        "chown": "string",
        "chmod": "string",
        "link": "bool",
        "checksum": "string",
        "keep-git-dir": "bool",
        "unpack": "bool",
        "exclude": "strings",
    },
    "HEALTHCHECK": {
        "interval": "string",
        "timeout": "string",
        "start-period": "string",
        "start-interval": "string",
        "retries": "string",
    },
}


def parse_flags(instruction: str, raw: Sequence[str]) -> dict[str, FlagValue]:
    """``--name=value`` / ``--name`` strings → {name: value} for the flags given.

    Booleans may be written ``--link``, ``--link=true`` or ``--link=false``; ``strings`` flags
    (``--mount``, ``--exclude``) may repeat; any other repeat is an error, as in BuildKit.
    """
    known = FLAGS.get(instruction, {})
    values: dict[str, FlagValue] = {}
    for item in raw:
        if item == "--":
            break
        name, has_value, value = item.partition("=")
        key = name[2:] if name.startswith("--") else name
        kind = known.get(key)
        if kind is None:
            raise DockerfileError(f"unknown flag {name} for {instruction}", hint=_flag_hint(
                instruction, key, known
            ))
        if key in values and kind != "strings":
            raise DockerfileError(
                f"duplicate flag specified: {name}", hint=f"give {name} only once"
            )
        if kind == "bool":
            if has_value and value == "":
                raise DockerfileError(f"missing a value on flag: {name}", hint=f"write {name}")
            if value.lower() not in ("", "true", "false"):
                raise DockerfileError(
                    f"expecting boolean value for flag {name}, not: {value}",
                    hint=f"write {name}, {name}=true or {name}=false",
                )
            values[key] = value.lower() != "false"
        elif not has_value:
            raise DockerfileError(
                f"missing a value on flag: {name}", hint=f"write {name}=<value>"
            )
        elif kind == "strings":
            cast(list[str], values.setdefault(key, [])).append(value)
        else:
            values[key] = value
    return values


def _flag_hint(instruction: str, key: str, known: dict[str, FlagKind]) -> str:
    if not known:
        return f"{instruction} takes no flags"
    match = closest(key, known, case_sensitive=True)
    if match is not None:
        return f'did you mean "--{match}"?'
    return f"{instruction} accepts " + ", ".join(f"--{k}" for k in known)


# -- RUN --mount -------------------------------------------------------------------------------

_MOUNT_TYPES: tuple[MountType, ...] = ("bind", "cache", "tmpfs", "secret", "ssh")
_SHARING: tuple[CacheSharing, ...] = ("shared", "private", "locked")
_MOUNT_KEYS = (
    "type", "from", "source", "src", "target", "dst", "destination", "readonly", "ro",
    "readwrite", "rw", "id", "sharing", "required", "size", "mode", "uid", "gid", "env",
)  # fmt: skip
_TYPED_KEYS = frozenset(
    ["type", "readonly", "ro", "readwrite", "rw", "required", "size", "sharing", "mode", "uid"]
    + ["gid"]
)


def parse_mount(spec: str) -> Mount:
    """One ``--mount`` value: comma-separated ``key=value`` fields (CSV quoting allowed)."""
    try:
        fields = next(csv.reader([spec]), [])
    except csv.Error as exc:
        raise DockerfileError(f"failed to parse csv mounts: {exc}", hint=_MOUNT_HINT) from None
    opts: dict[str, object] = {"type": "bind"}
    readonly_given = False
    for item in fields:
        key, has_value, value = item.partition("=")
        key = key.lower()
        if not has_value:
            if key in ("readonly", "ro", "readwrite", "rw"):
                opts["readonly"] = key in ("readonly", "ro")
                readonly_given = True
                continue
            if key == "required":
                value = "true"
            else:
                raise DockerfileError(
                    f"invalid field '{item}' must be a key=value pair", hint=_MOUNT_HINT
                )
        if key in _TYPED_KEYS and "$" in value:
            raise DockerfileError(
                f"variables are not supported in the mount option {key!r}",
                hint=f"write the value of {key} literally",
            )
        readonly_given |= _apply_mount_field(opts, key, value, item)
    return _finish_mount(opts, readonly_given)


_MOUNT_HINT = "write e.g. --mount=type=cache,target=/root/.cache"


def _apply_mount_field(opts: dict[str, object], key: str, value: str, item: str) -> bool:
    """Set one option; returns True when it decided read-only-ness explicitly."""
    if key == "type":
        if value.lower() not in _MOUNT_TYPES:
            match = closest(value.lower(), _MOUNT_TYPES)
            raise DockerfileError(
                f"unsupported mount type {value!r}",
                hint=f'did you mean "{match}"?' if match else "use bind, cache, tmpfs or secret",
            )
        opts["type"] = value.lower()
    elif key in ("from", "id", "env"):
        opts[key] = value
    elif key in ("source", "src"):
        opts["source"] = value
    elif key in ("target", "dst", "destination"):
        opts["target"] = value
    elif key in ("readonly", "ro", "readwrite", "rw"):
        flag = _go_bool(key, value)
        opts["readonly"] = flag if key in ("readonly", "ro") else not flag
        return True
    elif key == "required":
        if opts["type"] not in ("secret", "ssh"):
            raise DockerfileError(f"unexpected key '{key}' for mount type '{opts['type']}'")
        opts["required"] = _go_bool(key, value)
    elif key == "size":
        if opts["type"] != "tmpfs":
            raise DockerfileError(f"unexpected key '{key}' for mount type '{opts['type']}'")
        opts["size"] = ram_in_bytes(value)
    elif key == "sharing":
        if value.lower() not in _SHARING:
            raise DockerfileError(
                f"unsupported sharing value {value!r}", hint="use shared, private or locked"
            )
        opts["sharing"] = value.lower()
    elif key in ("mode", "uid", "gid"):
        opts[key] = _unsigned(key, value, 8 if key == "mode" else 10)
    else:
        match = closest(key, _MOUNT_KEYS, case_sensitive=True)
        raise DockerfileError(
            f"unexpected key '{key}' in '{item}'",
            hint=f'did you mean "{match}"?' if match else _MOUNT_HINT,
        )
    return False


def _finish_mount(opts: dict[str, object], readonly_given: bool) -> Mount:
    kind = cast(MountType, opts["type"])
    if kind not in ("secret", "ssh", "cache"):
        for key in ("mode", "uid", "gid"):
            if key in opts:
                raise DockerfileError(f"{key} not allowed for {kind!r} type mounts")
    if not readonly_given:
        opts["readonly"] = kind not in ("cache", "tmpfs")
    if kind == "secret":
        if "from" in opts:
            raise DockerfileError("secret mount should not have a from")
        if "sharing" in opts:
            raise DockerfileError("secret mount should not define sharing")
        if not any(k in opts for k in ("source", "target", "id")):
            raise DockerfileError(
                "invalid secret mount. one of source, target required",
                hint="write --mount=type=secret,id=mysecret",
            )
        if "source" in opts and "id" in opts:
            raise DockerfileError("both source and id can't be set")
    if "sharing" in opts and kind != "cache":
        raise DockerfileError(f"invalid cache sharing set for {kind} mount")
    return Mount(
        type=kind,
        target=cast("str | None", opts.get("target")),
        source=cast("str | None", opts.get("source")),
        from_stage=cast("str | None", opts.get("from")),
        readonly=bool(opts["readonly"]),
        id=cast("str | None", opts.get("id")),
        sharing=cast("CacheSharing | None", opts.get("sharing")),
        required=bool(opts.get("required", False)),
        size=cast("int | None", opts.get("size")),
        mode=cast("int | None", opts.get("mode")),
        uid=cast("int | None", opts.get("uid")),
        gid=cast("int | None", opts.get("gid")),
        env=cast("str | None", opts.get("env")),
    )


def _go_bool(key: str, value: str) -> bool:
    """Go's ``strconv.ParseBool``."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise DockerfileError(f"invalid value for {key}: {value}", hint="use true or false")


def _unsigned(key: str, value: str, base: int) -> int:
    try:
        number = int(value, base)
    except ValueError:
        number = -1
    if not 0 <= number < 2**32 or value.startswith(("+", "-")):
        raise DockerfileError(f"invalid value {value} for {key}")
    return number


_RAM = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?\Z")


def ram_in_bytes(value: str) -> int:
    """A size like ``64m`` or ``1.5g`` in bytes, binary multiples (docker's ``RAMInBytes``)."""
    match = _RAM.match(value)
    if match is None:
        raise DockerfileError(f"invalid size: {value!r}", hint="write e.g. size=64m")
    number = float(match.group(1))
    power = " kmgtp".index((match.group(2) or " ").lower())
    return int(number * 1024**power)


# -- Go durations (HEALTHCHECK) ----------------------------------------------------------------

_UNITS_NS = {
    "ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
    "m": 60_000_000_000, "h": 3_600_000_000_000,
}  # fmt: skip
_DURATION_PART = re.compile(r"(\d*\.?\d*)([a-zµμ]+)")


def go_duration_ns(text: str) -> int:
    """Go's ``time.ParseDuration`` (``1m30s``, ``1.5h``, ``300ms``, ``0``) in nanoseconds."""
    body = text
    sign = 1
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return 0
    total = 0.0
    pos = 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None or match.group(1) in ("", ".") or match.group(2) not in _UNITS_NS:
            raise DockerfileError(
                f"invalid duration {text!r}", hint="write e.g. 30s, 1m30s or 500ms"
            )
        total += float(match.group(1)) * _UNITS_NS[match.group(2)]
        pos = match.end()
    if not body:
        raise DockerfileError(f"invalid duration {text!r}", hint="write e.g. 30s, 1m30s or 500ms")
    return sign * round(total)
