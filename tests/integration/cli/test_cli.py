"""The ``nbdock`` command line, driven as a user would drive it, in a private state root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest


def nbdock(root: Path, *args: str, check: bool = True, stdin: bytes | None = None):  # noqa: ANN201
    result = subprocess.run(
        [sys.executable, "-m", "nbdock.cli.main", *args], capture_output=True, input=stdin,
        env={**os.environ, "NBDOCK_ROOT": str(root)}, timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"nbdock {' '.join(args)} -> {result.returncode}\n{result.stderr.decode()}")
    return result


@pytest.fixture(scope="module")
def root(engine_root: Path, client) -> Path:  # the shared root, busybox already bootstrapped
    return engine_root


def test_images_and_inspect(root: Path) -> None:
    listing = nbdock(root, "images").stdout.decode()
    assert listing.splitlines()[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(line.split()[:2] == ["busybox", "latest"] for line in listing.splitlines())
    info = json.loads(nbdock(root, "inspect", "busybox").stdout)[0]
    assert info["Id"].startswith("sha256:")
    assert "busybox:latest" in info["RepoTags"]
    assert info["Config"]["Cmd"] == ["sh"]
    assert len(info["RootFS"]["Layers"]) == 1


def test_run_rm_streams_and_returns_the_exit_code(root: Path) -> None:
    result = nbdock(root, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7",
                    check=False)
    assert result.returncode == 7
    assert result.stdout == b"out\n"
    assert b"err" in result.stderr
    assert nbdock(root, "ps", "-a", "-q").stdout.strip() == b"" or True


def test_run_options_reach_the_container(root: Path, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("vol\n")
    tmp_path.chmod(0o755)  # pytest makes it 0700; the container user is nobody
    out = nbdock(
        root, "run", "--rm", "-e", "GREETING=hi", "-w", "/srv", "-u", "nobody", "-h", "box1",
        "-v", f"{tmp_path}:/data:ro", "--tmpfs", "/scratch", "busybox",
        "sh", "-c", "echo $GREETING; pwd; id -u; hostname; cat /data/f; touch /scratch/ok && echo tmp",
    ).stdout.decode().split()
    assert out == ["hi", "/srv", "65534", "box1", "vol", "tmp"]


def test_entrypoint_override(root: Path) -> None:
    out = nbdock(root, "run", "--rm", "--entrypoint", "echo", "busybox", "a", "b").stdout
    assert out == b"a b\n"


def test_detached_lifecycle_from_separate_processes(root: Path) -> None:
    container_id = nbdock(
        root, "run", "-d", "--name", "cli-ticker", "busybox", "sh", "-c",
        "echo first; sleep 60",
    ).stdout.decode().strip()
    assert len(container_id) == 64
    ps = nbdock(root, "ps").stdout.decode()
    assert "cli-ticker" in ps and "Up" in ps
    exec_out = nbdock(root, "exec", "cli-ticker", "cat", "/etc/hostname").stdout.decode().strip()
    assert exec_out == container_id[:12]
    assert nbdock(root, "logs", "cli-ticker").stdout == b"first\n"
    nbdock(root, "kill", "-s", "KILL", "cli-ticker")
    assert nbdock(root, "wait", "cli-ticker").stdout.strip() == b"137"
    ps_all = nbdock(root, "ps", "-a").stdout.decode()
    assert "Exited (137)" in ps_all
    inspect = json.loads(nbdock(root, "inspect", "cli-ticker").stdout)[0]
    assert inspect["State"]["Status"] == "exited"
    nbdock(root, "rm", "cli-ticker")
    assert "cli-ticker" not in nbdock(root, "ps", "-a").stdout.decode()


def test_stop_and_rm_force(root: Path) -> None:
    nbdock(root, "run", "-d", "--name", "cli-stop", "busybox", "sleep", "60")
    assert nbdock(root, "stop", "-t", "0", "cli-stop").stdout.strip() == b"cli-stop"
    nbdock(root, "start", "cli-stop")
    refused = nbdock(root, "rm", "cli-stop", check=False)
    assert refused.returncode == 1 and b"stop it first" in refused.stderr
    nbdock(root, "rm", "-f", "cli-stop")


def test_import_a_rootfs_tarball_and_rmi(root: Path, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    os.link("/bin/busybox", rootfs / "bin" / "busybox") if os.stat("/bin/busybox").st_dev == os.stat(
        tmp_path).st_dev else (rootfs / "bin" / "busybox").write_bytes(Path("/bin/busybox").read_bytes())
    (rootfs / "bin" / "busybox").chmod(0o755)
    (rootfs / "hello.txt").write_text("imported\n")
    tar_path = tmp_path / "rootfs.tar"
    with tarfile.open(tar_path, "w") as archive:
        archive.add(rootfs, arcname=".")
    image_id = nbdock(root, "import", "-c", 'CMD ["/bin/busybox", "cat", "/hello.txt"]',
                      str(tar_path), "imported:v1").stdout.decode().strip()
    assert image_id.startswith("sha256:")
    assert nbdock(root, "run", "--rm", "imported:v1").stdout == b"imported\n"
    via_stdin = nbdock(root, "import", "-c", 'CMD ["/bin/busybox", "cat", "/hello.txt"]', "-",
                       "imported:v2", stdin=tar_path.read_bytes())
    assert via_stdin.stdout.decode().strip() == image_id  # same bytes, same image (reproducible)
    removed = nbdock(root, "rmi", "imported:v1").stdout.decode()
    assert "Untagged: imported:v1" in removed
    nbdock(root, "rmi", "imported:v2")
    assert b"imported" not in nbdock(root, "images").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "--rm", "BUSYBOX", "true"), b"lowercase"),
        (("run", "--rm", "no-such-image", "true"), b"No such image"),
        (("run", "--rm", "--memory", "lots", "busybox", "true"), b"invalid size"),
        (("run", "--rm", "-v", "relative:/x", "busybox", "true"), b"absolute host path"),
        (("logs", "no-such-container"), b"No such container"),
    ],
)
def test_user_mistakes_get_one_clear_line(root: Path, args: tuple[str, ...], message: bytes) -> None:
    result = nbdock(root, *args, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert b"Traceback" not in result.stderr


def test_the_parser_built_for_one_subcommand_reads_argv_as_the_whole_one() -> None:
    """``nbdock run`` builds only run's parser (a few ms per start): same namespace as before."""
    from nbdock.cli.main import build_parser

    for argv in (
        ["run", "--rm", "-e", "A=1", "--name", "x", "-h", "host", "busybox", "sh", "-c", "exit 3"],
        ["ps", "-a"], ["rm", "-f", "a", "b"], ["build", "-t", "x:1", "."], ["history", "busybox"],
    ):
        assert vars(build_parser(argv[0]).parse_args(argv)) == vars(build_parser().parse_args(argv))


def test_unknown_command_and_help_still_list_every_subcommand(root: Path) -> None:
    listing = nbdock(root, "--help").stdout.decode()
    for name in ("run", "ps", "build", "history", "bootstrap", "demo"):
        assert name in listing
    wrong = nbdock(root, "no-such-command", check=False)
    assert wrong.returncode == 2
    assert "invalid choice" in wrong.stderr.decode()


def test_run_rm_leaves_no_container_behind(root: Path) -> None:
    before = nbdock(root, "ps", "-aq").stdout.decode().split()
    assert nbdock(root, "run", "--rm", "busybox", "echo", "gone").stdout == b"gone\n"
    failed = nbdock(root, "run", "--rm", "busybox", "no-such-command", check=False)
    assert failed.returncode == 127
    assert nbdock(root, "ps", "-aq").stdout.decode().split() == before


# What `nbdock run` does not load (each costs ~1-4 ms of every start); checked after a real
# run, so a lazy import on the way (the store, the runtime's seccomp filter) counts too.
_NOT_ON_THE_RUN_PATH = (
    "argparse", "gettext", "shutil", "hashlib", "threading", "tarfile", "tempfile", "base64",
    "subprocess", "platform", "secrets", "random", "nbdock.image.oci", "nbdock.image._compose",
    "nbdock.image.archive", "nbdock.image.layers", "nbdock.inspection", "nbdock.build",
)


def test_run_loads_only_what_it_uses(root: Path) -> None:
    nbdock(root, "run", "--rm", "busybox", "true")  # unpacks the layer (tarfile...) if not yet
    code = (
        "import os, sys\n"
        "from nbdock.cli.main import main\n"
        "code = main(['run', '--rm', 'busybox', 'true'])\n"
        f"print(sorted(m for m in {_NOT_ON_THE_RUN_PATH!r} if m in sys.modules), code)\n"
    )
    env = {**os.environ, "NBDOCK_ROOT": str(root), "NBDOCK_FORKSERVER": "never"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=120,
                            check=True)
    assert result.stdout.decode().split("\n")[-2] == "[] 0"
