"""Record and Frozen: the two bases of minidocker's value objects (what a dataclass would give).

A Record lists its attributes once, in ``FIELDS``; ``DEFAULTS`` gives the optional ones.
From these two the base builds ``__init__`` (positional in ``FIELDS`` order, or by keyword),
``to_json``/``from_json``, equality and ``repr`` (over ``COMPARED`` if a record sets it)::

    class LayerInfo(Record):
        FIELDS = ("digest", "diff_id", "size")
        DEFAULTS = {"size": 0}
        KEYS = {"diff_id": "diffID"}     # JSON keys as in the mirrored spec, where they differ

    LayerInfo("sha256:…", "sha256:…").to_json() == {"digest": …, "diffID": …, "size": 0}

A default that is a list, dict or set is copied for each object (dataclasses' ``field(
default_factory=list)``). ``__post_init__`` runs after the fields are set: the place to
normalise or check a value. A subclass may still write its own ``__init__``; ``from_json``
then calls it with keywords.

Why not ``@dataclass``: importing dataclasses (and inspect with it) costs about 7 ms, on
every ``minidocker run``, a command benchmarked against runc (bench/README.md).
Why not a namedtuple: records change (a container's status), and a tuple compares equal
to any tuple of the same values.

``Frozen`` is for the few constants that must not change (a namespace type, an exit
status, the state roots): a tuple of its ``FIELDS``, read by name, what a namedtuple
gives without importing ``collections`` (1.5 ms per runtime command)::

    class Point(Frozen):
        FIELDS = ("x", "y")
        DEFAULTS = {"y": 0}

    Point(1).y == 0; Point(1, 2) == (1, 2); Point(x=1, y=2).x == 1
"""

from __future__ import annotations

__all__ = ["Frozen", "Record"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar, TypeVar

    R = TypeVar("R", bound="Record")

_MUTABLE = (list, dict, set)


class Record:
    """Fields from ``FIELDS``; equality and repr from them; mutable, so not hashable."""

    FIELDS: ClassVar[tuple[str, ...]] = ()
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    KEYS: ClassVar[dict[str, str]] = {}  # attribute -> JSON key, where they differ
    COMPARED: ClassVar[tuple[str, ...] | None] = None  # the fields == and repr use (None: all)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self.FIELDS
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__}() takes {len(fields)} arguments, {len(args)} given")
        for name, value in zip(fields, args):
            if name in kwargs:
                raise TypeError(f"{type(self).__name__}() got two values for {name!r}")
            kwargs[name] = value
        defaults = self.DEFAULTS
        for name in fields:
            if name in kwargs:
                value = kwargs.pop(name)
            elif name in defaults:
                value = defaults[name]
                if type(value) in _MUTABLE:
                    value = value.copy()
            else:
                raise TypeError(f"{type(self).__name__}() is missing the field {name!r}")
            setattr(self, name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__}() has no field {sorted(kwargs)[0]!r}")
        self.__post_init__()

    def __post_init__(self) -> None:
        """Normalise or check the fields (nothing by default)."""

    def to_json(self) -> dict[str, Any]:
        """The fields as a JSON object: ``None`` omitted, tuples as lists, records as objects."""
        keys = self.KEYS
        out = {}
        for name in self.FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[keys.get(name, name)] = _plain(value)
        return out

    @classmethod
    def from_json(cls: type[R], data: dict[str, Any]) -> R:
        """The record of ``to_json``'s output; unknown keys (a newer version's) are ignored."""
        keys = cls.KEYS
        values = {}
        for name in cls.FIELDS:
            key = keys.get(name, name)
            if key in data:
                values[name] = data[key]
        return cls(**values)

    def __repr__(self) -> str:
        shown = self.COMPARED or self.FIELDS
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in shown)})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.COMPARED or self.FIELDS)

    __hash__ = None  # type: ignore[assignment]


class Frozen(tuple):
    """A tuple of ``FIELDS`` (positional or by keyword, ``DEFAULTS`` for the optional ones), read by name."""

    __slots__ = ()
    FIELDS: ClassVar[tuple[str, ...]] = ()
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for index, name in enumerate(cls.FIELDS):
            if name not in cls.__dict__:
                setattr(cls, name, property(lambda self, i=index: self[i], doc=f"field {index}: {name}"))

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        fields = cls.FIELDS
        if len(args) > len(fields):
            raise TypeError(f"{cls.__name__}() takes {len(fields)} arguments, {len(args)} given")
        values = list(args)
        for name in fields[len(args):]:
            if name in kwargs:
                values.append(kwargs.pop(name))
            elif name in cls.DEFAULTS:
                values.append(cls.DEFAULTS[name])
            else:
                raise TypeError(f"{cls.__name__}() is missing the field {name!r}")
        if kwargs:
            raise TypeError(f"{cls.__name__}() got an unexpected or repeated field {sorted(kwargs)[0]!r}")
        return super().__new__(cls, values)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in zip(self.FIELDS, self))})"


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
