"""Deep type checks of Python values against their declared types, compiled once per type.

A check raises ``Bad``, which the codec turns into a ``TypeError`` (``OverflowError`` for an int
beyond sint64) naming the function, the argument and the path to the wrong part of the value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from .._schema import EnumRef, ListT, MapT, MessageRef, NoneT, OptionalT, PickledT, Scalar, TupleT, TypeRef, UnionT

__all__ = ("Bad", "Check", "CheckCompiler", "Checked", "Select", "check_nothing", "spell")

Check = Callable[[Any], None]
Select = Callable[[Any], int]  # a union's member for a value (its index), or raises Bad

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
_FAST_CHECK_LEN = 16  # lists at least this long are type-checked with C-level passes first


class Bad(Exception):
    """A value does not match its declared type; turned into a ``TypeError``/``OverflowError``
    that names the function. ``path`` is built innermost first while the error unwinds."""

    def __init__(self, expected: str, value: object, *, overflow: bool = False, got: str = "") -> None:
        super().__init__(expected)
        self.expected = expected
        self.value = value
        self.overflow = overflow
        self.got = got
        self.path: list[str] = []
        self.key_of = False  # the value is a map key; path ends at its map entry

    def problem(self) -> str:
        if self.overflow:
            v = self.value
            shown = f"an int of {v.bit_length()} bits" if isinstance(v, int) and v.bit_length() > 128 else repr(v)
            return f"must fit in a signed 64-bit integer (sint64), got {shown}"
        return f"must be {self.expected}, got {self.got or type(self.value).__name__}"

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
        case TupleT():
            return f"tuple[{', '.join(spell(e) for e in t.elems)}]"
        case UnionT():
            return " | ".join(spell(m) for m in t.members)
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


def _is_sequence(v: Any) -> bool:
    return isinstance(v, list | tuple) or (isinstance(v, Sequence) and not isinstance(v, str | bytes | bytearray))


def _natural_class(t: TypeRef) -> type | None:
    """The class a value of type ``t`` usually has (None: any class, for ``Pickled``)."""
    match t:
        case Scalar() | EnumRef():
            return t.py
        case MessageRef():
            return t.py
        case ListT():
            return tuple if t.as_tuple else list
        case TupleT():
            return tuple
        case MapT():
            return dict
        case _:
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
        self.selects: dict[UnionT, Select] = {}

    def check(self, t: TypeRef) -> Check:
        """A deep type check of a value declared ``t`` (raises ``Bad``)."""
        c = self.checks.get(t)
        if c is None:
            c = self.checks[t] = self._make_check(t)
        return c

    def select(self, t: UnionT) -> Select:
        """Which member of union ``t`` a value is (its index; raises ``Bad`` if none).

        A member whose usual class is the value's own class is tried first (so ``3`` is the
        ``int`` of ``float | int`` and ``(1, 2)`` the tuple of ``list[int] | tuple[int, ...]``), then
        the others in declaration order, ``Pickled`` last: the first whose deep check passes.
        """
        s = self.selects.get(t)
        if s is None:
            s = self.selects[t] = self._make_select(t)
        return s

    def _make_select(self, t: UnionT) -> Select:
        members = t.members
        checks = [self.check(m) for m in members]
        by_class: dict[type, tuple[int, ...]] = {}
        for i, m in enumerate(members):
            cls = _natural_class(m)
            if cls is not None:
                by_class[cls] = (*by_class.get(cls, ()), i)
        rest = sorted(range(len(members)), key=lambda i: isinstance(members[i], PickledT))
        expected = spell(t)

        def select(v: Any) -> int:
            first = by_class.get(type(v), ())
            near: Bad | None = None  # the deep failure of a member of the value's own class
            for i in first:
                try:
                    checks[i](v)
                    return i
                except Bad as e:
                    if e.overflow:  # an int too large is no float of float | int
                        raise
                    near = near or (e if e.path else None)
            for i in rest:
                if i not in first:
                    try:
                        checks[i](v)
                        return i
                    except Bad:
                        pass
            if near is not None:
                raise near
            raise Bad(expected, v)

        return select

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
            case TupleT():
                return self._tuple_check(t)
            case UnionT():
                select = self.select(t)

                def check(v: Any) -> None:
                    select(v)

                return check

    def _tuple_check(self, t: TupleT) -> Check:
        elems = tuple(self.check(e) for e in t.elems)
        expected = spell(t)

        def check(v: Any) -> None:
            if not _is_sequence(v):
                raise Bad(expected, v)
            if len(v) != len(elems):
                raise Bad(expected, v, got=f"{type(v).__name__} of {len(v)} items")
            i = 0
            try:
                for i, c in enumerate(elems):
                    c(v[i])
            except Bad as e:
                e.path.append(f"[{i}]")
                raise

        return check

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
            if not isinstance(v, list | tuple) and not _is_sequence(v):  # the common case inline: hot
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
