"""``nbdock history IMAGE``: the image's history entries matched with the layers they made.

The image config lists one history entry per instruction, oldest first; entries with
``empty_layer`` made no layer (ENV, CMD, …), every other one made the next layer in
``rootfs.diff_ids``. Rows come newest first, as ``docker history`` shows them, with the image id
on the top row only (intermediate images do not exist as images in the store, BuildKit-style).
"""

from __future__ import annotations

from dataclasses import dataclass

from nbdock.image.records import ImageRecord


@dataclass(frozen=True)
class HistoryRow:
    image: str  # the image id on the newest row, "<missing>" below it (as Docker shows)
    created: str
    created_by: str
    size: int
    layer: str | None  # diff_id of the layer this entry made, if any
    comment: str
    empty_layer: bool


def history(image: ImageRecord) -> list[HistoryRow]:
    entries = list(image.config.get("history") or [])
    layers = list(image.layers)
    rows: list[HistoryRow] = []
    position = 0
    for entry in entries:
        empty = bool(entry.get("empty_layer"))
        layer = None
        size = 0
        if not empty and position < len(layers):
            layer = layers[position].diff_id
            size = layers[position].size
            position += 1
        rows.append(HistoryRow("<missing>", str(entry.get("created", "")),
                               str(entry.get("created_by", "")), size, layer,
                               str(entry.get("comment", "")), empty))
    rows.reverse()
    if rows:
        top = rows[0]
        rows[0] = HistoryRow(image.id, top.created, top.created_by, top.size, top.layer,
                             top.comment, top.empty_layer)
    return rows
