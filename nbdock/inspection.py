"""Docker-shaped JSON views of containers, for ``inspect`` and the docker-py-like client."""

from __future__ import annotations

import json
from typing import Any

from nbdock.runtime.spec import ContainerSpec
from nbdock.runtime.state import State


def container_inspect(current: State, spec: ContainerSpec) -> dict[str, Any]:
    notes = spec.annotations
    running = current.status == "running"
    binds = [
        f"{m.source}:{m.target}{':ro' if m.readonly else ''}" for m in spec.mounts if m.type == "bind"
    ]
    return {
        "Id": current.id,
        "Name": f"/{current.name}",
        "Created": current.created,
        "Path": spec.process.args[0],
        "Args": list(spec.process.args[1:]),
        "State": {
            "Status": current.status,
            "Running": running,
            "Paused": False,
            "Restarting": False,
            "OOMKilled": current.oom_killed,
            "Dead": False,
            "Pid": current.pid if running else 0,
            "ExitCode": current.exit_code or 0,
            "Error": current.error,
            "StartedAt": current.started_at or "0001-01-01T00:00:00Z",
            "FinishedAt": current.finished_at or "0001-01-01T00:00:00Z",
        },
        "Image": notes.get("image.id", ""),
        "Config": {
            "Hostname": spec.effective_hostname,
            "User": spec.process.user,
            "Env": list(spec.process.env),
            "Cmd": json.loads(notes.get("cmd", "null")),
            "Entrypoint": json.loads(notes.get("entrypoint", "null")),
            "WorkingDir": spec.process.cwd,
            "Image": notes.get("image.ref", ""),
            "Labels": json.loads(notes.get("labels", "{}")),
            "StopSignal": str(spec.stop_signal),
        },
        "HostConfig": {
            "Binds": binds,
            "Tmpfs": {m.target: ",".join(m.options) for m in spec.mounts if m.type == "tmpfs"},
            "Memory": spec.limits.memory_bytes or 0,
            "NanoCpus": int((spec.limits.cpus or 0) * 1e9),
            "PidsLimit": spec.limits.pids,
            "NetworkMode": spec.network,
            "ReadonlyRootfs": spec.readonly_rootfs,
            "AutoRemove": current.auto_remove,
            "CapAdd": None,
            "CapDrop": None,
        },
        "Mounts": [
            {
                "Type": m.type,
                "Source": m.source,
                "Destination": m.target,
                "RW": not m.readonly,
            }
            for m in spec.mounts
        ],
    }
