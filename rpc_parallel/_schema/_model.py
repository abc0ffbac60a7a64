"""The schema model: a worker type as proto-level services, messages, fields and enums.

Built once per module by ``_build.file_spec``; everything else (descriptors, ``.proto``
text, typed clients, the runtime codec, fingerprints) is derived from it.

Python types map to field *slots*. A slot is what one proto field can hold directly; a type that
cannot sit in a slot (a list of lists, a map of optionals, an optional list) is boxed in a
generated wrapper message named after its structure (``IntList``, ``StrIntMap``, ``IntOptional``).
Fixed tuples and unions are always such messages: a field per position (``IntAndStrTuple2``:
``item_0``, ``item_1``) or a ``oneof`` with a case per member (``IntOrStrUnion``: ``int``, ``str``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from .._function import Kind

__all__ = (
    "SCALARS",
    "UNION_ONEOF",
    "EnumRef",
    "EnumSpec",
    "FieldSpec",
    "FileSpec",
    "ListT",
    "MapT",
    "MessageRef",
    "MessageSpec",
    "MethodSpec",
    "NoneT",
    "OptionalT",
    "ParamInfo",
    "PickledT",
    "Scalar",
    "ServiceSpec",
    "Slot",
    "TupleT",
    "TypeRef",
    "UnionT",
    "camel",
    "differing_functions",
    "fingerprints",
    "is_basic",
    "json_name",
    "slot_of",
    "wrapper_field",
    "wrappers_for",
    "type_label",
    "union_case",
    "wrapper_fields",
)


@dataclass(frozen=True)
class Scalar:
    """A proto scalar: ``proto`` is its proto type, ``py`` the Python type."""

    proto: str
    py: type = field(compare=False)
    label: str = field(compare=False, default="")


SCALARS: dict[type, Scalar] = {
    int: Scalar("sint64", int, "Int"),
    float: Scalar("double", float, "Float"),
    bool: Scalar("bool", bool, "Bool"),
    str: Scalar("string", str, "Str"),
    bytes: Scalar("bytes", bytes, "Bytes"),
}


@dataclass(frozen=True)
class EnumRef:
    """A Python ``enum.Enum``; values travel by member index (the first member is 0)."""

    name: str
    py: type = field(compare=False)


@dataclass(frozen=True)
class MessageRef:
    """A dataclass (or ``rp.WorkerHandle``), a nested proto message."""

    name: str
    py: type | None = field(compare=False, default=None)


@dataclass(frozen=True)
class PickledT:
    """``rp.Pickled[T]``: pickled bytes."""

    py: object = field(compare=False, default=None)


@dataclass(frozen=True)
class ListT:
    """``list[T]`` or ``tuple[T, ...]`` (``as_tuple``): a repeated field."""

    elem: TypeRef
    as_tuple: bool = False


@dataclass(frozen=True)
class MapT:
    """``dict[K, V]`` with ``K`` in ``str``/``int``: a proto map."""

    key: Scalar
    value: TypeRef


@dataclass(frozen=True)
class OptionalT:
    """``T | None``."""

    inner: TypeRef


@dataclass(frozen=True)
class TupleT:
    """``tuple[A, B, ...]`` (a fixed length): a message with one field per position."""

    elems: tuple[TypeRef, ...]


@dataclass(frozen=True)
class UnionT:
    """``A | B | ...`` (no ``None`` member: that is ``OptionalT`` around it): a message holding a
    ``oneof`` with one case per member, in declaration order."""

    members: tuple[TypeRef, ...]


@dataclass(frozen=True)
class NoneT:
    """``None`` as a result: no field at all."""


TypeRef: TypeAlias = Scalar | EnumRef | MessageRef | PickledT | ListT | MapT | OptionalT | TupleT | UnionT | NoneT

UNION_ONEOF = "value"  # the name of the oneof in a union's message


def type_label(t: TypeRef) -> str:
    """A CamelCase name for a type's structure, used to name wrapper messages."""
    match t:
        case Scalar():
            return t.label
        case EnumRef() | MessageRef():
            return t.name
        case PickledT():
            return "Pickled"
        case ListT():
            return type_label(t.elem) + ("Tuple" if t.as_tuple else "List")
        case MapT():
            return t.key.label + type_label(t.value) + "Map"
        case OptionalT():
            return type_label(t.inner) + "Optional"  # every constructor a suffix: names cannot collide
        case TupleT():  # the suffixes close each n-ary type: tuple[int | str, float] != int | tuple[str, float]
            return "And".join(type_label(e) for e in t.elems) + f"Tuple{len(t.elems)}"  # Tuple alone: tuple[T, ...]
        case UnionT():
            return "Or".join(type_label(m) for m in t.members) + "Union"
        case NoneT():
            return "None"


def describe(t: TypeRef) -> str:
    """A Python-like spelling of a type, for fingerprints and messages."""
    match t:
        case Scalar():
            return t.py.__name__
        case EnumRef():
            return f"enum {t.name}"
        case MessageRef():
            return f"message {t.name}"
        case PickledT():
            return "Pickled"
        case ListT():
            return f"tuple[{describe(t.elem)}, ...]" if t.as_tuple else f"list[{describe(t.elem)}]"
        case MapT():
            return f"dict[{describe(t.key)}, {describe(t.value)}]"
        case OptionalT():
            return f"{describe(t.inner)} | None"
        case TupleT():
            return f"tuple[{', '.join(describe(e) for e in t.elems)}]"
        case UnionT():
            return " | ".join(describe(m) for m in t.members)
        case NoneT():
            return "None"


SlotLabel: TypeAlias = Literal["plain", "optional", "repeated", "map"]


@dataclass(frozen=True)
class Slot:
    """How one proto field holds a value.

    ``label`` is the field's cardinality; ``base`` what each element is: a ``Scalar``, an
    ``EnumRef``, a ``MessageRef`` (a dataclass, the handle or a wrapper), or ``PickledT`` (bytes).
    For maps, ``base`` is the value and ``key`` the key scalar.
    """

    label: SlotLabel
    base: Scalar | EnumRef | MessageRef | PickledT
    key: Scalar | None = None


def is_basic(t: TypeRef) -> bool:
    """True for types a proto field holds directly as one element."""
    return isinstance(t, Scalar | EnumRef | MessageRef | PickledT)


def _element_base(t: TypeRef) -> Scalar | EnumRef | MessageRef | PickledT:
    """The base of a list element or map value: the type itself, or its wrapper message."""
    if isinstance(t, Scalar | EnumRef | MessageRef | PickledT):
        return t
    return MessageRef(type_label(t))


def slot_of(t: TypeRef) -> Slot:
    """The slot for a field of Python type ``t`` (``NoneT`` has none: callers skip it)."""
    match t:
        case ListT():
            return Slot("repeated", _element_base(t.elem))
        case MapT():
            return Slot("map", _element_base(t.value), t.key)
        case OptionalT():
            inner = t.inner
            if isinstance(inner, Scalar | EnumRef | PickledT):
                return Slot("optional", inner)
            if isinstance(inner, MessageRef):
                return Slot("plain", inner)  # messages have presence already
            return Slot("plain", MessageRef(type_label(inner)))  # presence of the boxed value
        case TupleT() | UnionT():
            return Slot("plain", MessageRef(type_label(t)))
        case NoneT():
            raise ValueError("None has no slot")
        case _:
            return Slot("plain", t)


def wrapper_field(w: TypeRef) -> FieldSpec:
    """The single field of the wrapper message boxing ``w`` (a list, map or optional)."""
    return FieldSpec("value" if isinstance(w, OptionalT) else "items", 1, w)


def union_case(member: TypeRef) -> str:
    """The name of a union member's case in the union's ``oneof`` (``int``, ``point``, ``int_list``;
    a member named like the oneof itself, ``Value``, is ``value_case``)."""
    case = upper_snake(type_label(member)).lower()
    return f"{case}_case" if case == UNION_ONEOF else case


def json_name(name: str) -> str:
    """The JSON name protobuf gives a field (``item_0`` -> ``item0``)."""
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def wrapper_fields(w: TypeRef) -> tuple[FieldSpec, ...]:
    """The fields of the message boxing ``w``: a field per position of a fixed tuple, a ``oneof``
    case per member of a union, or the single field of a list, map or optional."""
    match w:
        case TupleT():
            return tuple(FieldSpec(f"item_{i}", i + 1, e) for i, e in enumerate(w.elems))
        case UnionT():
            return tuple(FieldSpec(union_case(m), i + 1, m, oneof=UNION_ONEOF) for i, m in enumerate(w.members))
        case _:
            return (wrapper_field(w),)


def wrappers_for(t: TypeRef) -> list[TypeRef]:
    """The boxed types a field of type ``t`` needs wrapper messages for, outermost first."""
    match t:
        case ListT():
            return _element_wrappers(t.elem)
        case MapT():
            return _element_wrappers(t.value)
        case OptionalT() if not is_basic(t.inner):
            return _boxed(t.inner)
        case TupleT() | UnionT():
            return _boxed(t)
        case _:
            return []


def _element_wrappers(e: TypeRef) -> list[TypeRef]:
    return [] if is_basic(e) else _boxed(e)


def _boxed(w: TypeRef) -> list[TypeRef]:
    """``w``'s own wrapper, then the wrappers its fields need."""
    out = [w]
    for f in wrapper_fields(w):
        out += _element_wrappers(f.type) if f.oneof else wrappers_for(f.type)
    return out


@dataclass(frozen=True)
class FieldSpec:
    """One message field: its name, number and Python type."""

    name: str
    number: int
    type: TypeRef
    oneof: str | None = None  # a union's case: the name of the oneof it is part of

    @property
    def slot(self) -> Slot:
        if self.oneof is not None:  # a oneof case holds one element: a list or map member is boxed
            return Slot("plain", _element_base(self.type))
        return slot_of(self.type)


MessageRole: TypeAlias = Literal["dataclass", "handle", "wrapper", "request", "response"]


@dataclass(frozen=True)
class MessageSpec:
    """A proto message. ``py`` is the dataclass for ``role == "dataclass"``; ``wraps`` the boxed
    type for wrappers (whose single field is ``items`` for lists and maps, ``value`` otherwise)."""

    name: str
    fields: tuple[FieldSpec, ...]
    role: MessageRole
    py: type | None = field(compare=False, default=None)
    wraps: TypeRef | None = None


@dataclass(frozen=True)
class EnumSpec:
    """A proto enum mirroring a Python ``enum.Enum`` (member names in order)."""

    name: str
    members: tuple[str, ...]
    py: type = field(compare=False)

    def value_name(self, member: str) -> str:
        """The proto value name: enum values share their scope in proto, so prefix them."""
        return f"{upper_snake(self.name)}_{member.upper()}"


@dataclass(frozen=True)
class ParamInfo:
    """A Python parameter of a worker function, as the caller passes it."""

    name: str
    type: TypeRef
    has_default: bool = False
    default: object = field(compare=False, default=None)


@dataclass(frozen=True)
class MethodSpec:
    """One worker function as a gRPC method.

    ``params`` are the caller-side parameters (a direct pipe's writer excluded; a reverse pipe's
    updates included, flagged by ``updates_param``). ``result`` is the rpc/reverse_pipe result,
    the pipe/direct_pipe item, or the state's initial value; ``update`` is a state's update type.
    """

    id: int
    name: str
    rpc_name: str
    kind: Kind
    params: tuple[ParamInfo, ...]
    result: TypeRef
    request: MessageSpec
    response: MessageSpec
    update: TypeRef | None = None
    updates_param: str | None = None
    is_async: bool = field(compare=False, default=False)

    @property
    def client_streaming(self) -> bool:
        return self.kind is Kind.REVERSE_PIPE

    @property
    def server_streaming(self) -> bool:
        return self.kind in (Kind.PIPE, Kind.STATE, Kind.DIRECT_PIPE)

    def canonical(self, messages: dict[str, MessageSpec], enums: dict[str, EnumSpec]) -> str:
        """A stable text of this method's id, name, kind and message schemas (for fingerprints)."""
        seen: set[str] = set()
        parts = [f"method {self.id} {self.name} {self.rpc_name} {self.kind.value}"]
        parts += [f"param {p.name}: {describe(p.type)}" for p in self.params]
        parts.append(f"result {describe(self.result)}")
        if self.update is not None:
            parts.append(f"update {describe(self.update)}")
        for msg in (self.request, self.response):
            _canonical_message(msg, messages, enums, seen, parts)
        return "\n".join(parts)


def _canonical_message(msg: MessageSpec, messages: dict[str, MessageSpec], enums: dict[str, EnumSpec],
                       seen: set[str], out: list[str]) -> None:
    if msg.name in seen:
        return
    seen.add(msg.name)
    out.append(f"message {msg.name}")
    out += [f"  {f.number} {f.name}: {describe(f.type)}" for f in msg.fields]
    for f in msg.fields:
        for name in _names_in(f.type):
            if name in enums and name not in seen:
                seen.add(name)
                out.append(f"enum {name} " + " ".join(enums[name].members))
            elif name in messages:
                _canonical_message(messages[name], messages, enums, seen, out)


def _names_in(t: TypeRef) -> list[str]:
    match t:
        case EnumRef() | MessageRef():
            return [t.name]
        case ListT():
            return _names_in(t.elem)
        case MapT():
            return _names_in(t.value)
        case OptionalT():
            return _names_in(t.inner)
        case TupleT():
            return [n for e in t.elems for n in _names_in(e)]
        case UnionT():
            return [n for m in t.members for n in _names_in(m)]
        case _:
            return []


@dataclass(frozen=True)
class ServiceSpec:
    """A worker type: one gRPC service.

    ``init`` and ``connection_init`` are the messages carrying the ``init_worker_state`` and
    ``init_connection_state`` arguments. ``fingerprint`` hashes the service name, those arguments
    and every function's canonical text; ``function_fingerprints`` does so per function, so a
    mismatch can name the function that differs.
    """

    name: str
    package: str
    methods: tuple[MethodSpec, ...]
    init: MessageSpec
    connection_init: MessageSpec
    fingerprint: str
    function_fingerprints: tuple[tuple[str, str], ...]
    py: type = field(compare=False)

    @property
    def full_name(self) -> str:
        return f"{self.package}.{self.name}" if self.package else self.name

    def method_path(self, method: MethodSpec) -> str:
        """The gRPC path, ``/package.Service/Method``."""
        return f"/{self.full_name}/{method.rpc_name}"

    def method(self, name: str) -> MethodSpec:
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(name)


@dataclass(frozen=True)
class FileSpec:
    """One ``.proto`` file: every worker type of one Python module, and the definitions they use
    (enums, then messages, in the order the file declares them)."""

    module: str
    package: str
    proto_file: str
    services: tuple[ServiceSpec, ...]
    messages: tuple[MessageSpec, ...]
    enums: tuple[EnumSpec, ...]

    def service(self, name: str) -> ServiceSpec:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(name)


def differing_functions(ours: Mapping[str, str], theirs: Mapping[str, str]) -> list[str]:
    """Names of the functions whose fingerprints differ between two sides (or exist on one only)."""
    return sorted({n for n in ours if theirs.get(n) != ours[n]} | {n for n in theirs if n not in ours})


def fingerprints(name: str, methods: tuple[MethodSpec, ...], init: MessageSpec, connection_init: MessageSpec,
                 messages: dict[str, MessageSpec], enums: dict[str, EnumSpec]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The type fingerprint and the per-function fingerprints of a service."""
    per = tuple((m.name, _sha(m.canonical(messages, enums))) for m in methods)
    seen: set[str] = set()
    parts = [f"service {name}"]
    for msg in (init, connection_init):
        _canonical_message(msg, messages, enums, seen, parts)
    parts += [f"{n} {fp}" for n, fp in per]
    return _sha("\n".join(parts)), per


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def camel(name: str) -> str:
    """``count_to`` -> ``CountTo`` (the proto method-name convention)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def upper_snake(name: str) -> str:
    """``TrafficLight`` -> ``TRAFFIC_LIGHT``."""
    out: list[str] = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.upper())
    return "".join(out)
