"""Generated container names: one that another container holds is drawn again."""

from __future__ import annotations

import pytest

import nbdock.engine
from nbdock.errors import Conflict


def test_a_taken_generated_name_is_drawn_again(client, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    taken = client.containers.create("busybox", ["true"], name="names-test-taken")
    try:
        draws = iter(["names-test-taken", "names-test-taken", "names-test-free"])
        monkeypatch.setattr(nbdock.engine, "_random_name", lambda: next(draws))
        drawn = client.containers.create("busybox", ["true"])
        try:
            assert drawn.name == "names-test-free"
            with pytest.raises(Conflict):  # a name the user chose is never replaced
                client.containers.create("busybox", ["true"], name="names-test-taken")
        finally:
            drawn.remove(force=True)
    finally:
        taken.remove(force=True)
