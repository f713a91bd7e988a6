"""Isolation, checked from inside real containers (the issue's list, one test per promise)."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest

from nbdock.errors import ContainerError
from tests.integration.conftest import run_output

DOCKER_DEFAULT_CAPS = "00000000a80425fb"


@pytest.fixture(params=["direct", "pre-warmed"])
def client(client, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """Every promise holds for both ways a container starts: forked on demand by the caller, and
    handed to a pre-warmed supervisor and init (runtime/pool.py) that made its namespaces and
    cgroup before the container existed. The pre-warmed case checks it really got one."""
    if request.param == "direct":
        monkeypatch.setenv("NBDOCK_FORKSERVER", "never")
        yield client
        return
    monkeypatch.setenv("NBDOCK_FORKSERVER", "always")
    runtime = client.engine.runtime
    runtime.prewarm("none")
    runtime.prewarm("host")
    server = runtime._forkserver
    before = server.pooled_launches
    yield client
    assert server.pooled_launches > before, "no start of this test got a pre-warmed container"


def test_pid_1_is_the_command(client) -> None:
    assert run_output(client, "sh", "-c", "echo $$").strip() == "1"


def test_proc_lists_only_the_containers_processes(client) -> None:
    out = run_output(client, "sh", "-c", "ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '")
    pids = [int(p) for p in out.split()]
    # sh (1), ls, grep, sort, tr: a handful of low pids, never the host's hundreds.
    assert pids[0] == 1
    assert len(pids) <= 6
    assert max(pids) < 20


def test_hostname_is_the_containers_own(client) -> None:
    inside = run_output(client, "hostname").strip()
    assert inside != socket.gethostname()
    assert len(inside) == 12  # the short container id, as in Docker
    named = run_output(client, "hostname", hostname="lab-box").strip()
    assert named == "lab-box"


def test_host_files_are_not_visible(client, tmp_path: Path) -> None:
    marker = tmp_path / "host-only-marker"
    marker.write_text("secret")
    out = run_output(
        client, "sh", "-c", f"test -e {marker} && echo visible || echo hidden; ls /"
    )
    assert out.splitlines()[0] == "hidden"
    assert "work" not in out.split()  # the host's /work never appears in the container root


def test_network_none_has_only_loopback(client) -> None:
    out = run_output(client, "ls", "/sys/class/net")
    assert out.split() == ["lo"]
    # lo is up: the container can talk to itself
    assert "UP" in run_output(client, "ip", "link", "show", "lo") or "up" in run_output(
        client, "cat", "/sys/class/net/lo/operstate"
    ) or "unknown" in run_output(client, "cat", "/sys/class/net/lo/operstate")


def test_capabilities_are_dockers_default_set(client) -> None:
    status = run_output(client, "cat", "/proc/self/status")
    caps = dict(line.split(":\t") for line in status.splitlines() if line.startswith("Cap"))
    assert caps["CapEff"] == DOCKER_DEFAULT_CAPS
    assert caps["CapPrm"] == DOCKER_DEFAULT_CAPS
    assert caps["CapBnd"] == DOCKER_DEFAULT_CAPS
    assert caps["CapInh"] == "0000000000000000"
    assert caps["CapAmb"] == "0000000000000000"
    assert "NoNewPrivs:\t1" in status
    assert "Seccomp:\t2" in status


def test_non_root_user_has_no_effective_capabilities(client) -> None:
    out = run_output(client, "sh", "-c", "id -u; grep -E 'CapEff|CapBnd' /proc/self/status",
                     user="nobody")
    lines = out.splitlines()
    assert lines[0] == "65534"
    assert lines[1].split()[1] == "0000000000000000"
    assert lines[2].split()[1] == DOCKER_DEFAULT_CAPS


def test_mount_and_unshare_are_refused(client) -> None:
    out = run_output(
        client, "sh", "-c",
        "mount -t tmpfs none /mnt 2>&1; echo mount=$?; unshare -m true 2>&1; echo unshare=$?",
    )
    assert "mount=1" in out or "mount=255" in out
    assert "unshare=1" in out
    assert "Operation not permitted" in out  # EPERM, from the seccomp filter


def test_only_fds_0_to_2_are_open(client) -> None:
    # PID 1 (the shell) is listed by a second process, so the listing's own fd is not counted.
    out = run_output(client, "sh", "-c", "ls /proc/1/fd; true")
    assert out.split() == ["0", "1", "2"]


def test_signals_start_at_their_defaults_and_stdin_is_dev_null(client) -> None:
    """The supervisor ignores SIGPIPE, SIGINT, SIGHUP and SIGTSTP; ignored signals survive exec,
    so the init resets every disposition (glibc's own 32 and 33 included) and the mask, as runc
    does: a container's `yes | head` must die of SIGPIPE, not loop on EPIPE."""
    out = run_output(
        client, "sh", "-c",
        "grep -E '^Sig(Ign|Blk):' /proc/self/status; readlink /proc/self/fd/0; "
        "yes | head -n 1 >/dev/null; echo pipeline=$?",
    )
    assert "SigIgn:\t0000000000000000" in out
    assert "SigBlk:\t0000000000000000" in out
    assert "/dev/null" in out
    assert "pipeline=0" in out


def test_masked_and_readonly_proc_paths(client) -> None:
    out = run_output(
        client, "sh", "-c",
        "cat /proc/kcore | wc -c; echo 1 > /proc/sys/kernel/domainname 2>&1; echo rc=$?",
    )
    lines = out.splitlines()
    assert lines[0].strip() == "0"  # /proc/kcore is /dev/null inside
    assert "rc=1" in out or "Read-only" in out


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        digest.update(f"{path.relative_to(root)}:{info.st_mode}:{info.st_size}".encode())
    return digest.hexdigest()


def test_writes_are_private_to_one_container(client) -> None:
    image = client.images.get("busybox")
    layer_dirs = client.engine.images.layer_dirs(image.record)
    before = [_tree_digest(Path(d)) for d in layer_dirs]
    writer = client.containers.run(
        "busybox", ["sh", "-c", "echo mine > /etc/written && rm /bin/ls && echo ok"],
        detach=True,
    )
    assert writer.wait()["StatusCode"] == 0
    out = run_output(client, "sh", "-c", "test -e /etc/written && echo seen || echo unseen; "
                     "test -e /bin/ls && echo ls-present")
    assert out.split() == ["unseen", "ls-present"]
    assert [_tree_digest(Path(d)) for d in layer_dirs] == before
    writer.remove()


def test_workdir_is_created_inside_the_container(client) -> None:
    assert run_output(client, "pwd", working_dir="/work/new/dir").strip() == "/work/new/dir"
    assert not Path("/work/new/dir").exists() or Path("/work/new/dir").is_dir()


def test_volume_and_readonly_volume(client, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("from host\n")
    out = run_output(
        client, "sh", "-c", "cat /data/in.txt; echo back > /data/out.txt; "
        "echo x > /ro/x 2>/dev/null || echo ro-refused",
        volumes=[f"{tmp_path}:/data", f"{tmp_path}:/ro:ro"],
    )
    assert out.splitlines() == ["from host", "ro-refused"]
    assert (tmp_path / "out.txt").read_text() == "back\n"


def test_read_only_root_and_tmpfs(client) -> None:
    out = run_output(
        client, "sh", "-c", "touch /x 2>/dev/null || echo root-ro; touch /scratch/y && echo tmp-ok",
        read_only=True, tmpfs=["/scratch"],
    )
    assert out.split() == ["root-ro", "tmp-ok"]


def test_network_host_sees_host_interfaces(client) -> None:
    host_ifaces = sorted(os.listdir("/sys/class/net"))
    out = run_output(client, "ls", "/sys/class/net", network_mode="host")
    assert sorted(out.split()) == host_ifaces


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (["nosuchcommand"], 127),
        (["/etc/passwd"], 126),
        (["sh", "-c", "exit 3"], 3),
    ],
)
def test_exit_codes_follow_docker(client, command: list[str], code: int) -> None:
    with pytest.raises(ContainerError) as info:
        client.containers.run("busybox", command, remove=True)
    assert info.value.exit_status == code


def test_missing_workdir_is_created_even_with_a_read_only_root(client) -> None:
    assert run_output(client, "pwd", working_dir="/not/there", read_only=True).strip() == "/not/there"
