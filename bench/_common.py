"""Helpers shared by the bench scripts: statistics, tables, and finding the peer engines.

Why a separate module: the scripts stay readable as "what is timed, and how", and the numbers
are computed one way everywhere (nearest-rank percentiles on wall-clock milliseconds), so figures
from different scripts and runs can be compared.
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PEERS_DIR = REPO_ROOT.parent / "shared" / "peers"

# What the peers' common.sh sets; read by sourcing it, so its own defaults and any
# overrides in the environment (PEERS_WORK, PEERS_RUN, ...) are honoured.
_PEER_VARIABLES = ("W", "S", "R", "DOCKER", "DOCKER_HOST", "CONTAINERS_STORAGE_CONF",
                   "CONTAINERS_CONF")


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: always a value that was measured, never an interpolation."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Summary:
    """One engine's samples, in milliseconds."""

    median: float
    p90: float
    mean: float
    minimum: float
    maximum: float
    stdev: float
    count: int

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Summary:
        return cls(
            median=statistics.median(samples_ms),
            p90=percentile(samples_ms, 90),
            mean=statistics.fmean(samples_ms),
            minimum=min(samples_ms),
            maximum=max(samples_ms),
            stdev=statistics.stdev(samples_ms) if len(samples_ms) > 1 else 0.0,
            count=len(samples_ms),
        )

    def as_dict(self) -> dict[str, float]:
        """The JSON fields, rounded to 10 µs (finer digits are noise at these sizes)."""
        return {"median_ms": round(self.median, 2), "p90_ms": round(self.p90, 2),
                "mean_ms": round(self.mean, 2), "min_ms": round(self.minimum, 2),
                "max_ms": round(self.maximum, 2), "stdev_ms": round(self.stdev, 2),
                "runs": self.count}


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """A plain aligned text table: the first ``left`` columns left-aligned, the rest right."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(cell).ljust(width) if i < left else str(cell).rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def render_comparison(data: dict[str, Any]) -> str:
    """bench/start_latency's result (its JSON document) as the text table it prints."""

    def ratio(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}x"

    rows = [[r["label"], f"{r['median_ms']:.1f}", f"{r['p90_ms']:.1f}", f"{r['min_ms']:.1f}",
             ratio(r["vs_crun"]), ratio(r["vs_api"]),
             str(r["runs"]) + (f" ({r['failures']} failed)" if r["failures"] else "")]
            for r in data["results"]]
    gap = f", {data['gap_s']} s idle before each start" if data["gap_s"] else ""
    gap += f", {data['ballast_mib']} MiB ballast in the caller" if data["ballast_mib"] else ""
    lines = [
        f"start -> exit of /bin/true, {data['runs']} runs each after {data['warmup']} warm-up, "
        f"{data['order']}{gap}; {data['host']['cpus']} CPUs, kernel {data['host']['kernel']}",
        format_table(["engine", "median ms", "p90 ms", "min ms", "vs crun", "vs API", "runs"],
                     rows),
    ]
    lines += [f"  {r['key']:<7} {r['command']}" for r in data["results"]]
    lines += [f"  skipped {key}: {why}" for key, why in data["skipped"].items()]
    lines += [f"  LEFT BEHIND by nbdock: {item}" for item in data["leftovers"]]
    verdict = {True: "met", False: "NOT met", None: "not measured"}
    targets = data["targets"]
    lines.append(f"target API <= crun: {verdict[targets['api_le_crun']]}; "
                 f"target nbdock run --rm < 100 ms: {verdict[targets['cli_lt_100ms']]}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Peers:
    """Where the peer engines' scripts put their state, read from their common.sh."""

    directory: Path
    work: Path  # /var/tmp/peers: bundles, rootfs
    run: Path  # /run/peers: sockets, pid files, generated configs
    docker: str  # the docker CLI they use (Debian's 20.10)
    env: dict[str, str]  # DOCKER_HOST, CONTAINERS_STORAGE_CONF, CONTAINERS_CONF

    def dockerd_running(self) -> bool:
        pid_file = self.run / "dockerd.launch.pid"
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return False
        return True


def load_peers(directory: Path | None) -> tuple[Peers | None, str]:
    """The peers' settings, or None and why not (missing scripts are a normal case)."""
    peers_dir = directory or Path(os.environ.get("PEERS_DIR") or DEFAULT_PEERS_DIR)
    common = peers_dir / "common.sh"
    if not common.is_file():
        return None, f"no peer scripts at {peers_dir} (run bench/peers-setup; set PEERS_DIR)"
    bash = shutil.which("bash")
    if bash is None:
        return None, "bash not found"
    script = '. "$1" >/dev/null 2>&1; for v in "${@:2}"; do printf "%s=%s\\0" "$v" "${!v}"; done'
    result = subprocess.run(
        [bash, "-c", script, "peers", str(common), *_PEER_VARIABLES],
        capture_output=True, check=False, timeout=30,
    )
    if result.returncode != 0:
        return None, f"sourcing {common} failed: {result.stderr.decode(errors='replace')}"
    values = dict(
        item.split("=", 1) for item in result.stdout.decode().split("\0") if "=" in item
    )
    env = {key: values[key] for key in ("DOCKER_HOST", "CONTAINERS_STORAGE_CONF",
                                         "CONTAINERS_CONF") if values.get(key)}
    return Peers(
        directory=peers_dir,
        work=Path(values.get("W") or "/var/tmp/peers"),
        run=Path(values.get("R") or "/run/peers"),
        docker=values.get("DOCKER") or "/usr/bin/docker",
        env=env,
    ), ""


def ensure_floor_rootfs(directory: Path) -> Path | None:
    """A minimal busybox rootfs for the ``unshare … chroot`` floor (from Debian's busybox-static).

    Built once under the bench root, so the floor never depends on the peers or on nbdock's store.
    """
    busybox = shutil.which("busybox")
    if busybox is None:
        return None
    rootfs = directory / "floor-rootfs"
    target = rootfs / "bin" / "true"
    if target.exists():
        return rootfs
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    for sub in ("proc", "dev", "tmp"):
        (rootfs / sub).mkdir(exist_ok=True)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    os.symlink("busybox", target)
    return rootfs
