"""``%%container_run``: the cell body as a script in the container, and values in and out.

A private host directory is bind-mounted at ``/run/nbdock-cell`` and carries everything:

- ``--lang python``: ``cell.py`` and a small runner, ``run.py``. ``--in`` values travel as one
  pickle (``in.pickle``) that the runner loads into the script's globals. After the script, the
  runner writes each ``--out`` name as ``out/NAME.json`` when the value is JSON-able, else as
  ``out/NAME.pickle`` — but only with ``--pickle-out``: unpickling runs code of the container's
  choosing in the kernel, which would undo the isolation, so it must be asked for.
- ``--lang sh``: ``cell.sh`` runs under ``/bin/sh``. Each ``--in`` value is an environment
  variable (strings as they are, anything else as JSON) and also a file ``$NBDOCK_IN/NAME`` (for
  values too big for the environment). The script returns ``--out NAME`` by writing the file
  ``$NBDOCK_OUT/NAME``; it comes back as a string (one trailing newline dropped).

The directory is mounted read-only with only ``out/`` writable, and files there are read without
following symlinks, so a script cannot point the kernel at another host file.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError

MOUNT = "/run/nbdock-cell"
_ENV_LIMIT = 32 * 1024  # bigger --in values for sh are passed as files only

RUNNER = '''\
"""nbdock's runner for a %%container_run cell: load --in values, run the cell, save --out values."""
import json, os, pickle, sys, traceback

IO = os.path.dirname(os.path.abspath(__file__))


def main():
    with open(os.path.join(IO, "config.json")) as handle:
        config = json.load(handle)
    scope = {"__name__": "__main__", "__builtins__": __builtins__}
    if config["inputs"]:
        with open(os.path.join(IO, "in.pickle"), "rb") as handle:
            scope.update(pickle.load(handle))
    path = os.path.join(IO, "cell.py")
    with open(path) as handle:
        code = compile(handle.read(), path, "exec")
    sys.argv = [path] + sys.argv[1:]
    try:
        exec(code, scope)
    except SystemExit:
        raise
    except BaseException as error:
        traceback.print_exception(type(error), error, error.__traceback__.tb_next)
        sys.exit(1)
    for name in config["outputs"]:
        if name not in scope:
            continue
        value = scope[name]
        try:
            data, kind = json.dumps(value).encode(), "json"
        except (TypeError, ValueError):
            if not config["pickle_out"]:
                data, kind = type(value).__name__.encode(), "unpicklable"
            else:
                data, kind = pickle.dumps(value, protocol=4), "pickle"
        with open(os.path.join(IO, "out", name + "." + kind), "wb") as handle:
            handle.write(data)


main()
'''


def check_names(names: list[str], option: str) -> list[str]:
    for name in names:
        if not name.isidentifier():
            raise UsageError(f"{option} {name!r}: not a valid variable name")
    return names


@dataclass(eq=False)  # each run is its own: compared by identity
class CellScript:
    """One cell run: where its files live on the host and how the container starts it."""

    lang: str
    body: str
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    pickle_out: bool = False
    host_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        if self.lang not in ("python", "sh"):
            raise UsageError(f"--lang {self.lang!r}: use python or sh")
        self.host_dir = Path(tempfile.mkdtemp(prefix="nbdock-cell-"))

    # ------------------------------------------------------------------ before the run
    def prepare(self, args: list[str]) -> tuple[list[str], list[str], list[str]]:
        """Write the files; return (command, environment, volumes) for the container.

        The directory is mounted read-only and only ``out/`` writable, so the script cannot swap
        ``out`` for a symlink that would send the kernel reading elsewhere on the host.
        """
        self.host_dir.chmod(0o755)  # readable by any --user inside
        out = self.host_dir / "out"
        out.mkdir()
        out.chmod(0o777)  # writable by any --user inside: only this run's results land here
        env = [f"NBDOCK_OUT={MOUNT}/out"]
        if self.lang == "python":
            self._write("cell.py", self.body)
            self._write("run.py", RUNNER)
            config = {"inputs": sorted(self.inputs), "outputs": self.outputs,
                      "pickle_out": self.pickle_out}
            self._write("config.json", json.dumps(config))
            if self.inputs:
                try:
                    self._write("in.pickle", pickle.dumps(self.inputs, protocol=4))
                except (pickle.PicklingError, TypeError, AttributeError) as error:
                    raise UsageError(f"--in: a value cannot be pickled: {error}") from None
            command = ["python3", f"{MOUNT}/run.py", *args]
        else:
            self._write("cell.sh", self.body)
            (self.host_dir / "in").mkdir(mode=0o755)
            env.append(f"NBDOCK_IN={MOUNT}/in")
            for name, value in self.inputs.items():
                text = value if isinstance(value, str) else self._json(name, value)
                if "\0" in text:
                    raise UsageError(f"--in {name}: a NUL character cannot pass to a shell")
                self._write(f"in/{name}", text)
                if len(text) <= _ENV_LIMIT:
                    env.append(f"{name}={text}")
            command = ["/bin/sh", f"{MOUNT}/cell.sh", *args]
        return command, env, [f"{self.host_dir}:{MOUNT}:ro", f"{out}:{MOUNT}/out"]

    @staticmethod
    def _json(name: str, value: Any) -> str:
        try:
            return json.dumps(value)
        except (TypeError, ValueError):
            raise UsageError(
                f"--in {name}: a {type(value).__name__} is not JSON-able; sh gets strings and JSON "
                "(use --lang python to pass any picklable value)"
            ) from None

    def _write(self, name: str, content: str | bytes) -> None:
        path = self.host_dir / name
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
        path.chmod(0o644)

    # ------------------------------------------------------------------ after the run
    def collect(self) -> tuple[dict[str, Any], list[str]]:
        """The ``--out`` values the script left, and a line for each it did not."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        out = self.host_dir / "out"
        for name in self.outputs:
            if self.lang == "sh":
                data = _read_regular(out / name)
                if data is None:
                    problems.append(f"--out {name}: the script did not write $NBDOCK_OUT/{name}")
                else:
                    values[name] = data.decode(errors="replace").removesuffix("\n")
                continue
            found = _read_regular(out / f"{name}.json")
            if found is not None:
                values[name] = json.loads(found)
            elif (pickled := _read_regular(out / f"{name}.pickle")) is not None:
                values[name] = pickle.loads(pickled)  # only written when --pickle-out was given
            elif (kind := _read_regular(out / f"{name}.unpicklable")) is not None:
                problems.append(
                    f"--out {name}: a {kind.decode(errors='replace')} is not JSON-able; add "
                    "--pickle-out to accept a pickle (only for code you trust: unpickling runs "
                    "code the container chose)"
                )
            else:
                problems.append(f"--out {name}: the cell did not define {name!r}")
        return values, problems

    def cleanup(self) -> None:
        shutil.rmtree(self.host_dir, ignore_errors=True)


def _read_regular(path: Path) -> bytes | None:
    """A regular file's bytes, refusing symlinks the container may have planted."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)

