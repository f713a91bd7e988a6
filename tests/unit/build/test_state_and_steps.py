"""Pure pieces of the steps: the stage state, config rules, destinations, RUN argv, history."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbdock.build.args import global_args
from nbdock.build.events import EVENT_TYPES, BuildFinished, StepCacheMiss, event_from_json
from nbdock.build.history import history
from nbdock.build.rootfs import DirLayer, RootView
from nbdock.build.state import DEFAULT_PATH, StageState
from nbdock.build.steps_copy import normalize_dest, parse_chmod
from nbdock.build.steps_meta import _port, check_signal, normalize_workdir, quoted
from nbdock.build.steps_run import clean_upper, command_args, created_by
from nbdock.dockerfile import parse_dockerfile
from nbdock.errors import BuildError, DockerfileError
from nbdock.image.records import ImageRecord, LayerRecord


def scratch() -> StageState:
    return StageState.from_image("", "sha256:k", [], None, "1970-01-01T00:00:00Z")


def test_scratch_gets_the_default_path() -> None:
    assert scratch().runtime["Env"] == [f"PATH={DEFAULT_PATH}"]


def test_base_config_is_inherited_but_not_its_onbuild() -> None:
    base = {"config": {"Env": ["A=1"], "Cmd": ["sh"], "OnBuild": ["RUN x"]},
            "history": [{"created_by": "x"}], "architecture": "amd64", "os": "linux"}
    state = StageState.from_image("", "k", [], base, "1970-01-01T00:00:00Z")
    assert state.runtime == {"Env": ["A=1"], "Cmd": ["sh"]}
    assert state.image["history"] == [{"created_by": "x"}]
    assert base["config"]["OnBuild"] == ["RUN x"]  # the base's dict is not changed


def test_env_and_arg_share_the_build_env_last_one_wins() -> None:
    state = scratch()
    state.set_arg("V", "from-arg")
    state.set_env("V", "from-env")
    assert state.build_env["V"] == "from-env"
    assert "V=from-env" in state.runtime["Env"]
    state.set_arg("W", "w")
    assert "W" not in state.env()  # ARGs never reach the image's Env
    assert state.args_in_effect() == {"V": "from-env", "W": "w"}
    state.set_arg("NOVALUE", None)
    assert "NOVALUE" not in state.args_in_effect()


def test_set_env_replaces_in_place() -> None:
    state = scratch()
    state.set_env("PATH", "/x")
    assert state.runtime["Env"] == ["PATH=/x"]


@pytest.mark.parametrize(("current", "path", "expected"), [
    ("/", "app", "/app"), ("/app", "data", "/app/data"), ("/app", "/abs/", "/abs"),
    ("/app", "../x", "/x"), ("", "a//b/.", "/a/b"),
])
def test_workdir_normalisation(current: str, path: str, expected: str) -> None:
    assert normalize_workdir(current, path) == expected


@pytest.mark.parametrize(("spec", "ports"), [
    ("80", ["80/tcp"]), ("53/udp", ["53/udp"]), ("8000-8002", ["8000/tcp", "8001/tcp", "8002/tcp"]),
    ("443/TCP", ["443/tcp"]),
])
def test_expose_ports(spec: str, ports: list[str]) -> None:
    assert _port(spec, 1) == ports


@pytest.mark.parametrize("spec", ["http", "80/xyz", "90-80"])
def test_bad_expose_is_a_located_error(spec: str) -> None:
    with pytest.raises(DockerfileError) as info:
        _port(spec, 7)
    assert info.value.line == 7


def test_signals() -> None:
    for ok in ("SIGTERM", "TERM", "9", "SIGRTMIN+3", "sigquit"):
        check_signal(ok, 1)
    with pytest.raises(DockerfileError):
        check_signal("SIGNOPE", 1)


def test_history_lines_quote_like_go() -> None:
    assert quoted(["/bin/sh", "-c", 'echo "hi"']) == '["/bin/sh" "-c" "echo \\"hi\\""]'


@pytest.mark.parametrize(("workdir", "dest", "expected"), [
    ("/", "/app/", ("/app", True)), ("/app", "cfg", ("/app/cfg", False)),
    ("/app", ".", ("/app", True)), ("/app", "./", ("/app", True)),
    ("/", "/x/.", ("/x", True)), ("/w", "sub/", ("/w/sub", True)),
])
def test_copy_destinations(workdir: str, dest: str, expected: tuple[str, bool]) -> None:
    assert normalize_dest(workdir, dest) == expected


def test_chmod_must_be_octal() -> None:
    assert parse_chmod("755", 1) == 0o755 and parse_chmod(None, 1) is None
    with pytest.raises(DockerfileError):
        parse_chmod("u+x", 3)
    with pytest.raises(DockerfileError):
        parse_chmod("17777", 3)


def _run(text: str):  # noqa: ANN202
    return parse_dockerfile(f"FROM scratch\n{text}\n").stages[0].instructions[0]


def test_run_argv_shell_exec_and_heredocs() -> None:
    state = scratch()
    assert command_args(state, _run("RUN echo hi"))[0] == ["/bin/sh", "-c", "echo hi"]
    assert command_args(state, _run('RUN ["echo", "hi"]'))[0] == ["echo", "hi"]
    assert command_args(state, _run("RUN <<EOF\necho one\necho two\nEOF"))[0] == [
        "/bin/sh", "-c", "echo one\necho two\n"]
    argv, pipes = command_args(state, _run("RUN <<EOF\n#!/bin/sh\necho x\nEOF"))
    assert argv == ["/dev/pipes/EOF"] and pipes["EOF"].startswith(b"#!/bin/sh")
    argv, _ = command_args(state, _run("RUN cat <<EOF > /out\nhello\nEOF"))
    assert argv == ["/bin/sh", "-c", "cat <<EOF > /out\nhello\nEOF"]
    state.runtime["Shell"] = ["/bin/bash", "-euc"]
    assert command_args(state, _run("RUN x"))[0] == ["/bin/bash", "-euc", "x"]


def test_run_history_names_the_build_args() -> None:
    state = scratch()
    assert created_by(state, ["/bin/sh", "-c", "make"]) == "RUN /bin/sh -c make"
    state.set_arg("A", "1")
    state.set_arg("B", "2")
    assert created_by(state, ["/bin/sh", "-c", "make"]) == "RUN |2 A=1 B=2 /bin/sh -c make"


def test_global_args_expand_in_order_and_take_build_args() -> None:
    df = parse_dockerfile("ARG BASE=busybox\nARG TAG=${BASE}-x\nARG OVER=a\nFROM $BASE:$TAG\n")
    values, declared = global_args(df, {"OVER": "b"})
    assert values["TAG"] == "busybox-x" and values["OVER"] == "b"
    assert declared == {"BASE", "TAG", "OVER"}
    assert values["TARGETOS"] == "linux" and values["TARGETPLATFORM"].startswith("linux/")


def test_clean_upper_removes_mount_stubs_and_copied_up_dirs(tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "passwd").write_text("root")
    (lower / "tmp").mkdir()
    upper = tmp_path / "upper"
    for d in ("etc", "proc", "run/secrets", "tmp", "app"):
        (upper / d).mkdir(parents=True)
    os.chmod(upper / "etc", os.stat(lower / "etc").st_mode & 0o7777)
    os.chmod(upper / "tmp", os.stat(lower / "tmp").st_mode & 0o7777)
    (upper / "etc" / "hosts").write_bytes(b"")  # a stub the runtime made for its bind mount
    (upper / "run" / "secrets" / "token").write_bytes(b"")
    (upper / "app" / "out.txt").write_text("made by RUN")
    view = RootView([DirLayer(str(lower))])
    clean_upper(upper, view, ["/proc", "/etc/hosts", "/run/secrets/token"])
    assert sorted(p.name for p in upper.iterdir()) == ["app"]


def test_clean_upper_keeps_a_stub_path_the_command_filled(tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    lower.mkdir()
    upper = tmp_path / "upper"
    (upper / "cache").mkdir(parents=True)
    (upper / "cache" / "kept").write_text("x")
    clean_upper(upper, RootView([DirLayer(str(lower))]), ["/cache"])
    assert (upper / "cache" / "kept").exists()


def test_events_round_trip_through_json() -> None:
    for event in (StepCacheMiss(3, "files", "file changed: a"),
                  BuildFinished("sha256:x", ["a:latest"], 1.5, 2, 3)):
        assert event_from_json(event.to_json()) == event
    assert "step-output" in EVENT_TYPES


def test_history_pairs_entries_with_layers() -> None:
    layers = (LayerRecord("sha256:1", "sha256:1", 100), LayerRecord("sha256:2", "sha256:2", 200))
    config = {"history": [{"created_by": "import"}, {"created_by": "ENV A=1", "empty_layer": True},
                          {"created_by": "RUN make"}]}
    image = ImageRecord("sha256:img", "sha256:m", ("x:latest",), config, layers, 300, "")
    rows = history(image)
    assert [(r.image, r.created_by, r.size) for r in rows] == [
        ("sha256:img", "RUN make", 200), ("<missing>", "ENV A=1", 0), ("<missing>", "import", 100)]


def test_build_error_carries_context() -> None:
    error = BuildError("RUN failed", step="RUN make", line=4, exit_code=2,
                       build_log=["cc: error"], hint="fix it")
    assert (error.line, error.exit_code, error.step, error.build_log) == (4, 2, "RUN make",
                                                                         ["cc: error"])
    assert str(error).startswith("Dockerfile:4: RUN failed — fix it")
