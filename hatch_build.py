"""Build hook: compile nbdock's container init (``nbdock/runtime/native/*.c``) into the package.

Runs for wheels and editable installs alike (``pip install -e .``), so every install has the
program next to its Python code. The compiling itself lives in ``nbdock/runtime/native/build.py``
(loaded by path: nbdock's dependencies are not installed in the build environment).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

_BUILD_SCRIPT = os.path.join("nbdock", "runtime", "native", "build.py")


class NativeInitHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        spec = importlib.util.spec_from_file_location(
            "nbdock_native_build", os.path.join(self.root, _BUILD_SCRIPT)
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        binary = module.build()
        # A compiled program inside: the wheel is for this platform, not "any".
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        build_data["artifacts"].append(os.path.relpath(binary, self.root))
