"""Rootless isolation, checked from inside containers started by an unprivileged user."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest

from nbdock.errors import ContainerError
from tests.conftest import need
from tests.integration.conftest import run_output
from tests.integration.rootless._support import only_without_root

pytestmark = pytest.mark.rootless
only_without_root()

DOCKER_DEFAULT_CAPS = "00000000a80425fb"


def test_busybox_image_is_bootstrapped_by_the_user(rootless_client) -> None:
    image = rootless_client.images.get("busybox")
    layer_dirs = rootless_client.engine.images.layer_dirs(image.record)
    assert layer_dirs
    # Extracted without root: every file belongs to the caller, who is root in the container.
    assert {(Path(d) / "bin" / "busybox").stat().st_uid for d in layer_dirs
            if (Path(d) / "bin" / "busybox").exists()} == {os.getuid()}


def test_the_caller_is_root_inside(rootless_client) -> None:
    out = run_output(rootless_client, "sh", "-c", "id -u; id -g; head -n1 /proc/self/uid_map")
    uid, gid, first_map = out.splitlines()
    assert (uid, gid) == ("0", "0")
    assert first_map.split() == ["0", str(os.getuid()), "1"]


def test_pid_1_is_the_command_and_proc_is_private(rootless_client) -> None:
    out = run_output(rootless_client, "sh", "-c", "echo $$; ls /proc | grep -cE '^[0-9]+$'")
    pid, count = out.split()
    assert pid == "1"
    assert int(count) <= 6  # sh, ls, grep: never the host's hundreds


def test_hostname_is_the_containers_own(rootless_client) -> None:
    inside = run_output(rootless_client, "hostname").strip()
    assert inside != socket.gethostname()
    assert run_output(rootless_client, "hostname", hostname="rootless-box").strip() == "rootless-box"


def test_host_files_are_not_visible(rootless_client, tmp_path: Path) -> None:
    marker = tmp_path / "host-only-marker"
    marker.write_text("secret")
    out = run_output(rootless_client, "sh", "-c", f"test -e {marker} && echo visible || echo hidden")
    assert out.strip() == "hidden"


def test_network_none_has_only_loopback(rootless_client) -> None:
    assert run_output(rootless_client, "ls", "/sys/class/net").split() == ["lo"]
    assert run_output(rootless_client, "cat", "/sys/class/net/lo/operstate").strip() in ("up", "unknown")


def test_network_host_sees_host_interfaces(rootless_client) -> None:
    out = run_output(rootless_client, "ls", "/sys/class/net", network_mode="host")
    assert sorted(out.split()) == sorted(os.listdir("/sys/class/net"))


def test_capabilities_are_dockers_default_set(rootless_client) -> None:
    status = run_output(rootless_client, "cat", "/proc/self/status")
    caps = dict(line.split(":\t") for line in status.splitlines() if line.startswith("Cap"))
    assert caps["CapEff"] == DOCKER_DEFAULT_CAPS
    assert caps["CapPrm"] == DOCKER_DEFAULT_CAPS
    assert caps["CapBnd"] == DOCKER_DEFAULT_CAPS
    assert caps["CapAmb"] == "0000000000000000"
    assert "NoNewPrivs:\t1" in status
    assert "Seccomp:\t2" in status


def test_mount_and_unshare_are_refused(rootless_client) -> None:
    out = run_output(
        rootless_client, "sh", "-c",
        "mount -t tmpfs none /mnt 2>&1; echo mount=$?; unshare -m true 2>&1; echo unshare=$?",
    )
    assert "mount=0" not in out
    assert "unshare=0" not in out
    assert "Operation not permitted" in out


def test_only_fds_0_to_2_are_open(rootless_client) -> None:
    # ls lists the shell's fds from another process (a glob would show its own directory fd);
    # "; true" keeps the shell from exec'ing ls in its place.
    out = run_output(rootless_client, "sh", "-c", "ls /proc/$$/fd; true")
    assert out.split() == ["0", "1", "2"]


def test_masked_and_readonly_proc_paths(rootless_client) -> None:
    out = run_output(
        rootless_client, "sh", "-c",
        "cat /proc/kcore | wc -c; echo 1 > /proc/sys/kernel/domainname 2>&1; echo rc=$?",
    )
    assert out.splitlines()[0].strip() == "0"
    assert "rc=1" in out


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        digest.update(f"{path.relative_to(root)}:{info.st_mode}:{info.st_size}".encode())
    return digest.hexdigest()


def test_writes_are_private_to_one_container(rootless_client) -> None:
    image = rootless_client.images.get("busybox")
    layer_dirs = rootless_client.engine.images.layer_dirs(image.record)
    before = [_tree_digest(Path(d)) for d in layer_dirs]
    writer = rootless_client.containers.run(
        "busybox", ["sh", "-c", "echo mine > /etc/written && rm /bin/ls"], detach=True
    )
    assert writer.wait()["StatusCode"] == 0
    out = run_output(rootless_client, "sh", "-c", "test -e /etc/written && echo seen || echo unseen; "
                     "test -e /bin/ls && echo ls-present")
    assert out.split() == ["unseen", "ls-present"]
    assert [_tree_digest(Path(d)) for d in layer_dirs] == before
    writer.remove()


def test_volumes_read_only_volume_and_read_only_root(rootless_client, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("from host\n")
    out = run_output(
        rootless_client, "sh", "-c",
        "cat /data/in.txt; echo back > /data/out.txt; echo x > /ro/x 2>/dev/null || echo ro-refused; "
        "touch /x 2>/dev/null || echo root-ro; touch /scratch/y && echo tmp-ok",
        volumes=[f"{tmp_path}:/data", f"{tmp_path}:/ro:ro"], read_only=True, tmpfs=["/scratch"],
    )
    assert out.splitlines() == ["from host", "ro-refused", "root-ro", "tmp-ok"]
    assert (tmp_path / "out.txt").read_text() == "back\n"
    assert (tmp_path / "out.txt").stat().st_uid == os.getuid()


def test_read_only_volume_keeps_the_hosts_locked_mount_flags(rootless_client) -> None:
    # XDG_RUNTIME_DIR is a nosuid,nodev tmpfs (systemd's /run/user/UID; run.sh makes one): in a
    # user namespace those flags are locked, and a read-only remount that dropped them would
    # fail with EPERM.
    runtime_dir = Path(os.environ.get("XDG_RUNTIME_DIR") or "/nonexistent")
    need(runtime_dir.is_dir() and os.access(runtime_dir, os.W_OK), "a writable XDG_RUNTIME_DIR")
    flags = os.statvfs(runtime_dir).f_flag
    need(bool(flags & (os.ST_NOSUID | os.ST_NODEV)), "XDG_RUNTIME_DIR on a nosuid,nodev mount")
    source = runtime_dir / f"nbdock-locked-{os.getpid()}"
    source.mkdir()
    try:
        (source / "f").write_text("shared\n")
        out = run_output(
            rootless_client, "sh", "-c",
            "cat /ro/f; touch /ro/g 2>/dev/null || echo ro-refused; grep ' /ro ' /proc/mounts",
            volumes=[f"{source}:/ro:ro"],
        )
        lines = out.splitlines()
        assert lines[:2] == ["shared", "ro-refused"]
        options = lines[2].split()[3].split(",")
        assert "ro" in options
        assert {"nosuid", "nodev"} & set(options)
    finally:
        for child in source.iterdir():
            child.unlink()
        source.rmdir()


@pytest.mark.parametrize(("command", "code"), [(["nosuchcommand"], 127), (["/etc/passwd"], 126)])
def test_exit_codes_follow_docker(rootless_client, command: list[str], code: int) -> None:
    with pytest.raises(ContainerError) as info:
        rootless_client.containers.run("busybox", command, remove=True)
    assert info.value.exit_status == code
