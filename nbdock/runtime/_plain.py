"""Small data classes without ``dataclasses``: equality, repr and copies derived from ``__slots__``.

Why not ``@dataclass``: importing ``dataclasses`` (it brings ``inspect``, ``ast``, ``dis`` and
``tokenize``) costs ~5 ms, and each decorated class another ~0.5-1 ms, because the decorator
writes its methods as source text and compiles them with ``exec`` — on every ``nbdock run``, for
methods that never change. Here a class names its fields once, in ``__slots__`` (in the order of
its ``__init__`` parameters, which also serves pickling), and these bases derive the rest from
that tuple. Defining such a class costs ~10 µs (a ``NamedTuple`` ~100 µs, and it is a tuple:
iterable, equal to other tuples); ``logs.Record``, made for every chunk of output, is one anyway.

The behaviour is a dataclass's: equality between instances of the same class with equal fields,
``Name(field=value, ...)`` as repr; ``Plain`` is mutable and unhashable, ``Frozen`` refuses
assignment (``AttributeError``, as ``FrozenInstanceError`` is) and hashes its fields.
"""

from __future__ import annotations

from typing import Any, Self


class Plain:
    """Mutable fields named by ``__slots__``; ``__init__`` is the subclass's own."""

    __slots__: tuple[str, ...] = ()
    __hash__ = None  # type: ignore[assignment]  # mutable: like a dataclass with eq and not frozen

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self.__slots__])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__qualname__}({fields})"

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        # Rebuilt through __init__ with the fields in slot order (pickle, copy).
        return (type(self), self._values())

    def as_dict(self) -> dict[str, Any]:
        """Field name -> value, in field order (shallow: nested values are not converted)."""
        return {name: getattr(self, name) for name in self.__slots__}

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return type(self)(**{**self.as_dict(), **changes})


class Frozen(Plain):
    """Fields set once, in ``__init__``, through ``_set``."""

    __slots__ = ()

    def _set(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._values())
