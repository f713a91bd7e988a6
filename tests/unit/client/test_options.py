from __future__ import annotations

from pathlib import Path

import pytest

from nbdock.client import options
from nbdock.engine import RunOptions, command_for
from nbdock.errors import InvalidArgument


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512", 512), ("32m", 32 << 20), ("1g", 1 << 30), ("64MiB", 64 << 20), ("1.5k", 1536),
     ("10b", 10), (4096, 4096)],
)
def test_parse_bytes(text, expected: int) -> None:
    assert options.parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["lots", "-5m", "3x"])
def test_parse_bytes_rejects_with_hint(text: str) -> None:
    with pytest.raises(InvalidArgument):
        options.parse_bytes(text)


def test_volumes(tmp_path: Path) -> None:
    ro = options.parse_volume(f"{tmp_path}:/data:ro")
    assert (ro.source, ro.target, ro.readonly) == (str(tmp_path), "/data", True)
    assert options.parse_volumes({str(tmp_path): {"bind": "/x", "mode": "rw"}})[0].target == "/x"
    for bad in ("relative:/x", f"{tmp_path}", f"{tmp_path}:/x:rx"):
        with pytest.raises(InvalidArgument):
            options.parse_volume(bad)


def test_env_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_CALLER", "yes")
    assert options.parse_env({"A": "1"}) == ("A=1",)
    assert options.parse_env(["A=1", "FROM_CALLER", "UNSET_ONE"]) == ("A=1", "FROM_CALLER=yes")
    with pytest.raises(InvalidArgument):
        options.parse_env(["=x"])


def test_limits_and_tmpfs() -> None:
    limits = options.parse_limits("32m", "0.5", 64)
    assert (limits.memory_bytes, limits.cpus, limits.pids) == (32 << 20, 0.5, 64)
    assert options.parse_limits(nano_cpus=2_000_000_000, pids_limit=-1).cpus == 2.0
    assert options.parse_limits(pids_limit=-1).pids is None
    mount = options.parse_tmpfs(["/run:size=1m,mode=755"])[0]
    assert (mount.target, mount.type, mount.options) == ("/run", "tmpfs", ("size=1m", "mode=755"))


@pytest.mark.parametrize(
    ("config", "command", "entrypoint", "expected"),
    [
        ({"Cmd": ["sh"]}, None, None, ["sh"]),
        ({"Cmd": ["sh"]}, ("ls",), None, ["ls"]),
        ({"Entrypoint": ["/init"], "Cmd": ["--serve"]}, None, None, ["/init", "--serve"]),
        ({"Entrypoint": ["/init"], "Cmd": ["--serve"]}, ("--x",), None, ["/init", "--x"]),
        # --entrypoint drops the image's CMD, as docker run does
        ({"Entrypoint": ["/init"], "Cmd": ["--serve"]}, None, ("echo",), ["echo"]),
        ({"Entrypoint": ["/init"], "Cmd": ["--serve"]}, ("hi",), ("echo",), ["echo", "hi"]),
        ({"Entrypoint": ["/init"], "Cmd": ["sh"]}, ("ls",), (), ["ls"]),
    ],
)
def test_entrypoint_and_cmd_follow_docker(config, command, entrypoint, expected) -> None:
    run = RunOptions(image="x", command=command, entrypoint=entrypoint)
    assert command_for(config, run) == expected
