"""Small value types shared by several layers. Imports nothing of nbdock."""

from __future__ import annotations

from typing import Literal

NetworkMode = Literal["none", "host"]
ContainerStatus = Literal["created", "running", "exited", "removing"]
