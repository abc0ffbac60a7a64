"""Field converters and message structs: how a Python value is written into a message field and
read back, compiled once per field into closures chosen by field slot."""

from __future__ import annotations

import dataclasses
import enum
import operator
import pickle
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from google.protobuf.message import Message

from .._errors import ProtocolError
from .._schema import (
    EnumRef,
    FieldSpec,
    ListT,
    MapT,
    MessageRef,
    MessageSpec,
    OptionalT,
    PickledT,
    Scalar,
    TupleT,
    TypeRef,
    UnionT,
    is_basic,
    type_label,
    wrapper_fields,
)
from ._checks import Bad, Check, CheckCompiler, check_nothing, spell

__all__ = ("Compiler", "Convert", "Getter", "Setter", "is_direct")

Setter = Callable[[Message, Any], None]
Getter = Callable[[Message], Any]
Convert = Callable[[Any], Any]


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
        self.check: Check = check_nothing


def _unset(*args: Any) -> Any:
    raise AssertionError("codec used before it was compiled")


class Compiler:
    """Compiles field setters/getters and type checks for one file's messages (memoized)."""

    def __init__(self, classes: Mapping[str, type[Message]], messages: Mapping[str, MessageSpec]) -> None:
        self.classes = classes
        self.messages = messages
        self.structs: dict[str, _Struct] = {}
        self._checks = CheckCompiler(self.struct)

    def check(self, t: TypeRef) -> Check:
        """A deep type check of a value declared ``t`` (raises ``Bad``)."""
        return self._checks.check(t)

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
        if isinstance(t, MessageRef | TupleT | UnionT):
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
            if v is not None or not optional:  # None of a union's Pickled member is a value
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
        elif isinstance(t, TupleT):
            self._compile_tuple(struct, t)
        elif isinstance(t, UnionT):
            self._compile_union(struct, t)
        else:
            (f,) = wrapper_fields(t)
            struct.fill, struct.read = self.field(f)
        return struct

    def _compile_tuple(self, struct: _Struct, t: TupleT) -> None:
        compiled = tuple(self.field(f) for f in wrapper_fields(t))
        puts = tuple(enumerate(put for put, _ in compiled))
        getters = tuple(get for _, get in compiled)

        def fill(m: Message, v: Any) -> None:
            for i, put in puts:
                put(m, v[i])

        def read(m: Message) -> Any:
            return tuple([get(m) for get in getters])

        struct.fill, struct.read = fill, read

    def _compile_union(self, struct: _Struct, t: UnionT) -> None:
        cases = wrapper_fields(t)
        compiled = tuple(self._case(f) for f in cases)
        puts = tuple(put for put, _ in compiled)
        getters = {f.name: get for f, (_, get) in zip(cases, compiled, strict=True)}
        select = self._checks.select(t)
        oneof = cases[0].oneof
        spelled = spell(t)

        def fill(m: Message, v: Any) -> None:
            puts[select(v)](m, v)

        def read(m: Message) -> Any:
            case = m.WhichOneof(oneof)
            if case is None:
                raise ProtocolError(f"a value of {spelled} arrived with no member set")
            return getters[case](m)

        struct.fill, struct.read = fill, read

    def _case(self, f: FieldSpec) -> tuple[Setter, Getter]:
        """A union case's setter and getter: a list or map member is boxed in its wrapper."""
        if is_basic(f.type):
            return self.field(f)
        return self._submessage(f.name, self.struct(f.type), optional=False)

    def _compile_dataclass(self, struct: _Struct, spec: MessageSpec) -> None:
        py = spec.py
        assert py is not None and dataclasses.is_dataclass(py), spec
        compiled = {f.name: self.field(f) for f in spec.fields}
        names = tuple(compiled)
        # plain scalars go straight between the attribute and the field (no closure call)
        direct = tuple(f.name for f in spec.fields if is_direct(f.type))
        puts = tuple((name, put) for name, (put, _) in compiled.items() if name not in direct)
        getters = tuple(get for _, get in compiled.values())
        positional = tuple(f.name for f in dataclasses.fields(py) if f.init and not f.kw_only)
        init = {f.name for f in dataclasses.fields(py) if f.init}
        checks = tuple((f.name, c) for f in spec.fields if (c := self.check(f.type)) is not check_nothing)
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
                raise Bad(type_name, v)
            name = ""
            try:
                for name, c in checks:
                    c(getattr(v, name))
            except Bad as e:
                e.path.append("." + name)
                raise

        struct.fill, struct.read, struct.check = fill, read, check


def is_direct(t: TypeRef) -> bool:
    """A plain scalar field that holds the Python value as is."""
    return isinstance(t, Scalar) and t.proto != "bytes"


def _identity(v: Any) -> Any:
    return v
