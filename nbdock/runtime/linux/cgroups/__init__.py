"""Container cgroups: one interface (``Cgroup``), a v1 and a v2 backend, and host detection.

The runtime uses only what is exported here::

    if limits.any() and not cgroups_available():
        raise UnsupportedFeature(...)
    cgroup = open_cgroup(container_id, limits)   # picks V1Cgroup or V2Cgroup for this host
    cgroup.create()
    cgroup.add_process(child_pid)                # before the child unshares CLONE_NEWCGROUP
    ...
    cgroup.destroy()

Every cgroup lives at ``<mount>/<parent>/<container_id>`` (parent ``nbdock``, or
``$NBDOCK_CGROUP_PARENT``), so ``leftover_container_ids()`` finds what a crash left behind.
"""

from __future__ import annotations

from nbdock.runtime.linux.cgroups.base import PARENT_ENV, Cgroup, CgroupStats, parent_name
from nbdock.runtime.linux.cgroups.detect import (
    CgroupLayout,
    cgroups_available,
    detect_layout,
    leftover_container_ids,
    open_cgroup,
    prime_attach,
    remove_parent,
)
from nbdock.runtime.linux.cgroups.v1 import V1Cgroup
from nbdock.runtime.linux.cgroups.v2 import V2Cgroup

__all__ = [
    "PARENT_ENV",
    "Cgroup",
    "CgroupLayout",
    "CgroupStats",
    "V1Cgroup",
    "V2Cgroup",
    "cgroups_available",
    "detect_layout",
    "leftover_container_ids",
    "open_cgroup",
    "parent_name",
    "prime_attach",
    "remove_parent",
]
