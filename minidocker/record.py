"""Record: the base of minidocker's small value classes (what a dataclass would give).

Records list their attributes in ``FIELDS``; equality and ``repr`` come from there.
Not ``@dataclass``: importing dataclasses (and inspect with it) costs about 7 ms, on
every ``minidocker run``, a command benchmarked against runc (bench/README.md).
Subclasses write their ``__init__`` with the defaults they need.
"""

from __future__ import annotations

__all__ = ["Record"]


class Record:
    """Equality and repr from ``FIELDS``; mutable, so not hashable (like a dataclass with eq)."""

    FIELDS: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in self.FIELDS)})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.FIELDS)

    __hash__ = None  # type: ignore[assignment]
