"""Every instruction builds, and the image's config is what Docker would produce — checked by
inspecting it and by running the image in nbdock's runtime."""

from __future__ import annotations

from pathlib import Path

from tests.integration.build.conftest import build, run, statuses, write_context

CONFIG_DOCKERFILE = """\
FROM busybox
ARG GREETING=hello
ENV APP_HOME=/srv/app NAME="nb dock"
WORKDIR $APP_HOME
RUN echo "$GREETING $NAME" > greeting.txt && echo worker:x:1234:1234::/home/worker:/bin/sh >> /etc/passwd
LABEL org.example.title="demo app" version=1
EXPOSE 8080 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=5s --retries=2 CMD test -f greeting.txt
SHELL ["/bin/sh", "-ec"]
USER worker
ONBUILD RUN echo triggered > /tmp/onbuild.txt
ENTRYPOINT ["/bin/sh", "-c", "cat greeting.txt; id -u; pwd; echo \\"$0 $@\\""]
CMD ["from-cmd"]
"""


def test_image_config_matches_docker(client, ctx: Path) -> None:
    image, events = build(client, write_context(ctx, CONFIG_DOCKERFILE), tag="nbtest/config")
    config = image.attrs["Config"]
    assert config["Env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "APP_HOME=/srv/app", "NAME=nb dock",
    ]
    assert config["WorkingDir"] == "/srv/app"
    assert config["User"] == "worker"
    assert config["Labels"] == {"org.example.title": "demo app", "version": "1"}
    assert config["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert config["Volumes"] == {"/data": {}}
    assert config["StopSignal"] == "SIGQUIT"
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "test -f greeting.txt"],
                                     "Interval": 5_000_000_000, "Retries": 2}
    assert config["Shell"] == ["/bin/sh", "-ec"]
    assert config["OnBuild"] == ["RUN echo triggered > /tmp/onbuild.txt"]
    assert config["Entrypoint"][0] == "/bin/sh" and config["Cmd"] == ["from-cmd"]
    assert "GREETING" not in " ".join(config["Env"])  # ARGs never persist as ENV
    assert image.tags == ["nbtest/config:latest"]
    # Metadata-only instructions add history entries but no layers.
    history = image.attrs["History"]
    assert sum(1 for h in history if not h.get("empty_layer")) == len(image.attrs["RootFS"]["Layers"])
    assert any(h["created_by"] == "ENV APP_HOME=/srv/app NAME=nb dock" for h in history)
    out = run(client, "nbtest/config").splitlines()
    assert out == ["hello nb dock", "1234", "/srv/app", "from-cmd "]  # CMD is $0 of sh -c
    assert [s for s in statuses(events).values() if s.startswith("miss")]


def test_shell_form_cmd_and_entrypoint_reset(client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nCMD echo from the shell form\n")
    image, _ = build(client, ctx, tag="nbtest/cmd")
    assert image.attrs["Config"]["Cmd"] == ["/bin/sh", "-c", "echo from the shell form"]
    assert run(client, "nbtest/cmd") == "from the shell form\n"
    # ENTRYPOINT resets the CMD inherited from the base (busybox's ["sh"]), as Docker does.
    write_context(ctx, "FROM busybox\nENTRYPOINT [\"echo\", \"only\"]\n")
    image, _ = build(client, ctx, tag="nbtest/entry")
    assert image.attrs["Config"]["Entrypoint"] == ["echo", "only"]
    assert image.attrs["Config"]["Cmd"] is None
    assert run(client, "nbtest/entry") == "only\n"


def test_run_exec_form_and_output_events(client, ctx: Path) -> None:
    write_context(ctx, 'FROM busybox\nRUN ["/bin/sh", "-c", "echo to-out; echo to-err >&2"]\n'
                       "RUN echo second > /second.txt\n")
    image, events = build(client, ctx, nocache=True)
    output = [e.to_json() for e in events if e.to_json()["type"] == "step-output"]
    streams = {(o["stream"], o["text"].strip()) for o in output}
    assert ("stdout", "to-out") in streams and ("stderr", "to-err") in streams
    assert run(client, image.id, "cat", "/second.txt") == "second\n"


def test_metadata_only_steps_make_no_layers_and_empty_runs_neither(client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nENV A=1\nLABEL x=y\nRUN echo nothing changes\nUSER nobody\n")
    image, _ = build(client, ctx)
    base = client.images.get("busybox")
    assert image.attrs["RootFS"]["Layers"] == base.attrs["RootFS"]["Layers"]
    created = [h["created_by"] for h in image.attrs["History"][-4:]]
    assert created == ["ENV A=1", "LABEL x=y", "RUN /bin/sh -c echo nothing changes", "USER nobody"]
    assert all(h.get("empty_layer") for h in image.attrs["History"][-4:])


def test_arg_scoping_and_build_args(client, ctx: Path) -> None:
    write_context(ctx, "ARG BASE=busybox\nARG GLOBAL=g\nFROM $BASE\nARG GLOBAL\nARG LOCAL=l-$GLOBAL\n"
                       "ENV FROM_ARG=$LOCAL\nRUN echo \"$GLOBAL $LOCAL\" > /args.txt\n")
    image, _ = build(client, ctx, buildargs={"GLOBAL": "cli"})
    assert "FROM_ARG=l-cli" in image.attrs["Config"]["Env"]
    assert run(client, image.id, "cat", "/args.txt") == "cli l-cli\n"
    history = [h["created_by"] for h in image.attrs["History"]]
    assert "RUN |2 GLOBAL=cli LOCAL=l-cli /bin/sh -c echo \"$GLOBAL $LOCAL\" > /args.txt" in history


def test_onbuild_triggers_run_in_the_child_build(client, ctx: Path, tmp_path: Path) -> None:
    write_context(ctx, "FROM busybox\nONBUILD RUN echo triggered > /onbuild.txt\n")
    build(client, ctx, tag="nbtest/parent")
    child = write_context(tmp_path / "child", "FROM nbtest/parent\nRUN cat /onbuild.txt\n")
    image, events = build(client, child)
    assert run(client, image.id, "cat", "/onbuild.txt") == "triggered\n"
    assert "OnBuild" not in image.attrs["Config"] or not image.attrs["Config"]["OnBuild"]
    assert any(e.to_json().get("text", "").startswith("ONBUILD RUN") for e in events)


def test_workdir_is_created_owned_by_the_user(client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nRUN echo app:x:2000:2000::/home/app:/bin/sh >> /etc/passwd\n"
                       "USER app\nWORKDIR /home/app/work\nRUN touch mine && stat -c '%u %a' . mine\n")
    image, _ = build(client, ctx)
    assert run(client, image.id, "stat", "-c", "%u", "/home/app/work") == "2000\n"
    assert run(client, image.id, "pwd") == "/home/app/work\n"


def test_build_containers_never_show_in_ps(client, ctx: Path) -> None:
    write_context(ctx, "FROM busybox\nRUN echo in a build container\n")
    before = {c.id for c in client.containers.list(all=True)}
    build(client, ctx, nocache=True)
    # (other tests' --rm containers may vanish meanwhile: what matters is that none appeared)
    assert {c.id for c in client.containers.list(all=True)} - before == set()
    leftovers = list((client.engine.root / "build" / "containers").glob("*/state.json"))
    assert leftovers == []
