"""Plain JSON <-> protobuf messages, driven by message descriptors alone (no schema model).

*Plain JSON* is what a Python caller would pass: numbers for ints, enum member names, lists,
objects and ``null`` for containers and optionals (``to_message``, ``to_plain``).

The generated wrapper messages that box nested containers and optionals (``IntList``,
``StrUnitMap``, ``IntOptional``...) are recognised by their structure, a single ``items``/``value``
field whose type spells the message's name, and travel as the plain value they box; a fixed
tuple's message (``...Tuple2``: fields ``item_0``, ``item_1``...) travels as a JSON list, a union's
(``...Union``: one ``oneof value``) as the plain value of its member. A dataclass field left out
takes its Python default when the caller has it (``Defaults``, from the worker's ``Describe``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

from google.protobuf import descriptor_pb2, json_format
from google.protobuf.message import Message

from .._errors import DynamicCallError
from .._schema import upper_snake

__all__ = ("Defaults", "FieldDescriptor", "is_map", "plain_field", "to_message", "to_plain")

# protobuf's stubs type descriptors as unions of its pure-Python and upb classes with optional
# message_type/enum_type; this module checks those at run time, so they are typed loosely here.
Descriptor = Any
FieldDescriptor = Any
EnumDescriptor = Any
_FD = descriptor_pb2.FieldDescriptorProto
_UNION_ONEOF = "value"
_FIXED_TUPLE = re.compile(r"Tuple\d+$")  # IntAndStrTuple2 (IntTuple is a tuple[int, ...]: a list)

# A message's full name -> the fields with a Python default, and a message holding those defaults.
Defaults = Mapping[str, tuple[frozenset[str], Message]]
_SCALAR_LABELS: dict[int, tuple[str, ...]] = {
    _FD.TYPE_SINT64: ("Int",), _FD.TYPE_DOUBLE: ("Float",), _FD.TYPE_BOOL: ("Bool",),
    _FD.TYPE_STRING: ("Str",), _FD.TYPE_BYTES: ("Bytes", "Pickled"),
}


def is_map(f: FieldDescriptor) -> bool:
    """Whether field ``f`` is a map (a repeated field of map entries)."""
    return f.message_type is not None and f.message_type.GetOptions().map_entry


def _base_labels(f: FieldDescriptor) -> tuple[str, ...]:
    """How the wrapper-naming scheme spells the element type of field ``f``."""
    if f.message_type is not None:
        return (f.message_type.name,)
    if f.enum_type is not None:
        return (f.enum_type.name,)
    return _SCALAR_LABELS.get(f.type, ())


def _wrapped_field(d: Descriptor) -> FieldDescriptor | None:
    """The single field of a generated wrapper message, or None for any other message."""
    if len(d.fields) != 1:
        return None
    (f,) = d.fields
    if f.number != 1:
        return None
    if f.name == "items" and is_map(f):
        key, value = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
        names = {k + v + "Map" for k in _base_labels(key) for v in _base_labels(value)}
    elif f.name == "items" and f.is_repeated:
        names = {b + s for b in _base_labels(f) for s in ("List", "Tuple")}
    elif f.name == "value" and not f.is_repeated and f.has_presence:
        names = {b + "Optional" for b in _base_labels(f)}
    else:
        return None
    return f if d.name in names else None


def _is_tuple(d: Descriptor) -> bool:
    """A fixed tuple's message: fields ``item_0``, ``item_1``... numbered from 1, in no oneof."""
    fields = d.fields
    return bool(fields) and _FIXED_TUPLE.search(d.name) is not None and all(
        f.name == f"item_{i}" and f.number == i + 1 and (f.containing_oneof is None or f.containing_oneof.name.startswith("_"))
        for i, f in enumerate(fields))


def _is_union(d: Descriptor) -> bool:
    """A union's message: every field a case of its one ``oneof value``."""
    return (d.name.endswith("Union") and len(d.oneofs) == 1 and d.oneofs[0].name == _UNION_ONEOF
            and len(d.oneofs[0].fields) == len(d.fields) > 0)


def _enum_prefix(e: EnumDescriptor) -> str:
    return upper_snake(e.name) + "_"


def to_plain(m: Message) -> Any:
    """The plain JSON value of message ``m``: an object of its fields, or the value a wrapper boxes."""
    d = m.DESCRIPTOR
    wrapped = _wrapped_field(d)
    if wrapped is not None:
        return plain_field(m, wrapped)
    if _is_tuple(d):
        return [plain_field(m, f) for f in d.fields]
    if _is_union(d):
        case = m.WhichOneof(_UNION_ONEOF)
        return None if case is None else plain_field(m, d.fields_by_name[case])
    return {f.name: plain_field(m, f) for f in d.fields}


def plain_field(m: Message, f: FieldDescriptor) -> Any:
    """The plain JSON value of field ``f`` of message ``m`` (``None``: an optional field not set)."""
    value = getattr(m, f.name)
    if is_map(f):
        item = f.message_type.fields_by_name["value"]
        return {k: _plain_element(v, item) for k, v in value.items()}
    if f.is_repeated:
        return [_plain_element(v, f) for v in value]
    if f.has_presence and not m.HasField(f.name):
        return None
    return _plain_element(value, f)


def _plain_element(v: Any, f: FieldDescriptor) -> Any:
    if f.type == _FD.TYPE_MESSAGE:
        return to_plain(v)
    if f.type == _FD.TYPE_ENUM:
        found = f.enum_type.values_by_number.get(v)
        return found.name.removeprefix(_enum_prefix(f.enum_type)) if found is not None else v
    if f.type == _FD.TYPE_BYTES:
        return base64.b64encode(v).decode()
    return v


def to_message(cls: type[Message], fields: dict[str, Any], where: str, defaults: Defaults | None = None) -> Message:
    """A ``cls`` message from plain JSON ``fields`` (every field of ``cls``, by name).

    Plain values are checked against the schema; ``where`` names the value in errors. A dataclass
    field left out takes its default from ``defaults``; without one it is an error.
    """
    d = cls.DESCRIPTOR
    data = _ToJson(defaults or {}).object(fields, d, where, partial=True)
    message = cls()
    try:
        json_format.ParseDict(data, message)
    except json_format.ParseError as exc:
        raise DynamicCallError(f"{where}: {exc}") from None
    return message


class _ToJson:
    """Plain JSON -> proto JSON (what ``json_format.ParseDict`` reads), checked against descriptors."""

    def __init__(self, defaults: Defaults) -> None:
        self.defaults = defaults
        self.default_json: dict[str, dict[str, Any]] = {}

    def message(self, value: Any, d: Descriptor, where: str) -> Any:
        wrapped = _wrapped_field(d)
        if wrapped is not None:
            out = self.field(value, wrapped, where)
            return {} if out is None else {wrapped.name: out}
        if _is_tuple(d):
            return self._tuple(value, d, where)
        if _is_union(d):
            return self._union(value, d, where)
        if not isinstance(value, dict):
            raise DynamicCallError(f"{where}: expected a JSON object with fields {_names(d)}, got {_show(value)}")
        return self.object(value, d, where, partial=False)

    def object(self, value: dict[str, Any], d: Descriptor, where: str, *, partial: bool) -> dict[str, Any]:
        unknown = [k for k in value if k not in d.fields_by_name]
        if unknown:
            raise DynamicCallError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; "
                                   f"{d.name} has {_names(d)}")
        out: dict[str, Any] = {}
        if not partial:
            defaulted, _ = self.defaults.get(d.full_name, (frozenset(), None))
            missing = [f.name for f in d.fields if f.name not in value and f.name not in defaulted]
            if missing:
                have = f" ({', '.join(sorted(defaulted))} may be left out)" if defaulted else ""
                raise DynamicCallError(f"{where}: missing field(s) {', '.join(map(repr, missing))} of {d.name}{have}")
            for name in defaulted:
                if name not in value and name in (given := self._default_json(d.full_name)):
                    out[name] = given[name]
        for key, v in value.items():
            converted = self.field(v, d.fields_by_name[key], f"{where}.{key}")
            if converted is not None:
                out[key] = converted
        return out

    def _default_json(self, name: str) -> dict[str, Any]:
        """The proto JSON of a message's defaults (a field at its zero value is absent)."""
        if name not in self.default_json:
            self.default_json[name] = json_format.MessageToDict(self.defaults[name][1],
                                                                preserving_proto_field_name=True)
        return self.default_json[name]

    def _tuple(self, value: Any, d: Descriptor, where: str) -> dict[str, Any]:
        fields = d.fields
        if not isinstance(value, list) or len(value) != len(fields):
            raise DynamicCallError(f"{where}: expected a JSON list of {len(fields)} items, got {_show(value)}")
        out: dict[str, Any] = {}
        for i, (f, v) in enumerate(zip(fields, value, strict=True)):
            converted = self.field(v, f, f"{where}[{i}]")
            if converted is not None:
                out[f.name] = converted
        return out

    def _union(self, value: Any, d: Descriptor, where: str) -> dict[str, Any]:
        """The first member (of the value's own JSON kind first) whose type ``value`` has, down to
        its leaves (so ``["7", 1]`` is a ``tuple[str, int]``, not a ``list[int]`` of a coerced "7")."""
        cases = sorted((f for f in d.fields if _fits(value, f)), key=lambda f: not _exactly(f, value))
        for f in cases:
            try:
                return {f.name: self.element(value, f, where)}
            except DynamicCallError:
                continue
        raise DynamicCallError(f"{where}: {_show(value)} is none of the union's members "
                               f"({', '.join(f.name for f in d.fields)})")

    def field(self, value: Any, f: FieldDescriptor, where: str) -> Any:
        """The proto-JSON form of the plain ``value`` of field ``f`` (None: leave the field unset)."""
        if is_map(f):
            if not isinstance(value, dict):
                raise DynamicCallError(f"{where}: expected a JSON object (a dict), got {_show(value)}")
            item = f.message_type.fields_by_name["value"]
            return {k: self.element(v, item, f"{where}[{k!r}]") for k, v in value.items()}
        if f.is_repeated:
            if not isinstance(value, list):
                raise DynamicCallError(f"{where}: expected a JSON list, got {_show(value)}")
            return [self.element(v, f, f"{where}[{i}]") for i, v in enumerate(value)]
        if value is None:
            if f.has_presence:
                return None
            raise DynamicCallError(f"{where}: null is not allowed here")
        return self.element(value, f, where)

    def element(self, value: Any, f: FieldDescriptor, where: str) -> Any:
        if f.type == _FD.TYPE_MESSAGE:
            return self.message(value, f.message_type, where)
        if f.type == _FD.TYPE_ENUM:
            return _enum_value(value, f.enum_type, where)
        if value is None:
            raise DynamicCallError(f"{where}: null is not allowed here")
        return value  # scalars: json_format checks them


# the JSON kinds a union case of each proto type takes; the first is its own kind
_TAKES: dict[int, tuple[type, ...]] = {
    _FD.TYPE_BOOL: (bool,), _FD.TYPE_SINT64: (int,), _FD.TYPE_DOUBLE: (float, int), _FD.TYPE_STRING: (str,),
    _FD.TYPE_BYTES: (str,), _FD.TYPE_ENUM: (str, int),
}


def _fits(value: Any, f: FieldDescriptor, *, element: bool = False) -> bool:
    """Whether plain ``value`` has the type of field ``f`` (of one element of it, with ``element``),
    down to every leaf: JSON kinds as they are, no coercion."""
    if not element and is_map(f):
        item = f.message_type.fields_by_name["value"]
        key = f.message_type.fields_by_name["key"]
        return isinstance(value, dict) and all(
            (key.type == _FD.TYPE_STRING or _is_int_text(k)) and _fits(v, item, element=True) for k, v in value.items())
    if not element and f.is_repeated:
        return isinstance(value, list) and all(_fits(v, f, element=True) for v in value)
    if value is None:  # an optional field's; never a union member's (a union with None is optional)
        in_union = f.containing_oneof is not None and not f.containing_oneof.name.startswith("_")
        return not element and f.has_presence and not in_union
    if f.type == _FD.TYPE_MESSAGE:
        return _fits_message(value, f.message_type)
    if f.type == _FD.TYPE_ENUM:
        prefix = _enum_prefix(f.enum_type)
        if isinstance(value, str):
            wanted = value.upper()
            return any(wanted in (v.name, v.name.removeprefix(prefix)) for v in f.enum_type.values)
        return type(value) is int and value in f.enum_type.values_by_number
    kinds = _TAKES.get(f.type, ())
    return isinstance(value, kinds) and (f.type == _FD.TYPE_BOOL or not isinstance(value, bool))


def _fits_message(value: Any, d: Descriptor) -> bool:
    wrapped = _wrapped_field(d)
    if wrapped is not None:
        return _fits(value, wrapped)
    if _is_tuple(d):
        return isinstance(value, list) and len(value) == len(d.fields) and all(
            _fits(v, f) for v, f in zip(value, d.fields, strict=True))
    if _is_union(d):
        return any(_fits(value, f) for f in d.fields)
    return isinstance(value, dict) and all(k in d.fields_by_name and _fits(v, d.fields_by_name[k])
                                           for k, v in value.items())


def _is_int_text(key: Any) -> bool:
    try:
        int(key)
    except (TypeError, ValueError):
        return False
    return True


def _exactly(f: FieldDescriptor, value: Any) -> bool:
    """Whether ``value`` is of the JSON kind case ``f`` is made for (3 is an int before a float)."""
    if f.type == _FD.TYPE_MESSAGE:
        d = f.message_type
        listy = _is_tuple(d) or ((w := _wrapped_field(d)) is not None and w.is_repeated and not is_map(w))
        return isinstance(value, list) == listy
    kinds = _TAKES.get(f.type, ())
    return bool(kinds) and type(value) is kinds[0] and f.type not in (_FD.TYPE_BYTES, _FD.TYPE_ENUM)


def _enum_value(value: Any, e: EnumDescriptor, where: str) -> str:
    prefix = _enum_prefix(e)
    if isinstance(value, int) and not isinstance(value, bool) and value in e.values_by_number:
        return str(e.values_by_number[value].name)
    if isinstance(value, str):
        wanted = value.upper()
        for v in e.values:
            if wanted in (v.name, v.name.removeprefix(prefix)):
                return str(v.name)
    choices = ", ".join(v.name.removeprefix(prefix) for v in e.values)
    raise DynamicCallError(f"{where}: {_show(value)} is not a member of enum {e.name} ({choices})")


def _names(d: Descriptor) -> str:
    return ", ".join(repr(f.name) for f in d.fields) or "no fields"


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
