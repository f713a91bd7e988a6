"""Where nbdock's start time goes: a timeline across the caller, the supervisor and the init.

Why not cProfile: a container start spans the caller, the fork server (whose supervision
thread is the supervisor; a forked supervisor for the CLI and pre-warmed containers) and the
container's init, a C program; the caller's profile shows only "waiting in read()". Two sources:
- named nbdock functions wrapped in this bench process (nothing in nbdock/ is edited), which
  append ``who label start end`` lines in CLOCK_MONOTONIC nanoseconds to a trace file. They
  reach a supervisor only when it is a fork of this process (``NBDOCK_FORKSERVER=never``).
- the runtime's own marks (``nbdock/runtime/trace.py``, turned on with ``$NBDOCK_TRACE``), which
  every part of a start writes whichever way it was launched: F fork server, S supervisor
  (thread, pre-warmed or forked), I init (nbdock-init writes the same format through an fd it opens
  before pivot_root). Points in time; "takes" is the time to the next mark.
Functions that a refactoring renamed are listed as missing, never a crash.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# (module, attribute path, label, who): P = caller, S = supervisor, I = container init. A name
# is patched where it is looked up: ``launch`` in runtime.py, which imports it by name.
TARGETS: tuple[tuple[str, str, str, str], ...] = (
    ("nbdock.client.containers", "ContainerCollection.create", "client containers.create", "P"),
    ("nbdock.image.store", "ImageStore.get", "image store get", "P"),
    ("nbdock.engine", "_random_name", "engine pick a name", "P"),
    ("nbdock.runtime.runtime", "Runtime.create", "runtime create (dirs, spec)", "P"),
    ("nbdock.runtime.runtime", "Runtime.start", "runtime start", "P"),
    ("nbdock.runtime.init", "seccomp_filter_for", "seccomp filter (cached)", "P"),
    ("nbdock.runtime.runtime", "launch", "fork supervisor (double fork)", "P"),
    ("nbdock.runtime.attachment", "Attachment.wait_started", "wait for 'started'", "P"),
    ("nbdock.runtime.runtime", "Runtime.remove", "remove (--rm)", "P"),
    ("nbdock.runtime.supervisor", "detach_from_caller", "detach from caller", "S"),
    ("nbdock.runtime.supervisor", "Recorder.__call__", "write state.json", "S"),
    ("nbdock.runtime.supervisor", "join_cgroup", "cgroup create + join", "S"),
    ("nbdock.runtime.linux.cgroups.v1", "V1Cgroup.add_process", "cgroup attach (v1)", "S"),
    ("nbdock.runtime.linux.cgroups.v2", "V2Cgroup.add_process", "cgroup attach (v2)", "S"),
    ("nbdock.runtime.init_process", "InitProcess.failure", "wait until init exec'd", "S"),
    ("nbdock.runtime.supervisor", "_pump", "copy output until EOF", "S"),
    ("nbdock.runtime.linux.cgroups.v1", "V1Cgroup.oom_killed", "OOM check (v1)", "S"),
    ("nbdock.runtime.linux.cgroups.v2", "V2Cgroup.oom_killed", "OOM check (v2)", "S"),
    ("nbdock.runtime.linux.cgroups.v1", "V1Cgroup.destroy", "cgroup destroy (v1)", "S/P"),
    ("nbdock.runtime.linux.cgroups.v2", "V2Cgroup.destroy", "cgroup destroy (v2)", "S/P"),
    ("nbdock.runtime.linux.cgroups.detect", "detect_layout", "cgroup layout (mountinfo)", "S/P"),
)


class Tracer:
    """Wraps TARGETS while active; ``events`` reads back what every process wrote."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.missing: list[str] = []
        self._restore: list[tuple[Any, str, Any]] = []

    # -------------------------------------------------------------- writing (in every process)
    def emit(self, who: str, label: str, start: int, end: int) -> None:
        line = f"{who}\t{label}\t{start}\t{end}\n".encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def mark(self, label: str, who: str = "P") -> None:
        now = time.perf_counter_ns()
        self.emit(who, label, now, now)

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._restore.append((owner, name, owner.__dict__[name] if isinstance(owner, type)
                              else getattr(owner, name)))
        setattr(owner, name, replacement)

    def _wrap(self, owner: Any, name: str, label: str, who: str) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter_ns()
            try:
                return original(*args, **kwargs)
            finally:
                self.emit(who, label, start, time.perf_counter_ns())

        self._patch(owner, name, timed)

    def install(self) -> None:
        self.path.write_bytes(b"")
        for module_name, attribute, label, who in TARGETS:
            try:
                owner: Any = importlib.import_module(module_name)
                *parents, name = attribute.split(".")
                for parent in parents:
                    owner = getattr(owner, parent)
                getattr(owner, name)
            except (ImportError, AttributeError):
                self.missing.append(f"{module_name}.{attribute}")
                continue
            self._wrap(owner, name, label, who)
        self._wrap_init_and_exec()

    def _wrap_init_and_exec(self) -> None:
        """The init is a C program (its own marks, "I …", go to the .marks file); the PID
        namespace is the supervisor's one unshare left in Python."""
        from nbdock.runtime.linux import libc

        original_unshare = libc.unshare

        def unshare(flags: int) -> Any:
            start = time.perf_counter_ns()
            try:
                return original_unshare(flags)
            finally:
                self.emit("S", f"unshare({flags:#x})", start, time.perf_counter_ns())

        self._patch(libc, "unshare", unshare)

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._restore):
            setattr(owner, name, original)
        self._restore.clear()

    # -------------------------------------------------------------- reading (in the bench)
    def events(self) -> list[tuple[str, str, int, int]]:
        rows = []
        for line in self.path.read_text().splitlines():
            who, label, start, end = line.split("\t")
            rows.append((who, label, int(start), int(end)))
        marks = self.path.with_suffix(".marks")
        for line in marks.read_text().splitlines() if marks.exists() else ():
            _pid, stamp, text = line.split(" ", 2)  # "F request", "S exec seen", "I exec", ...
            who, _sep, label = text.partition(" ")
            rows.append((who, f"· {label}", int(stamp), -1))
        return sorted(rows, key=lambda row: row[2])


@contextlib.contextmanager
def tracing(path: Path) -> Iterator[Tracer]:
    tracer = Tracer(path)
    tracer.install()
    marks = path.with_suffix(".marks")
    marks.write_bytes(b"")
    os.environ["NBDOCK_TRACE"] = str(marks)  # the fork server takes it with the next request
    try:
        yield tracer
    finally:
        del os.environ["NBDOCK_TRACE"]
        tracer.uninstall()


def timeline(run_once: Callable[[], None], runs: int, gap: float, trace: Path) -> dict[str, Any]:
    """Median start offset and duration of every phase over ``runs`` traced starts."""
    untraced = []
    for _ in range(runs):  # the same starts without wrappers: what tracing itself costs
        if gap:
            time.sleep(gap)
        begin = time.perf_counter_ns()
        run_once()
        untraced.append((time.perf_counter_ns() - begin) / 1e6)
    with tracing(trace) as tracer:
        totals = []
        for _ in range(runs):
            if gap:
                time.sleep(gap)
            tracer.mark("RUN")
            begin = time.perf_counter_ns()
            run_once()
            totals.append((time.perf_counter_ns() - begin) / 1e6)
        events = tracer.events()
        missing = list(tracer.missing)
    phases: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    base, seen = 0, defaultdict(int)
    for who, label, start, end in events:
        if label == "RUN":
            base, seen = start, defaultdict(int)
            continue
        seen[who, label] += 1  # the 2nd write of state.json is a different phase from the 1st
        key = (who, label if seen[who, label] == 1 else f"{label} #{seen[who, label]}")
        phases[key].append(((start - base) / 1e6, (end - start) / 1e6 if end >= 0 else -1.0))
    rows = sorted(
        ({"who": who, "phase": label, "start_ms": statistics.median(s for s, _ in values),
          "duration_ms": statistics.median(d for _, d in values), "seen_in_runs": len(values)}
         for (who, label), values in phases.items()),
        key=lambda row: row["start_ms"],
    )
    marks = [row for row in rows if row["duration_ms"] < 0]
    for row, following in zip(marks, [*marks[1:], None], strict=True):  # a mark lasts until the next
        row["duration_ms"] = following["start_ms"] - row["start_ms"] if following else 0.0
    return {"runs": runs, "median_total_ms": statistics.median(totals),
            "median_untraced_ms": statistics.median(untraced), "phases": rows,
            "not_traced": missing}


# The CLI's own stages, measured inside a fresh interpreter doing what ``main.entry`` does; the
# bench adds the outer wall time. With NBDOCK_BENCH_HARD_EXIT it leaves through os._exit (as
# entry does): the difference is the finalization.
CLI_STAGES = r"""
import gc, os, sys, time
t0 = time.perf_counter()
import nbdock.cli.main as main
gc.disable()
os.environ.setdefault("NBDOCK_FORKSERVER", "never")
t1 = time.perf_counter()
args = main.parse_args(sys.argv[1:])
t2 = time.perf_counter()
handler = main.handler_for(args)
main.imports_done()
t3 = time.perf_counter()
code = main.call(handler, args)
t4 = time.perf_counter()
print(f"{(t1-t0+t3-t2)*1e3} {(t2-t1)*1e3} {(t4-t3)*1e3} {code}", file=sys.stderr, flush=True)
if os.environ.get("NBDOCK_BENCH_HARD_EXIT"):
    os._exit(code)
"""


def _cli_once(argv: list[str], env: dict[str, str]) -> tuple[float, list[float]]:
    import subprocess

    begin = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    total = (time.perf_counter() - begin) * 1e3
    try:
        *stages, code = done.stderr.strip().splitlines()[-1].split()
    except (IndexError, ValueError):
        raise RuntimeError(f"CLI stages failed: {done.stderr.strip()[-500:]}") from None
    if code != "0":
        raise RuntimeError(f"CLI run exited {code}: {done.stderr.strip()[-500:]}")
    return total, [float(value) for value in stages]


def cli_stages(python: str, image: str, env: dict[str, str], runs: int) -> dict[str, float]:
    """Median ms of the CLI's stages: interpreter start, imports, parsing, run, finalization."""
    argv = [python, "-c", CLI_STAGES, "run", "--rm", image, "/bin/true"]
    hard_env = {**env, "NBDOCK_BENCH_HARD_EXIT": "1"}
    normal, hard, inner = [], [], defaultdict(list)
    for _ in range(runs):
        total, _stages = _cli_once(argv, env)
        normal.append(total)
        total, stages = _cli_once(argv, hard_env)
        hard.append(total)
        for key, value in zip(("imports", "argument parsing", "engine + container run"),
                              stages, strict=True):
            inner[key].append(value)
    stage = {key: statistics.median(values) for key, values in inner.items()}
    start = statistics.median(hard) - sum(stage.values())
    return {"total": statistics.median(normal), "interpreter start (+ spawn)": start, **stage,
            "interpreter finalization": statistics.median(normal) - statistics.median(hard)}


def render(data: dict[str, Any], image: str) -> str:
    """The --phases report as text."""
    from _common import format_table

    api = data["api"]
    lines = [
        f"nbdock API, {api['runs']} runs: median {api['median_untraced_ms']:.1f} ms untraced, "
        f"{api['median_total_ms']:.1f} ms traced (each traced phase adds ~0.1 ms); "
        "P caller, F fork server, S supervisor, I container init; '·' marks a runtime trace point",
        format_table(["who", "phase", "starts at ms", "takes ms", "runs"], [
            [r["who"], r["phase"], f"{r['start_ms']:.2f}", f"{r['duration_ms']:.2f}",
             str(r["seen_in_runs"])] for r in api["phases"]], left=2),
    ]
    if api["not_traced"]:
        lines.append("  not traced (renamed or gone): " + ", ".join(api["not_traced"]))
    lines += ["", f"nbdock run --rm {image} /bin/true, stages (medians):",
              format_table(["stage", "ms"], [[k, f"{v:.1f}"] for k, v in data["cli"].items()])]
    lines += [f"  LEFT BEHIND by nbdock: {item}" for item in data.get("leftovers", [])]
    return "\n".join(lines)
