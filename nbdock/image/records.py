"""What the store hands out: image and layer records, and their ``docker image inspect`` shape."""

from __future__ import annotations

from typing import Any, NamedTuple

from nbdock.image._media import RUNTIME_CONFIG_KEYS

# How ``docker image inspect`` shows a runtime-config key the image does not set.
_INSPECT_DEFAULTS: dict[str, Any] = {"WorkingDir": "", "User": "", "StopSignal": ""}


# Records are NamedTuples (immutable, compared by value), not frozen dataclasses: defining a
# frozen dataclass costs ~0.5 ms (its methods are generated through exec), and every
# ``nbdock run`` imports this module.
class LayerRecord(NamedTuple):
    """One layer: ``digest`` names its blob, ``diff_id`` its uncompressed tar, ``size`` the blob.

    The store keeps layers uncompressed, so for its own layers ``digest == diff_id``.
    """

    digest: str
    diff_id: str
    size: int


class ImageRecord(NamedTuple):
    """An image as stored: id (digest of its config), tags, the full OCI config, layers."""

    id: str
    manifest_digest: str
    repo_tags: tuple[str, ...]
    config: dict[str, Any]  # not part of the hash (a dict is not hashable)
    layers: tuple[LayerRecord, ...]
    size: int
    created: str

    def __hash__(self) -> int:
        return hash((self.id, self.manifest_digest, self.repo_tags, self.layers, self.size,
                     self.created))

    @property
    def short_id(self) -> str:
        """The 12 hex characters ``docker images`` shows."""
        return self.id.split(":", 1)[-1][:12]

    @property
    def repo_digests(self) -> tuple[str, ...]:
        """``repo@manifest-digest`` for each tagged repository (as Docker's containerd store)."""
        repos = dict.fromkeys(tag.rsplit(":", 1)[0] for tag in self.repo_tags)
        return tuple(f"{repo}@{self.manifest_digest}" for repo in repos)


def inspect_dict(image: ImageRecord) -> dict[str, Any]:
    """The record shaped like one object of ``docker image inspect``."""
    config = image.config
    runtime = dict(config.get("config") or {})
    shown = {key: runtime.get(key, _INSPECT_DEFAULTS.get(key)) for key in RUNTIME_CONFIG_KEYS}
    shown.update({k: v for k, v in runtime.items() if k not in shown})
    history = list(config.get("history") or [])
    out: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests),
        "Parent": "",
        "Comment": history[-1].get("comment", "") if history else "",
        "Created": image.created,
        "Author": config.get("author", ""),
        "Config": shown,
        "Architecture": config.get("architecture", ""),
        "Os": config.get("os", ""),
        "Size": image.size,
        "RootFS": {"Type": "layers", "Layers": list(config["rootfs"]["diff_ids"])},
        "History": history,
    }
    if config.get("variant"):
        out["Variant"] = config["variant"]
    return out
