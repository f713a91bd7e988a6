"""The name index: one O_EXCL file per name, stale owners reclaimed, roots indexed once."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbdock.errors import Conflict, InvalidArgument
from nbdock.runtime.names import NameIndex
from nbdock.runtime.spec import ContainerSpec, Process, validate


def _container(root: Path, container_id: str) -> None:
    (root / container_id).mkdir()
    (root / container_id / "state.json").write_text("{}")


def test_claim_refuses_a_name_a_living_container_holds(tmp_path: Path) -> None:
    index = NameIndex(tmp_path, list)
    _container(tmp_path, "a" * 64)
    index.claim("web", "a" * 64)
    assert index.owner("web") == "a" * 64
    with pytest.raises(Conflict, match='"/web" is already in use by container "a{64}"'):
        index.claim("web", "b" * 64)


def test_a_name_whose_owner_is_gone_is_reclaimed(tmp_path: Path) -> None:
    index = NameIndex(tmp_path, list)
    index.claim("web", "a" * 64)  # no directory for a*64: removed by an --rm supervisor, say
    assert index.owner("web") is None
    _container(tmp_path, "b" * 64)
    index.claim("web", "b" * 64)
    assert index.owner("web") == "b" * 64


def test_release_only_drops_the_owners_entry(tmp_path: Path) -> None:
    index = NameIndex(tmp_path, list)
    _container(tmp_path, "a" * 64)
    index.claim("web", "a" * 64)
    index.release("web", "b" * 64)  # not the owner: a late release of an older container
    assert index.owner("web") == "a" * 64
    index.release("web", "a" * 64)
    assert not (tmp_path / ".names" / "web").exists()


def test_a_root_from_before_the_index_is_indexed_once(tmp_path: Path) -> None:
    _container(tmp_path, "a" * 64)
    calls = []

    def existing() -> list[tuple[str, str]]:
        calls.append(1)
        return [("old", "a" * 64), ("", "c" * 64)]

    index = NameIndex(tmp_path, existing)
    with pytest.raises(Conflict):
        index.claim("old", "b" * 64)
    index.claim("new", "b" * 64)
    assert calls == [1]
    assert sorted(p.name for p in (tmp_path / ".names").iterdir()) == ["new", "old"]


@pytest.mark.parametrize("name", ["../escape", "a", "-x", "with space", "x/y", ".hidden"])
def test_names_outside_dockers_alphabet_are_refused(name: str) -> None:
    spec = ContainerSpec(id="a" * 64, process=Process(args=("true",)), layers=("/l",), name=name)
    with pytest.raises(InvalidArgument, match="invalid container name"):
        validate(spec)


@pytest.mark.parametrize("name", ["web", "my_app.v2-1", "A1"])
def test_dockers_names_are_accepted(name: str) -> None:
    validate(ContainerSpec(id="a" * 64, process=Process(args=("true",)), layers=("/l",), name=name))
