"""Deep type checks of Python values against their declared types, compiled once per type.

A check raises ``Bad``, which the codec turns into a ``TypeError`` (``OverflowError`` for an int
beyond sint64) naming the function, the argument and the path to the wrong part of the value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from .._schema import EnumRef, ListT, MapT, MessageRef, NoneT, OptionalT, PickledT, Scalar, TypeRef

__all__ = ("Bad", "Check", "CheckCompiler", "Checked", "check_nothing", "spell")

Check = Callable[[Any], None]

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
_FAST_CHECK_LEN = 16  # lists at least this long are type-checked with C-level passes first


class Bad(Exception):
    """A value does not match its declared type; turned into a ``TypeError``/``OverflowError``
    that names the function. ``path`` is built innermost first while the error unwinds."""

    def __init__(self, expected: str, value: object, *, overflow: bool = False) -> None:
        super().__init__(expected)
        self.expected = expected
        self.value = value
        self.overflow = overflow
        self.path: list[str] = []
        self.key_of = False  # the value is a map key; path ends at its map entry

    def problem(self) -> str:
        if self.overflow:
            v = self.value
            shown = f"an int of {v.bit_length()} bits" if isinstance(v, int) and v.bit_length() > 128 else repr(v)
            return f"must fit in a signed 64-bit integer (sint64), got {shown}"
        return f"must be {self.expected}, got {type(self.value).__name__}"

    def error(self, function: str, label: str, root: str, declared: str) -> Exception:
        cls = OverflowError if self.overflow else TypeError
        if not self.path:
            return cls(f"{function}() {label} {self.problem()}")
        where = root + "".join(reversed(self.path))
        if self.key_of:
            where = f"the key of {where}"
        return cls(f"{function}() {label} must be {declared}: {where} {self.problem()}")


def spell(t: TypeRef) -> str:
    """A Python spelling of a type, for error messages."""
    match t:
        case Scalar():
            return t.py.__name__
        case EnumRef() | MessageRef():
            return t.py.__name__ if t.py is not None else t.name
        case PickledT():
            return "Pickled"
        case ListT():
            return f"tuple[{spell(t.elem)}, ...]" if t.as_tuple else f"list[{spell(t.elem)}]"
        case MapT():
            return f"dict[{spell(t.key)}, {spell(t.value)}]"
        case OptionalT():
            return f"{spell(t.inner)} | None"
        case NoneT():
            return "None"


def _check_int(v: Any) -> None:
    if type(v) is not int and (not isinstance(v, int) or isinstance(v, bool)):
        raise Bad("int", v)
    if not _INT_MIN <= v <= _INT_MAX:
        raise Bad("int", v, overflow=True)


def _check_float(v: Any) -> None:
    if type(v) is not float and (not isinstance(v, int | float) or isinstance(v, bool)):
        raise Bad("float", v)


def _check_bool(v: Any) -> None:
    if type(v) is not bool:
        raise Bad("bool", v)


def _check_str(v: Any) -> None:
    if type(v) is not str and not isinstance(v, str):
        raise Bad("str", v)


def _check_bytes(v: Any) -> None:
    if type(v) is not bytes and not isinstance(v, bytes | bytearray | memoryview):
        raise Bad("bytes", v)


def check_nothing(v: Any) -> None:
    """The check of a type every value has (``Pickled``); compiled code skips it by identity."""


def _check_none(v: Any) -> None:
    if v is not None:
        raise Bad("None", v)


_SCALAR_CHECKS: dict[str, Check] = {
    "sint64": _check_int, "double": _check_float, "bool": _check_bool, "string": _check_str, "bytes": _check_bytes,
}
# exact element types a homogeneous list may have to pass the fast check
_FAST_TYPES: dict[str, frozenset[type]] = {
    "sint64": frozenset({int}), "double": frozenset({float, int}), "bool": frozenset({bool}),
    "string": frozenset({str}), "bytes": frozenset({bytes}),
}


def _fast_list_check(elem: TypeRef) -> Callable[[Any], bool] | None:
    """A C-speed check of long homogeneous lists (True: all good; False: check item by item)."""
    if isinstance(elem, Scalar):
        allowed = _FAST_TYPES[elem.proto]
        if elem.proto == "sint64":
            return lambda v: set(map(type, v)) <= allowed and _INT_MIN <= min(v) and max(v) <= _INT_MAX
        return lambda v: set(map(type, v)) <= allowed
    if isinstance(elem, EnumRef):
        members = frozenset({elem.py})
        return lambda v: set(map(type, v)) <= members
    return None


def _instance_check(py: type, name: str) -> Check:
    def check(v: Any) -> None:
        if not isinstance(v, py):
            raise Bad(name, v)

    return check


class Checked(Protocol):
    """The codec of a message type, whose ``check`` is read on each call: it may be set after the
    checks that use it are compiled (recursive types)."""

    check: Check


class CheckCompiler:
    """Compiles deep type checks of declared types (memoized); a message type's check is the one
    of ``struct(t)``, the codec of that type."""

    def __init__(self, struct: Callable[[MessageRef], Checked]) -> None:
        self._struct = struct
        self.checks: dict[TypeRef, Check] = {}

    def check(self, t: TypeRef) -> Check:
        """A deep type check of a value declared ``t`` (raises ``Bad``)."""
        c = self.checks.get(t)
        if c is None:
            c = self.checks[t] = self._make_check(t)
        return c

    def _make_check(self, t: TypeRef) -> Check:
        match t:
            case Scalar():
                return _SCALAR_CHECKS[t.proto]
            case PickledT():
                return check_nothing
            case NoneT():
                return _check_none
            case EnumRef():
                return _instance_check(t.py, t.py.__name__)
            case MessageRef():
                struct = self._struct(t)
                return lambda v: struct.check(v)
            case OptionalT():
                return self._optional_check(t)
            case ListT():
                return self._list_check(t)
            case MapT():
                return self._map_check(t)

    def _optional_check(self, t: OptionalT) -> Check:
        inner = self.check(t.inner)
        expected = spell(t)

        def check(v: Any) -> None:
            if v is not None:
                try:
                    inner(v)
                except Bad as e:
                    if not e.path:
                        e.expected = expected
                    raise

        return check

    def _list_check(self, t: ListT) -> Check:
        elem = self.check(t.elem)
        fast = _fast_list_check(t.elem)
        expected = spell(t)
        skip_items = elem is check_nothing

        def check(v: Any) -> None:
            if not isinstance(v, list | tuple) and (
                    not isinstance(v, Sequence) or isinstance(v, str | bytes | bytearray)):
                raise Bad(expected, v)
            if skip_items or (fast is not None and len(v) >= _FAST_CHECK_LEN and fast(v)):
                return
            i = 0
            try:
                for i, x in enumerate(v):  # noqa: B007 (i names the bad item)
                    elem(x)
            except Bad as e:
                e.path.append(f"[{i}]")
                raise

        return check

    def _map_check(self, t: MapT) -> Check:
        key = _SCALAR_CHECKS[t.key.proto]
        value = self.check(t.value)
        expected = spell(t)

        def check(v: Any) -> None:
            if not isinstance(v, dict) and not isinstance(v, Mapping):
                raise Bad(expected, v)
            k: Any = None
            try:
                for k, x in v.items():
                    try:
                        key(k)
                    except Bad as e:
                        e.key_of = True
                        raise
                    value(x)
            except Bad as e:
                e.path.append(f"[{k!r}]")
                raise

        return check
