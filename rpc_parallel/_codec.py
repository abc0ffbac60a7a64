"""The runtime codec: Python values <-> the bytes of a worker type's protobuf messages.

This module owns three things, all driven by the schema model (``_schema``):

- the protobuf message classes of a ``FileSpec`` (``message_classes``): a fresh generated ``_pb2``
  module when one is importable, otherwise classes built from the same descriptors in a private pool;
- argument binding and deep type checks at the call site (``MethodCodec.bind``), and type checks of
  what a worker function returns or yields, so a wrong type is a ``TypeError`` naming the function;
- encoding and decoding of every request, response and stream message of the six function kinds.

Everything is compiled once per method into closures chosen by field slot; a call does no
reflection over the model. Malformed or unexpected bytes raise ``ProtocolError``.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import operator
import pickle
import threading
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from ._errors import ProtocolError
from ._function import Function, Kind
from ._schema import (
    EnumRef,
    FieldSpec,
    FileSpec,
    ListT,
    MapT,
    MessageRef,
    MessageSpec,
    MethodSpec,
    NoneT,
    OptionalT,
    PickledT,
    Scalar,
    ServiceSpec,
    TypeRef,
    file_descriptor,
    file_spec,
    service_spec,
    type_label,
    wrapper_field,
)

__all__ = ("MethodCodec", "ServiceCodec", "codec_for", "message_classes")

Setter = Callable[[Message, Any], None]
Getter = Callable[[Message], Any]
Check = Callable[[Any], None]
Convert = Callable[[Any], Any]

_C = TypeVar("_C")
_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
_FAST_CHECK_LEN = 16  # lists at least this long are type-checked with C-level passes first
_MISSING: Any = object()


# -- message classes ---------------------------------------------------------------------------

_CLASSES: dict[int, tuple[FileSpec, dict[str, type[Message]]]] = {}
_CLASSES_LOCK = threading.Lock()


def message_classes(spec: FileSpec) -> dict[str, type[Message]]:
    """The protobuf message classes of ``spec``, by message name (cached per ``FileSpec``).

    A generated ``<package>_pb2`` module is used when it is importable and its descriptor is
    byte-identical to ``spec``'s; otherwise the classes come from a private descriptor pool (never
    the default one, where the user's generated module may be imported later).
    """
    with _CLASSES_LOCK:
        hit = _CLASSES.get(id(spec))
        if hit is not None and hit[0] is spec:
            return hit[1]
        serialized = file_descriptor(spec).SerializeToString()
        classes = _generated_classes(spec, serialized)
        if classes is None:
            pool = descriptor_pool.DescriptorPool()
            pool.AddSerializedFile(serialized)
            prefix = f"{spec.package}." if spec.package else ""
            classes = {m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(prefix + m.name))
                       for m in spec.messages}
        _CLASSES[id(spec)] = (spec, classes)
        return classes


def _generated_classes(spec: FileSpec, serialized: bytes) -> dict[str, type[Message]] | None:
    name = spec.proto_file.removesuffix(".proto").replace("/", ".") + "_pb2"
    try:
        module = importlib.import_module(name)
    except Exception:  # absent, or present but broken (e.g. clashing with another file): build our own
        return None
    descriptor = getattr(module, "DESCRIPTOR", None)
    if descriptor is None or getattr(descriptor, "serialized_pb", None) != serialized:
        return None
    by_name = descriptor.message_types_by_name
    return {m.name: message_factory.GetMessageClass(by_name[m.name]) for m in spec.messages}


# -- type errors -------------------------------------------------------------------------------


class _Bad(Exception):
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


def _spell(t: TypeRef) -> str:
    """A Python spelling of a type, for error messages."""
    match t:
        case Scalar():
            return t.py.__name__
        case EnumRef() | MessageRef():
            return t.py.__name__ if t.py is not None else t.name
        case PickledT():
            return "Pickled"
        case ListT():
            return f"tuple[{_spell(t.elem)}, ...]" if t.as_tuple else f"list[{_spell(t.elem)}]"
        case MapT():
            return f"dict[{_spell(t.key)}, {_spell(t.value)}]"
        case OptionalT():
            return f"{_spell(t.inner)} | None"
        case NoneT():
            return "None"


def _check_int(v: Any) -> None:
    if type(v) is not int and (not isinstance(v, int) or isinstance(v, bool)):
        raise _Bad("int", v)
    if not _INT_MIN <= v <= _INT_MAX:
        raise _Bad("int", v, overflow=True)


def _check_float(v: Any) -> None:
    if type(v) is not float and (not isinstance(v, int | float) or isinstance(v, bool)):
        raise _Bad("float", v)


def _check_bool(v: Any) -> None:
    if type(v) is not bool:
        raise _Bad("bool", v)


def _check_str(v: Any) -> None:
    if type(v) is not str and not isinstance(v, str):
        raise _Bad("str", v)


def _check_bytes(v: Any) -> None:
    if type(v) is not bytes and not isinstance(v, bytes | bytearray | memoryview):
        raise _Bad("bytes", v)


def _check_nothing(v: Any) -> None:
    pass


def _check_none(v: Any) -> None:
    if v is not None:
        raise _Bad("None", v)


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


# -- values ------------------------------------------------------------------------------------


def _to_bytes(v: Any) -> bytes:
    return v if type(v) is bytes else bytes(v)


def _dumps(v: Any) -> bytes:
    return pickle.dumps(v, protocol=5)


def _loads(b: bytes) -> Any:
    try:
        return pickle.loads(b)
    except Exception as exc:
        raise ProtocolError(f"cannot unpickle a Pickled value: {type(exc).__name__}: {exc}") from exc


def _enum_codec(ref: EnumRef) -> tuple[Convert, Convert]:
    members: list[enum.Enum] = list(cast("type[enum.Enum]", ref.py))
    index = {m: i for i, m in enumerate(members)}
    by_index = dict(enumerate(members))

    def decode(i: int) -> enum.Enum:
        try:
            return by_index[i]
        except KeyError:
            raise ProtocolError(f"enum {ref.py.__name__} has no member with index {i} "
                                f"(it has {len(members)})") from None

    return index.__getitem__, decode


class _Struct:
    """The compiled codec of one message type: a dataclass (or the handle) or a wrapper message.

    ``fill(msg, value)`` writes a Python value into an empty message, ``read(msg)`` reads it back,
    ``check(value)`` type-checks it. Set after creation, so recursive types can refer to themselves.
    """

    __slots__ = ("check", "fill", "read")

    def __init__(self) -> None:
        self.fill: Setter = _unset
        self.read: Getter = _unset
        self.check: Check = _check_nothing


def _unset(*args: Any) -> Any:
    raise AssertionError("codec used before it was compiled")


class _Compiler:
    """Compiles field setters/getters and type checks for one file's messages (memoized)."""

    def __init__(self, classes: Mapping[str, type[Message]], messages: Mapping[str, MessageSpec]) -> None:
        self.classes = classes
        self.messages = messages
        self.structs: dict[str, _Struct] = {}
        self.checks: dict[TypeRef, Check] = {}

    # fields -----------------------------------------------------------------------------------

    def field(self, f: FieldSpec) -> tuple[Setter, Getter]:
        """How to write a value into field ``f`` of a message and read it back."""
        name, t = f.name, f.type
        if isinstance(t, ListT):
            return self._repeated(name, t)
        if isinstance(t, MapT):
            return self._map(name, t)
        if isinstance(t, OptionalT) and isinstance(t.inner, Scalar | EnumRef | PickledT):
            return self._optional_basic(name, t.inner)
        if isinstance(t, OptionalT):
            return self._submessage(name, self.struct(t.inner), optional=True)
        if isinstance(t, MessageRef):
            return self._submessage(name, self.struct(t), optional=False)
        if isinstance(t, Scalar | EnumRef | PickledT):
            return self._plain_basic(name, t)
        raise TypeError(f"field {name} cannot hold {t!r}")

    def basic(self, t: Scalar | EnumRef | PickledT) -> tuple[Convert | None, Convert | None]:
        """Element converters (``None``: the identity) between Python and proto for a basic type."""
        if isinstance(t, Scalar):
            return (_to_bytes if t.proto == "bytes" else None), None
        if isinstance(t, EnumRef):
            return _enum_codec(t)
        return _dumps, _loads

    def _plain_basic(self, name: str, t: Scalar | EnumRef | PickledT) -> tuple[Setter, Getter]:
        enc, dec = self.basic(t)
        if enc is None:
            def put(m: Message, v: Any) -> None:
                setattr(m, name, v)
        else:
            def put(m: Message, v: Any) -> None:
                setattr(m, name, enc(v))
        if dec is None:
            return put, operator.attrgetter(name)

        def get(m: Message) -> Any:
            return dec(getattr(m, name))

        return put, get

    def _optional_basic(self, name: str, t: Scalar | EnumRef | PickledT) -> tuple[Setter, Getter]:
        enc, dec = self.basic(t)
        encode: Convert = enc or _identity
        decode: Convert = dec or _identity

        def put(m: Message, v: Any) -> None:
            if v is not None:
                setattr(m, name, encode(v))

        def get(m: Message) -> Any:
            return decode(getattr(m, name)) if m.HasField(name) else None

        return put, get

    def _submessage(self, name: str, struct: _Struct, *, optional: bool) -> tuple[Setter, Getter]:
        def put(m: Message, v: Any) -> None:
            if v is not None:
                sub: Message = getattr(m, name)
                sub.SetInParent()  # presence even when every field of the value is a default
                struct.fill(sub, v)

        if optional:
            def get(m: Message) -> Any:
                return struct.read(getattr(m, name)) if m.HasField(name) else None
        else:
            def get(m: Message) -> Any:
                return struct.read(getattr(m, name))
        return put, get

    def _repeated(self, name: str, t: ListT) -> tuple[Setter, Getter]:
        elem = t.elem
        collect: Callable[[Iterable[Any]], Any] = tuple if t.as_tuple else list
        seq: Callable[[list[Any]], Any] = tuple if t.as_tuple else _identity  # of a fresh list
        if isinstance(elem, Scalar | EnumRef | PickledT):
            enc, dec = self.basic(elem)
            if enc is None:
                def put(m: Message, v: Any) -> None:
                    getattr(m, name).extend(v)
            else:
                def put(m: Message, v: Any) -> None:
                    getattr(m, name).extend([enc(x) for x in v])
            if dec is None:
                def get(m: Message) -> Any:
                    return collect(getattr(m, name))
            else:
                def get(m: Message) -> Any:
                    return seq([dec(x) for x in getattr(m, name)])
            return put, get
        struct = self.struct(elem)

        def put_messages(m: Message, v: Any) -> None:
            add = getattr(m, name).add
            fill = struct.fill
            for x in v:
                fill(add(), x)

        def get_messages(m: Message) -> Any:
            read = struct.read
            return seq([read(x) for x in getattr(m, name)])

        return put_messages, get_messages

    def _map(self, name: str, t: MapT) -> tuple[Setter, Getter]:
        value = t.value
        if isinstance(value, Scalar | EnumRef | PickledT):
            enc, dec = self.basic(value)
            if enc is None:
                def put(m: Message, v: Any) -> None:
                    getattr(m, name).update(v)
            else:
                def put(m: Message, v: Any) -> None:
                    getattr(m, name).update({k: enc(x) for k, x in v.items()})
            if dec is None:
                def get(m: Message) -> Any:
                    return dict(getattr(m, name))
            else:
                def get(m: Message) -> Any:
                    return {k: dec(x) for k, x in getattr(m, name).items()}
            return put, get
        struct = self.struct(value)

        def put_messages(m: Message, v: Any) -> None:
            entries = getattr(m, name)
            fill = struct.fill
            for k, x in v.items():
                fill(entries[k], x)  # indexing creates the entry

        def get_messages(m: Message) -> Any:
            read = struct.read
            return {k: read(x) for k, x in getattr(m, name).items()}

        return put_messages, get_messages

    # message types ----------------------------------------------------------------------------

    def struct(self, t: TypeRef) -> _Struct:
        """The codec of the message holding ``t``: a dataclass message, or the wrapper boxing ``t``."""
        name = t.name if isinstance(t, MessageRef) else type_label(t)
        struct = self.structs.get(name)
        if struct is not None:
            return struct
        struct = self.structs[name] = _Struct()
        if isinstance(t, MessageRef):
            self._compile_dataclass(struct, self.messages[name])
        else:
            put, get = self.field(wrapper_field(t))
            struct.fill, struct.read = put, get
        return struct

    def _compile_dataclass(self, struct: _Struct, spec: MessageSpec) -> None:
        py = spec.py
        assert py is not None and dataclasses.is_dataclass(py), spec
        compiled = {f.name: self.field(f) for f in spec.fields}
        names = tuple(compiled)
        # plain scalars go straight between the attribute and the field (no closure call)
        direct = tuple(f.name for f in spec.fields if _is_direct(f.type))
        puts = tuple((name, put) for name, (put, _) in compiled.items() if name not in direct)
        getters = tuple(get for _, get in compiled.values())
        positional = tuple(f.name for f in dataclasses.fields(py) if f.init and not f.kw_only)
        init = {f.name for f in dataclasses.fields(py) if f.init}
        checks = tuple((f.name, c) for f in spec.fields if (c := self.check(f.type)) is not _check_nothing)
        qualname = py.__qualname__
        type_name = py.__name__

        def fill(m: Message, v: Any) -> None:
            for name in direct:
                setattr(m, name, getattr(v, name))
            for name, put in puts:
                put(m, getattr(v, name))

        def failed(exc: Exception) -> ProtocolError:  # e.g. a __post_init__ refusing what a peer sent
            return ProtocolError(f"cannot build a {qualname} from the received message: {type(exc).__name__}: {exc}")

        read: Getter
        if names == positional and len(direct) == len(names) > 1:
            every = operator.attrgetter(*names)  # one C call reads every field

            def read(m: Message) -> Any:
                try:
                    return py(*every(m))
                except Exception as exc:
                    raise failed(exc) from exc
        elif names == positional:
            def read(m: Message) -> Any:
                values = [get(m) for get in getters]
                try:
                    return py(*values)
                except Exception as exc:
                    raise failed(exc) from exc
        else:  # keyword-only fields, or fields outside __init__ (set after it)
            by_name = tuple((name, get) for name, (_, get) in compiled.items())

            def read(m: Message) -> Any:
                values = {name: get(m) for name, get in by_name}
                try:
                    obj = py(**{name: v for name, v in values.items() if name in init})
                    for name, v in values.items():
                        if name not in init:
                            object.__setattr__(obj, name, v)
                except Exception as exc:
                    raise failed(exc) from exc
                return obj

        def check(v: Any) -> None:
            if not isinstance(v, py):
                raise _Bad(type_name, v)
            name = ""
            try:
                for name, c in checks:
                    c(getattr(v, name))
            except _Bad as e:
                e.path.append("." + name)
                raise

        struct.fill, struct.read, struct.check = fill, read, check

    # checks -----------------------------------------------------------------------------------

    def check(self, t: TypeRef) -> Check:
        """A deep type check of a value declared ``t`` (raises ``_Bad``)."""
        c = self.checks.get(t)
        if c is None:
            c = self.checks[t] = self._make_check(t)
        return c

    def _make_check(self, t: TypeRef) -> Check:
        match t:
            case Scalar():
                return _SCALAR_CHECKS[t.proto]
            case PickledT():
                return _check_nothing
            case NoneT():
                return _check_none
            case EnumRef():
                return _instance_check(t.py, t.py.__name__)
            case MessageRef():
                struct = self.struct(t)
                return lambda v: struct.check(v)
            case OptionalT():
                return self._optional_check(t)
            case ListT():
                return self._list_check(t)
            case MapT():
                return self._map_check(t)

    def _optional_check(self, t: OptionalT) -> Check:
        inner = self.check(t.inner)
        expected = _spell(t)

        def check(v: Any) -> None:
            if v is not None:
                try:
                    inner(v)
                except _Bad as e:
                    if not e.path:
                        e.expected = expected
                    raise

        return check

    def _list_check(self, t: ListT) -> Check:
        elem = self.check(t.elem)
        fast = _fast_list_check(t.elem)
        expected = _spell(t)
        skip_items = elem is _check_nothing

        def check(v: Any) -> None:
            if not isinstance(v, list | tuple) and (
                    not isinstance(v, Sequence) or isinstance(v, str | bytes | bytearray)):
                raise _Bad(expected, v)
            if skip_items or (fast is not None and len(v) >= _FAST_CHECK_LEN and fast(v)):
                return
            i = 0
            try:
                for i, x in enumerate(v):  # noqa: B007 (i names the bad item)
                    elem(x)
            except _Bad as e:
                e.path.append(f"[{i}]")
                raise

        return check

    def _map_check(self, t: MapT) -> Check:
        key = _SCALAR_CHECKS[t.key.proto]
        value = self.check(t.value)
        expected = _spell(t)

        def check(v: Any) -> None:
            if not isinstance(v, dict) and not isinstance(v, Mapping):
                raise _Bad(expected, v)
            k: Any = None
            try:
                for k, x in v.items():
                    try:
                        key(k)
                    except _Bad as e:
                        e.key_of = True
                        raise
                    value(x)
            except _Bad as e:
                e.path.append(f"[{k!r}]")
                raise

        return check


def _is_direct(t: TypeRef) -> bool:
    """A plain scalar field that holds the Python value as is."""
    return isinstance(t, Scalar) and t.proto != "bytes"


def _identity(v: Any) -> Any:
    return v


def _instance_check(py: type, name: str) -> Check:
    def check(v: Any) -> None:
        if not isinstance(v, py):
            raise _Bad(name, v)

    return check


# -- large bytes ---------------------------------------------------------------------------------

# A ``bytes`` value at least this large is written and read around protobuf: protobuf would copy it
# into its arena, again into the serialized string, and twice more when parsing. Splicing the wire
# bytes by hand copies it once each way (proto3 parsers accept fields in any order).
_SPLICE_MIN = 1 << 16


# glibc hands freed memory at the top of its heap back to the system once that exceeds a threshold,
# which adapts to twice the largest mmapped chunk freed so far (chunks up to 32 MiB). Sending a large
# value keeps two copies alive per call (ours and gRPC's); at 16 MiB they cross the initial threshold,
# so every call took fresh pages, and page faults here cost more than the copies themselves (measured:
# 14 ms vs 2.4 ms to copy 16 MiB). Freeing one untouched 32 MiB buffer once moves the thresholds to
# where any program that once used such a buffer has them; to other allocators it is a no-op.
_ALLOCATOR_WARM_AT = 1 << 20
_allocator_warm = False


def _warm_allocator() -> None:
    global _allocator_warm
    _allocator_warm = True
    buffer = bytes((32 << 20) - (64 << 10))  # calloc of fresh mmapped memory: no page is touched
    del buffer


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _is_plain_bytes(t: TypeRef) -> bool:
    return isinstance(t, Scalar) and t.proto == "bytes"


class _Splice:
    """The large ``bytes`` fields of one message, by position in the value list and field number."""

    __slots__ = ("numbers", "slots")

    def __init__(self, fields: Sequence[tuple[int, int]]) -> None:
        self.slots = tuple(fields)  # (index in the values, field number)
        self.numbers = {number: index for index, number in fields}

    def take(self, values: Sequence[Any]) -> tuple[list[Any], list[tuple[int, bytes]]] | None:
        """The values with the large ones replaced by ``b""``, and those as (field number, value)
        (None: no value is large)."""
        taken: list[tuple[int, bytes]] = []
        rest: list[Any] | None = None
        for index, number in self.slots:
            v = values[index]
            if type(v) is bytes and len(v) >= _SPLICE_MIN:
                if rest is None:
                    rest = list(values)
                rest[index] = b""
                taken.append((number, v))
        return None if rest is None else (rest, taken)

    def put_back(self, values: list[Any], found: Mapping[int, bytes]) -> list[Any]:
        """``values`` with the large values ``found`` (by field number) in their places."""
        numbers = self.numbers
        for number, value in found.items():
            values[numbers[number]] = value
        return values

    def cut(self, data: bytes) -> tuple[bytes, dict[int, bytes]]:
        """``data`` without its large spliced fields, and those fields' values by index."""
        found: dict[int, bytes] = {}
        keep: list[memoryview] = []
        view = memoryview(data)
        pos = start = 0
        end = len(data)
        try:
            while pos < end:
                field_start = pos
                key, pos = _read_varint(view, pos)
                wire = key & 7
                if wire == 0:
                    _, pos = _read_varint(view, pos)
                elif wire == 1:
                    pos += 8
                elif wire == 5:
                    pos += 4
                elif wire == 2:
                    size, pos = _read_varint(view, pos)
                    index = self.numbers.get(key >> 3)
                    if index is not None and size >= _SPLICE_MIN and pos + size <= end:
                        keep.append(view[start:field_start])
                        found[index] = data[pos:pos + size]
                        start = pos + size
                    pos += size
                else:
                    return data, {}  # groups or garbage: let protobuf judge the whole message
        except IndexError:
            return data, {}
        if not found:
            return data, {}
        keep.append(view[start:])
        return b"".join(keep), found


def wire(taken: Sequence[tuple[int, bytes]]) -> list[bytes]:
    """Large values taken out of a message as the wire chunks that append them to it (one copy
    each, when joined; warms the allocator first, see above)."""
    chunks: list[bytes] = []
    for number, v in taken:
        chunks += (_varint(number << 3 | 2), _varint(len(v)), v)
        if not _allocator_warm and len(v) >= _ALLOCATOR_WARM_AT:
            _warm_allocator()
    return chunks


def joined(rest: bytes, taken: Sequence[tuple[int, bytes]]) -> bytes:
    """The whole message: ``rest`` with the large values ``taken`` appended."""
    return b"".join((rest, *wire(taken))) if taken else rest


def wire_size(rest: bytes, taken: Sequence[tuple[int, bytes]]) -> int:
    """The size of the message ``rest`` with the large values ``taken`` appended."""
    return len(rest) + sum(len(_varint(number << 3 | 2)) + len(_varint(len(v))) + len(v) for number, v in taken)


def _read_varint(view: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = view[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise IndexError("varint too long")


# -- messages ----------------------------------------------------------------------------------


class _Part:
    """One typed value of a message: its field's setter/getter, its check and how errors name it."""

    __slots__ = ("check", "declared", "direct", "get", "label", "name", "put", "root")

    def __init__(self, compiler: _Compiler, f: FieldSpec, label: str, root: str) -> None:
        self.name = f.name
        self.direct = _is_direct(f.type)
        self.put, self.get = compiler.field(f)
        self.check = compiler.check(f.type)
        self.label = label
        self.root = root
        self.declared = _spell(f.type)


def _decoder(cls: type[Message], read: Callable[[Message], _C], what: str) -> Callable[[bytes], _C]:
    """``read`` applied to the parsed message; malformed or unexpected bytes: ``ProtocolError``."""
    parse = cls.FromString

    def decode(data: bytes) -> _C:
        try:
            return read(parse(data))
        except DecodeError as exc:
            raise ProtocolError(f"{what}: malformed message: {exc}") from None
        except ProtocolError as exc:
            raise ProtocolError(f"{what}: {exc}") from exc

    return decode


def _spliced_decoder(splice: _Splice, decode: Callable[[bytes], _C],
                     merge: Callable[[_C, dict[int, bytes]], _C]) -> Callable[[bytes], _C]:
    """``decode`` for messages that may carry large spliced ``bytes`` fields: those are cut out of
    ``data`` and put back into the decoded value by ``merge``."""

    def decode_spliced(data: bytes) -> _C:
        if len(data) < _SPLICE_MIN:
            return decode(data)
        rest, found = splice.cut(data)
        value = decode(rest)
        return merge(value, found) if found else value

    return decode_spliced


def _merge_values(values: list[Any], found: dict[int, bytes]) -> list[Any]:
    for index, value in found.items():
        values[index] = value
    return values


def _reader(parts: Sequence[_Part]) -> Callable[[Message], list[Any]]:
    """Reads every part of a message into a list, in order."""
    getters = tuple(p.get for p in parts)
    if len(getters) == 1:
        (get,) = getters
        return lambda m: [get(m)]
    if getters and all(p.direct for p in parts):
        every = operator.attrgetter(*(p.name for p in parts))  # one C call
        return lambda m: list(every(m))
    return lambda m: [get(m) for get in getters]


def _encode_error(function: str, label: str, exc: Exception) -> TypeError:
    return TypeError(f"{function}() {label} cannot be encoded: {type(exc).__name__}: {exc}")


class _Value:
    """A message carrying one typed value in one field (a result, a state, an init argument), or
    none when the type is ``None``."""

    __slots__ = ("cls", "decode", "function", "label", "part", "splice", "what")

    def __init__(self, compiler: _Compiler, message: MessageSpec, field: str, function: str, label: str) -> None:
        self.cls = compiler.classes[message.name]
        self.function = function
        self.label = label
        self.what = f"{function} {message.name}"
        found = [f for f in message.fields if f.name == field]
        self.part = _Part(compiler, found[0], label, label) if found else None
        self.decode: Callable[[bytes], Any] = _decoder(self.cls, self.part.get if self.part else _none, self.what)
        self.splice = _Splice([(0, found[0].number)]) if found and _is_plain_bytes(found[0].type) else None
        if self.splice is not None:
            self.decode = _spliced_decoder(self.splice, self.decode, lambda _, found: found[0])

    def encode(self, value: Any) -> bytes:
        rest, taken = self.encode_parts(value)
        return joined(rest, taken)

    def encode_parts(self, value: Any) -> tuple[bytes, list[tuple[int, bytes]]]:
        """``encode(value)`` as a message and the large ``bytes`` value taken out of it (by field
        number), which can travel unframed beside it."""
        part = self.part
        if part is None:
            if value is not None:
                raise _Bad("None", value).error(self.function, self.label, self.label, "None")
            return b"", []
        try:
            part.check(value)
        except _Bad as e:
            raise e.error(self.function, part.label, part.root, part.declared) from None
        taken = self.splice.take((value,)) if self.splice is not None else None
        if taken is not None:
            return b"", taken[1]
        m = self.cls()
        try:
            part.put(m, value)
        except Exception as exc:
            raise _encode_error(self.function, part.label, exc) from exc
        return m.SerializeToString(), []

    def decode_parts(self, rest: bytes, found: Mapping[int, bytes]) -> Any:
        """The value of ``encode_parts``'s message and large value."""
        if found:
            if self.splice is None or list(found) != [self.splice.slots[0][1]]:
                raise ProtocolError(f"{self.what}: no large bytes fields {sorted(found)}")
            return found[self.splice.slots[0][1]]
        return self.decode(rest)


def _none(m: Message) -> None:
    return None


class _Batch:
    """A repeated field carrying a batch of typed items (stream items, updates)."""

    __slots__ = ("check", "cls", "declared", "decode", "function", "get", "label", "put", "what")

    def __init__(self, compiler: _Compiler, message: MessageSpec, field: str, function: str, label: str) -> None:
        (f,) = [f for f in message.fields if f.name == field]
        assert isinstance(f.type, ListT), f
        self.cls = compiler.classes[message.name]
        self.put, self.get = compiler.field(f)
        self.check = compiler.check(f.type)
        self.declared = _spell(f.type.elem)
        self.function = function
        self.label = label
        self.what = f"{function} {message.name}"
        self.decode: Callable[[bytes], list[Any]] = _decoder(self.cls, self.get, self.what)

    def encode(self, items: Sequence[Any]) -> bytes:
        try:
            self.check(items)
        except _Bad as e:
            if not e.path:  # not a sequence at all
                raise TypeError(f"{self.function}(): a batch of items must be a list, "
                                f"got {type(items).__name__}") from None
            e.path.pop()  # the index in the batch means nothing to the user
            raise e.error(self.function, self.label, self.label, self.declared) from None
        m = self.cls()
        try:
            self.put(m, items)
        except Exception as exc:
            raise _encode_error(self.function, self.label, exc) from exc
        return m.SerializeToString()


# -- methods -----------------------------------------------------------------------------------


class MethodCodec:
    """Binds, checks, encodes and decodes the messages of one worker function.

    Requests carry the parameters in declaration order. The response depends on the kind: rpc and
    reverse_pipe return ``value``; one_way returns nothing; pipe and direct_pipe stream batches of
    ``items``; state streams its ``state`` first (alone), then non-empty batches of ``updates``.
    """

    def __init__(self, spec: MethodSpec, service: str, compiler: _Compiler,
                 kinds: Mapping[str, inspect._ParameterKind] | None = None) -> None:
        self.spec = spec
        self.qualname = qn = f"{service}.{spec.name}"
        kind = spec.kind
        request = spec.request
        self._request_cls = compiler.classes[request.name]
        self._request_what = f"{qn} {request.name}"
        fields = {f.name: f for f in request.fields}
        self._params = spec.params
        self._parts = tuple(_Part(compiler, fields[p.name], f"argument '{p.name}'", p.name) for p in spec.params)
        self._index = {p.name: i for i, p in enumerate(spec.params)}
        self._updates_index = self._index[spec.updates_param] if spec.updates_param is not None else -1
        self._encoded = tuple((i, p) for i, p in enumerate(self._parts) if i != self._updates_index)
        self._checked = tuple((i, p.check) for i, p in enumerate(self._parts)
                              if i != self._updates_index and p.check is not _check_nothing)

        kinds = kinds or {}
        P = inspect.Parameter
        self._kinds = tuple(kinds.get(p.name, P.POSITIONAL_OR_KEYWORD) for p in spec.params)
        self._max_positional = sum(k is not P.KEYWORD_ONLY for k in self._kinds)
        self._simple = all(k is P.POSITIONAL_OR_KEYWORD for k in self._kinds)

        self._decode_request = _decoder(self._request_cls, _reader(self._parts), self._request_what)
        big = [(i, fields[p.name].number) for i, p in enumerate(spec.params)
               if i != self._updates_index and _is_plain_bytes(fields[p.name].type)]
        self._splice = _Splice(big) if big else None
        if self._splice is not None:
            self._decode_request = _spliced_decoder(self._splice, self._decode_request, _merge_values)

        # kind-specific operations; those that do not apply refuse with a TypeError
        self._encode_updates: Callable[[Sequence[Any]], bytes] = self._refuse("encode_updates")
        self._decode_updates: Callable[[bytes], list[Any]] = self._refuse("decode_updates")
        self._encode_result: Callable[[Any], bytes] = self._refuse("encode_result")
        self._decode_result: Callable[[bytes], Any] = self._refuse("decode_result")
        self._encode_items: Callable[[Sequence[Any]], bytes] = self._refuse("encode_items")
        self._decode_items: Callable[[bytes], list[Any]] = self._refuse("decode_items")
        self._encode_state: Callable[[Any], bytes] = self._refuse("encode_state")
        self._encode_updates_batch: Callable[[Sequence[Any]], bytes] = self._refuse("encode_updates_batch")
        self._decode_state: Callable[[bytes], tuple[bool, Any, list[Any]]] = self._refuse("decode_state_message")
        self._updates_elem = ""
        if spec.updates_param is not None:
            updates = _Batch(compiler, request, spec.updates_param, qn, f"item of argument '{spec.updates_param}'")
            self._encode_updates, self._decode_updates = updates.encode, updates.decode
            self._updates_elem = updates.declared
        response = spec.response
        self._result: _Value | None = None
        if kind in (Kind.RPC, Kind.REVERSE_PIPE, Kind.ONE_WAY):
            result = self._result = _Value(compiler, response, "value", qn, "result")
            self._encode_result, self._decode_result = result.encode, result.decode
        elif kind in (Kind.PIPE, Kind.DIRECT_PIPE):
            items = _Batch(compiler, response, "items", qn, "item")
            self._encode_items, self._decode_items = items.encode, items.decode
        else:
            state = _Value(compiler, response, "state", qn, "state")
            batch = _Batch(compiler, response, "updates", qn, "update")
            self._encode_state, self._encode_updates_batch = state.encode, batch.encode
            self._decode_state = _decoder(state.cls, _state_reader(response, state, batch), state.what)

    def __repr__(self) -> str:
        return f"<MethodCodec {self.qualname} ({self.spec.kind.value})>"

    # requests ---------------------------------------------------------------------------------

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        """Bind a call's arguments to the parameters (Python's rules, defaults filled) and
        type-check each value deeply: ``TypeError`` (``OverflowError`` for an int beyond sint64)
        naming the function and parameter. A reverse pipe's updates iterable is left in place."""
        if not kwargs and self._simple and len(args) == len(self._params):
            values = list(args)
        else:
            values = self._bind_slow(args, kwargs)
        i = 0
        try:
            for i, check in self._checked:
                check(values[i])
        except _Bad as e:
            p = self._parts[i]
            raise e.error(self.qualname, p.label, p.root, p.declared) from None
        if self._updates_index >= 0:
            v = values[self._updates_index]
            if not isinstance(v, Iterable | AsyncIterable):
                name = self._params[self._updates_index].name
                raise TypeError(f"{self.qualname}() argument '{name}' must be an iterable of "
                                f"{self._updates_elem}, got {type(v).__name__}")
        return values

    def _bind_slow(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        P = inspect.Parameter
        fn = self.qualname
        params = self._params
        n = len(params)
        if len(args) > self._max_positional:
            required = sum(1 for p, k in zip(params, self._kinds, strict=True)
                           if k is not P.KEYWORD_ONLY and not p.has_default)
            most = self._max_positional
            takes = f"{most}" if required == most else f"from {required} to {most}"
            plural = "" if takes == "1" else "s"
            were = "was" if len(args) == 1 else "were"
            raise TypeError(f"{fn}() takes {takes} positional argument{plural} but {len(args)} {were} given")
        values: list[Any] = [*args, *([_MISSING] * (n - len(args)))]
        positional_only: list[str] = []
        for name, v in kwargs.items():
            i = self._index.get(name)
            if i is None:
                raise TypeError(f"{fn}() got an unexpected keyword argument '{name}'")
            if self._kinds[i] is P.POSITIONAL_ONLY:
                positional_only.append(name)
                continue
            if values[i] is not _MISSING:
                raise TypeError(f"{fn}() got multiple values for argument '{name}'")
            values[i] = v
        if positional_only:
            raise TypeError(f"{fn}() got some positional-only arguments passed as keyword arguments: "
                            f"'{', '.join(positional_only)}'")
        missing: list[str] = []
        missing_kw: list[str] = []
        for i, p in enumerate(params):
            if values[i] is _MISSING:
                if p.has_default:
                    values[i] = p.default
                else:
                    (missing_kw if self._kinds[i] is P.KEYWORD_ONLY else missing).append(p.name)
        for names, what in ((missing, "positional"), (missing_kw, "keyword-only")):
            if names:
                raise TypeError(f"{fn}() missing {len(names)} required {what} argument"
                                f"{'' if len(names) == 1 else 's'}: {_enumerate(names)}")
        return values

    def encode_request(self, values: Sequence[Any]) -> bytes:
        """The request message for bound ``values`` (one per parameter, as ``bind`` returns them;
        a reverse pipe's updates slot is ignored: its items go in ``encode_updates`` batches)."""
        rest, taken = self.encode_request_parts(values)
        return joined(rest, taken)

    def encode_request_parts(self, values: Sequence[Any]) -> tuple[bytes, list[tuple[int, bytes]]]:
        """``encode_request(values)`` as a message and the large ``bytes`` values taken out of it
        (by field number), which can travel unframed beside it."""
        if len(values) != len(self._parts):
            raise ValueError(f"{self.qualname}: expected {len(self._parts)} values, got {len(values)}")
        taken = self._splice.take(values) if self._splice is not None else None
        large: list[tuple[int, bytes]] = []
        if taken is not None:
            values, large = taken
        m = self._request_cls()
        p: _Part | None = None
        try:
            for i, p in self._encoded:
                p.put(m, values[i])
        except Exception as exc:
            assert p is not None
            raise _encode_error(self.qualname, p.label, exc) from exc
        return m.SerializeToString(), large

    def decode_request_parts(self, rest: bytes, found: Mapping[int, bytes]) -> list[Any]:
        """The parameter values of ``encode_request_parts``'s message and large values."""
        values = self._decode_request(rest)
        if found:
            if self._splice is None or not set(found) <= set(self._splice.numbers):
                raise ProtocolError(f"{self._request_what}: no large bytes fields {sorted(found)}")
            self._splice.put_back(values, found)
        return values

    def encode_defaults(self) -> tuple[list[str], bytes]:
        """The parameters with a Python default, and a request message holding only those defaults
        (for dynamic clients, which do not know them)."""
        m = self._request_cls()
        names = []
        for i, p in self._encoded:
            param = self._params[i]
            if param.has_default:
                try:
                    p.put(m, param.default)
                except Exception:
                    continue  # a default the field cannot hold (e.g. a sentinel): the caller must pass it
                names.append(param.name)
        return names, m.SerializeToString()

    def decode_request(self, data: bytes) -> list[Any]:
        """The parameter values of a request (a reverse pipe's updates slot: the list of updates
        this message carries, usually empty)."""
        return self._decode_request(data)

    def encode_updates(self, items: Sequence[Any]) -> bytes:
        """A reverse pipe's request message carrying only a batch of updates (type-checked)."""
        return self._encode_updates(items)

    def decode_updates(self, data: bytes) -> list[Any]:
        """The updates carried by a reverse pipe's later request message."""
        return self._decode_updates(data)

    # responses --------------------------------------------------------------------------------

    def encode_result(self, value: Any) -> bytes:
        """The response of an rpc or reverse_pipe (type-checked), or of a one_way (``None``)."""
        return self._encode_result(value)

    def decode_result(self, data: bytes) -> Any:
        """The result carried by an rpc/reverse_pipe/one_way response."""
        return self._decode_result(data)

    def encode_result_parts(self, value: Any) -> tuple[bytes, list[tuple[int, bytes]]]:
        """``encode_result(value)`` as a message and the large ``bytes`` value taken out of it."""
        if self._result is None:
            return self._encode_result(value), []  # refuses
        return self._result.encode_parts(value)

    def decode_result_parts(self, rest: bytes, found: Mapping[int, bytes]) -> Any:
        """The result of ``encode_result_parts``'s message and large value."""
        if self._result is None:
            return self._decode_result(rest)  # refuses
        return self._result.decode_parts(rest, found)

    def encode_items(self, items: Sequence[Any]) -> bytes:
        """A pipe/direct_pipe response message carrying a batch of items (type-checked)."""
        return self._encode_items(items)

    def decode_items(self, data: bytes) -> list[Any]:
        """The batch of items a pipe/direct_pipe response message carries."""
        return self._decode_items(data)

    def encode_state(self, value: Any) -> bytes:
        """A state function's first response message: the initial state alone (type-checked)."""
        return self._encode_state(value)

    def encode_updates_batch(self, items: Sequence[Any]) -> bytes:
        """A state function's later response message: a non-empty batch of updates (type-checked)."""
        return self._encode_updates_batch(items)

    def decode_state_message(self, data: bytes) -> tuple[bool, Any, list[Any]]:
        """``(has_state, state, updates)`` of a state response message.

        ``has_state`` is true when the message carries the state: explicitly, or by carrying no
        updates (a state-only message is empty when the state is a default value or ``None``,
        which is why update batches are never empty). ``state`` is ``None`` otherwise.
        """
        return self._decode_state(data)

    def _refuse(self, what: str) -> Callable[[Any], Any]:
        def refuse(arg: Any) -> Any:
            raise TypeError(f"{what} does not apply to {self.qualname}, a {self.spec.kind.value} function")

        return refuse


def _state_reader(response: MessageSpec, state: _Value,
                  batch: _Batch) -> Callable[[Message], tuple[bool, Any, list[Any]]]:
    present = _presence(response, "state")
    get_state = state.part.get if state.part is not None else _none
    get_updates = batch.get

    def read(m: Message) -> tuple[bool, Any, list[Any]]:
        updates: list[Any] = get_updates(m)
        if updates and not present(m):
            return False, None, updates
        return True, get_state(m), updates

    return read


def _presence(message: MessageSpec, field: str) -> Callable[[Message], bool]:
    """Whether a message's field is on the wire (for implicit-presence fields: non-default)."""
    found = [f for f in message.fields if f.name == field]
    if not found:
        return lambda m: False
    t = found[0].type
    if isinstance(t, OptionalT | MessageRef):
        return lambda m: m.HasField(field)
    return lambda m: bool(getattr(m, field))


def _enumerate(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


# -- services ----------------------------------------------------------------------------------


class ServiceCodec:
    """The codecs of one worker type: its methods and its two init messages."""

    def __init__(self, spec: ServiceSpec, classes: Mapping[str, type[Message]],
                 messages: Mapping[str, MessageSpec] | None = None) -> None:
        """``classes`` are ``message_classes`` of the file declaring ``spec``; ``messages`` that
        file's message specs by name (default: looked up with ``file_spec``)."""
        if messages is None:
            messages = {m.name: m for m in file_spec(spec.py.__module__).messages}
        compiler = _Compiler(classes, messages)
        self.spec = spec
        self._methods = {m.name: MethodCodec(m, spec.name, compiler, _param_kinds(spec.py, m))
                         for m in spec.methods}
        self._init = _Value(compiler, spec.init, "arg", f"{spec.name}.init_worker_state", "argument")
        self._connection_init = _Value(compiler, spec.connection_init, "arg",
                                       f"{spec.name}.init_connection_state", "argument")

    def __repr__(self) -> str:
        return f"<ServiceCodec {self.spec.name}>"

    def method(self, name: str) -> MethodCodec:
        """The codec of the function named ``name`` (``KeyError`` if there is none)."""
        return self._methods[name]

    @property
    def methods(self) -> Mapping[str, MethodCodec]:
        """Every method codec, by function name, in declaration order."""
        return self._methods

    def encode_init(self, value: Any) -> bytes:
        """The ``init_worker_state`` argument message (type-checked)."""
        return self._init.encode(value)

    def decode_init(self, data: bytes) -> Any:
        return self._init.decode(data)

    def encode_connection_init(self, value: Any) -> bytes:
        """The ``init_connection_state`` argument message (type-checked)."""
        return self._connection_init.encode(value)

    def decode_connection_init(self, data: bytes) -> Any:
        return self._connection_init.decode(data)


def _param_kinds(cls: type, method: MethodSpec) -> dict[str, inspect._ParameterKind]:
    """Parameter kinds (positional-only, keyword-only...) of a function's implementation."""
    f = getattr(cls, method.name, None)
    if not isinstance(f, Function):
        return {}
    try:
        params = inspect.signature(f.impl).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.kind for p in params}


_CODECS: dict[int, tuple[ServiceSpec, ServiceCodec]] = {}
_CODECS_LOCK = threading.Lock()


def codec_for(worker: type | ServiceSpec) -> ServiceCodec:
    """The (cached) codec of a worker class or of its ``ServiceSpec``."""
    spec = worker if isinstance(worker, ServiceSpec) else service_spec(worker)
    hit = _CODECS.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    with _CODECS_LOCK:
        hit = _CODECS.get(id(spec))
        if hit is not None and hit[0] is spec:
            return hit[1]
        fs = file_spec(spec.py.__module__)
        if fs.service(spec.name).fingerprint != spec.fingerprint:
            raise ProtocolError(f"worker type {spec.name} changed since its schema was built "
                                f"(fingerprint {spec.fingerprint} vs {fs.service(spec.name).fingerprint})")
        codec = ServiceCodec(spec, message_classes(fs), {m.name: m for m in fs.messages})
        _CODECS[id(spec)] = (spec, codec)
        return codec
