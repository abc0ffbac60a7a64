"""Plain JSON <-> protobuf messages, driven by message descriptors alone (no schema model).

*Plain JSON* is what a Python caller would pass: numbers for ints, enum member names, lists,
objects and ``null`` for containers and optionals (``to_message``, ``to_plain``).

The generated wrapper messages that box nested containers and optionals (``IntList``,
``StrUnitMap``, ``IntOptional``...) are recognised by their structure, a single ``items``/``value``
field whose type spells the message's name, and travel as the plain value they box.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import descriptor_pb2, json_format
from google.protobuf.message import Message

from .._errors import DynamicCallError
from .._schema import upper_snake

__all__ = ("FieldDescriptor", "is_map", "plain_field", "to_message", "to_plain")

# protobuf's stubs type descriptors as unions of its pure-Python and upb classes with optional
# message_type/enum_type; this module checks those at run time, so they are typed loosely here.
Descriptor = Any
FieldDescriptor = Any
EnumDescriptor = Any
_FD = descriptor_pb2.FieldDescriptorProto
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


def _enum_prefix(e: EnumDescriptor) -> str:
    return upper_snake(e.name) + "_"


def to_plain(m: Message) -> Any:
    """The plain JSON value of message ``m``: an object of its fields, or the value a wrapper boxes."""
    d = m.DESCRIPTOR
    wrapped = _wrapped_field(d)
    if wrapped is not None:
        return plain_field(m, wrapped)
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


def to_message(cls: type[Message], fields: dict[str, Any], where: str) -> Message:
    """A ``cls`` message from plain JSON ``fields`` (every field of ``cls``, by name).

    Plain values are checked against the schema; ``where`` names the value in errors.
    """
    d = cls.DESCRIPTOR
    data = _json_object(fields, d, where, partial=True)
    message = cls()
    try:
        json_format.ParseDict(data, message)
    except json_format.ParseError as exc:
        raise DynamicCallError(f"{where}: {exc}") from None
    return message


def _json_message(value: Any, d: Descriptor, where: str) -> Any:
    wrapped = _wrapped_field(d)
    if wrapped is not None:
        out = _json_field(value, wrapped, where)
        return {} if out is None else {wrapped.name: out}
    if not isinstance(value, dict):
        raise DynamicCallError(f"{where}: expected a JSON object with fields {_names(d)}, got {_show(value)}")
    return _json_object(value, d, where, partial=False)


def _json_object(value: dict[str, Any], d: Descriptor, where: str, *, partial: bool) -> dict[str, Any]:
    unknown = [k for k in value if k not in d.fields_by_name]
    if unknown:
        raise DynamicCallError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; "
                               f"{d.name} has {_names(d)}")
    missing = [f.name for f in d.fields if f.name not in value]
    if missing and not partial:
        raise DynamicCallError(f"{where}: missing field(s) {', '.join(map(repr, missing))} of {d.name} "
                               "(rpcpar does not know Python defaults: give every field)")
    out: dict[str, Any] = {}
    for key, v in value.items():
        converted = _json_field(v, d.fields_by_name[key], f"{where}.{key}")
        if converted is not None:
            out[key] = converted
    return out


def _json_field(value: Any, f: FieldDescriptor, where: str) -> Any:
    """The proto-JSON form of the plain ``value`` of field ``f`` (None: leave the field unset)."""
    if is_map(f):
        if not isinstance(value, dict):
            raise DynamicCallError(f"{where}: expected a JSON object (a dict), got {_show(value)}")
        item = f.message_type.fields_by_name["value"]
        return {k: _json_element(v, item, f"{where}[{k!r}]") for k, v in value.items()}
    if f.is_repeated:
        if not isinstance(value, list):
            raise DynamicCallError(f"{where}: expected a JSON list, got {_show(value)}")
        return [_json_element(v, f, f"{where}[{i}]") for i, v in enumerate(value)]
    if value is None:
        if f.has_presence:
            return None
        raise DynamicCallError(f"{where}: null is not allowed here")
    return _json_element(value, f, where)


def _json_element(value: Any, f: FieldDescriptor, where: str) -> Any:
    if f.type == _FD.TYPE_MESSAGE:
        return _json_message(value, f.message_type, where)
    if f.type == _FD.TYPE_ENUM:
        return _enum_value(value, f.enum_type, where)
    if value is None:
        raise DynamicCallError(f"{where}: null is not allowed here")
    return value  # scalars: json_format checks them


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
