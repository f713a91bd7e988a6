"""``%containers`` and ``%images``: ``docker ps`` and ``docker images`` as HTML tables.

The HTML shows what changes (``Up 3 minutes``, ``2 hours ago``, coloured state); the ``text/plain``
keeps to what is stable for a given notebook run (ids, names, images, commands, ``exited (0)``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from nbdock.client import Container, Image
from nbdock.notebook._display import (
    esc,
    html_table,
    human_duration,
    human_size,
    parse_time,
    state_badge,
    state_text,
    text_table,
)

CONTAINER_HEADERS = ("CONTAINER ID", "IMAGE", "COMMAND", "STATUS", "NAMES")
IMAGE_HEADERS = ("REPOSITORY", "TAG", "IMAGE ID", "SIZE")


def _command(container: Container) -> str:
    words = [container.attrs.get("Path", ""), *container.attrs.get("Args", [])]
    text = " ".join(w for w in words if w)
    return text if len(text) <= 30 else text[:29] + "…"


def _ago(iso: str) -> str:
    stamp = parse_time(iso)
    return "" if stamp is None else f"{human_duration(max(0.0, time.time() - stamp))} ago"


def _status_html(container: Container) -> str:
    state = container.attrs["State"]
    code = state.get("ExitCode") if state["Status"] == "exited" else None
    detail = ""
    if state["Status"] == "running":
        started = parse_time(state.get("StartedAt", ""))
        if started is not None:
            detail = f"Up {human_duration(max(0.0, time.time() - started))}"
    elif state["Status"] == "exited":
        detail = _ago(state.get("FinishedAt", ""))
    return f"{state_badge(state['Status'], code)} {esc(detail)}"


def matches(container: Container, filters: Sequence[str]) -> bool:
    """``docker ps --filter``: name= (substring), status=, ancestor=, label=KEY[=VALUE], id=."""
    for item in filters:
        key, _, value = item.partition("=")
        if key == "name" and value not in container.name:
            return False
        if key == "status" and container.status != value:
            return False
        if key == "ancestor" and container.image not in (value, value.partition(":")[0]):
            return False
        if key == "id" and not container.id.startswith(value):
            return False
        if key == "label":
            label, has_value, wanted = value.partition("=")
            labels = container.labels
            if label not in labels or (has_value and labels[label] != wanted):
                return False
    return True


def containers_table(containers: Iterable[Container]) -> tuple[str, str]:
    """(html, text) for ``%containers``."""
    chosen = list(containers)
    text_rows = [
        [c.short_id, c.image, _command(c), state_text(c.attrs["State"]), c.name] for c in chosen
    ]
    html_rows = [
        [f"<code>{esc(c.short_id)}</code>", esc(c.image), f"<code>{esc(_command(c))}</code>",
         _status_html(c), f"<b>{esc(c.name)}</b>"]
        for c in chosen
    ]
    if not chosen:
        return '<div class="nbdock-containers">no containers</div>', "no containers"
    return (html_table(CONTAINER_HEADERS, html_rows, "nbdock-containers"),
            text_table(CONTAINER_HEADERS, text_rows))


def _repo_tag(tag: str) -> tuple[str, str]:
    repo, sep, name = tag.rpartition(":")
    if not sep or "/" in name:
        return tag, "latest"
    return repo, name


def image_rows(images: Iterable[Image], repository: str | None = None) -> list[tuple[str, str, Image]]:
    rows = []
    for image in images:
        for tag in image.tags or ["<none>:<none>"]:
            repo, name = _repo_tag(tag)
            if repository and repository not in (repo, tag):
                continue
            rows.append((repo, name, image))
    rows.sort(key=lambda row: (row[0], row[1]))
    return rows


def images_table(images: Iterable[Image], repository: str | None = None) -> tuple[str, str]:
    """(html, text) for ``%images [REPOSITORY[:TAG]]``."""
    rows = image_rows(images, repository)
    if not rows:
        return '<div class="nbdock-images">no images</div>', "no images"
    text_rows = [[repo, tag, image.short_id, human_size(image.attrs.get("Size"))]
                 for repo, tag, image in rows]
    html_rows = [
        [f"<b>{esc(repo)}</b>", esc(tag), f"<code>{esc(image.short_id)}</code>",
         esc(human_size(image.attrs.get("Size"))), esc(_ago(str(image.attrs.get("Created", ""))))]
        for repo, tag, image in rows
    ]
    return (html_table((*IMAGE_HEADERS, "CREATED"), html_rows, "nbdock-images"),
            text_table(IMAGE_HEADERS, text_rows))
