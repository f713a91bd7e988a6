"""Where a stage stands while it is built: its layers, its image config, its build environment.

Two environments are kept apart, as BuildKit keeps them: ``config["Env"]`` is what the image
will carry (the base's ENV plus this Dockerfile's ENV), ``build_env`` is what RUN steps and word
expansion see (the same plus the ARG values declared in this stage, in declaration order, so a
later ``ENV X`` overrides an earlier ``ARG X`` and vice versa).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from nbdock.image.records import LayerRecord

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ("/bin/sh", "-c")
HISTORY_COMMENT = "nbdock build"


@dataclass
class StageState:
    """A stage being built. ``key`` is the cache key of the last step applied."""

    label: str
    key: str
    layers: list[LayerRecord]
    image: dict[str, Any]  # the OCI image config being built (without rootfs)
    build_env: dict[str, str]
    stage_args: list[tuple[str, str | None]] = field(default_factory=list)
    cmd_set: bool = False
    created: str = "1970-01-01T00:00:00Z"

    @classmethod
    def from_image(cls, label: str, key: str, layers: list[LayerRecord],
                   config: dict[str, Any] | None, created: str) -> StageState:
        """Start from a base image's config (None: ``scratch``), as BuildKit does: the base's
        runtime config and history are inherited, its ONBUILD triggers are not."""
        image: dict[str, Any] = {}
        if config is not None:
            for key_name in ("architecture", "os", "variant", "os.version", "os.features"):
                if key_name in config:
                    image[key_name] = copy.deepcopy(config[key_name])
            image["config"] = copy.deepcopy(config.get("config") or {})
            image["history"] = copy.deepcopy(config.get("history") or [])
            if config.get("author"):
                image["author"] = config["author"]
        else:
            image["config"] = {"Env": [f"PATH={DEFAULT_PATH}"]}
            image["history"] = []
        runtime = image["config"]
        runtime.pop("OnBuild", None)
        if not runtime.get("Env"):
            runtime["Env"] = [f"PATH={DEFAULT_PATH}"]
        state = cls(label=label, key=key, layers=list(layers), image=image, build_env={},
                    created=created)
        state.build_env = state.env()
        return state

    def clone(self, label: str) -> StageState:
        """A stage starting ``FROM`` this one (its ARGs are not inherited; the rest is)."""
        other = copy.deepcopy(self)
        other.label = label
        other.stage_args = []
        other.cmd_set = False
        other.image["config"].pop("OnBuild", None)
        other.build_env = other.env()
        return other

    # -- the runtime config --------------------------------------------------------------------

    @property
    def runtime(self) -> dict[str, Any]:
        config: dict[str, Any] = self.image["config"]
        return config

    def env(self) -> dict[str, str]:
        """The image's Env as a dict (later entries win)."""
        out: dict[str, str] = {}
        for item in self.runtime.get("Env") or []:
            name, _, value = item.partition("=")
            out[name] = value
        return out

    def set_env(self, name: str, value: str) -> None:
        env = list(self.runtime.get("Env") or [])
        for i, item in enumerate(env):
            if item.partition("=")[0] == name:
                env[i] = f"{name}={value}"
                break
        else:
            env.append(f"{name}={value}")
        self.runtime["Env"] = env
        self.build_env.pop(name, None)
        self.build_env[name] = value

    def set_arg(self, name: str, value: str | None) -> None:
        self.stage_args = [(n, v) for n, v in self.stage_args if n != name] + [(name, value)]
        if value is not None:
            self.build_env.pop(name, None)
            self.build_env[name] = value

    @property
    def shell(self) -> list[str]:
        return list(self.runtime.get("Shell") or DEFAULT_SHELL)

    @property
    def workdir(self) -> str:
        return str(self.runtime.get("WorkingDir") or "/")

    @property
    def user(self) -> str:
        return str(self.runtime.get("User") or "")

    def args_in_effect(self) -> dict[str, str]:
        """The stage's declared build args with a value, as RUN sees them (for the cache key)."""
        return {name: self.build_env.get(name, value or "")
                for name, value in self.stage_args if value is not None}

    def history(self, created_by: str, empty_layer: bool) -> None:
        entry: dict[str, Any] = {
            "created": self.created,
            "created_by": created_by,
            "comment": HISTORY_COMMENT,
        }
        if empty_layer:
            entry["empty_layer"] = True
        self.image.setdefault("history", []).append(entry)

    def final_config(self) -> dict[str, Any]:
        """The image config for ``ImageStore.create_image`` (it fills in rootfs)."""
        document = copy.deepcopy(self.image)
        document["created"] = self.created
        runtime = document["config"]
        for key_name in [k for k, v in runtime.items() if v is None]:
            del runtime[key_name]
        return document
