"""Typed values in messages: one field's value (``Part``), a message carrying one value (``Value``)
or a batch of items (``Batch``), and decoders that raise ``ProtocolError`` for bad bytes."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message

from .._errors import ProtocolError
from .._schema import FieldSpec, ListT, MessageSpec
from ._checks import Bad, spell
from ._compiler import Compiler, is_direct
from ._splice import Splice, is_plain_bytes, joined, spliced_decoder

__all__ = ("Batch", "Part", "Value", "decoder", "encode_error", "read_none", "reader")

_C = TypeVar("_C")


class Part:
    """One typed value of a message: its field's setter/getter, its check and how errors name it."""

    __slots__ = ("check", "declared", "direct", "get", "label", "name", "put", "root")

    def __init__(self, compiler: Compiler, f: FieldSpec, label: str, root: str) -> None:
        self.name = f.name
        self.direct = is_direct(f.type)
        self.put, self.get = compiler.field(f)
        self.check = compiler.check(f.type)
        self.label = label
        self.root = root
        self.declared = spell(f.type)


def decoder(cls: type[Message], read: Callable[[Message], _C], what: str) -> Callable[[bytes], _C]:
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


def reader(parts: Sequence[Part]) -> Callable[[Message], list[Any]]:
    """Reads every part of a message into a list, in order."""
    getters = tuple(p.get for p in parts)
    if len(getters) == 1:
        (get,) = getters
        return lambda m: [get(m)]
    if getters and all(p.direct for p in parts):
        every = operator.attrgetter(*(p.name for p in parts))  # one C call
        return lambda m: list(every(m))
    return lambda m: [get(m) for get in getters]


def encode_error(function: str, label: str, exc: Exception) -> TypeError:
    """The error for a value that passed its type check but that protobuf refused."""
    return TypeError(f"{function}() {label} cannot be encoded: {type(exc).__name__}: {exc}")


class Value:
    """A message carrying one typed value in one field (a result, a state, an init argument), or
    none when the type is ``None``."""

    __slots__ = ("cls", "decode", "function", "label", "part", "splice", "what")

    def __init__(self, compiler: Compiler, message: MessageSpec, field: str, function: str, label: str) -> None:
        self.cls = compiler.classes[message.name]
        self.function = function
        self.label = label
        self.what = f"{function} {message.name}"
        found = [f for f in message.fields if f.name == field]
        self.part = Part(compiler, found[0], label, label) if found else None
        self.decode: Callable[[bytes], Any] = decoder(self.cls, self.part.get if self.part else read_none, self.what)
        self.splice = Splice([(0, found[0].number)]) if found and is_plain_bytes(found[0].type) else None
        if self.splice is not None:
            self.decode = spliced_decoder(self.splice, self.decode, lambda _, found: found[0])

    def encode(self, value: Any) -> bytes:
        rest, taken = self.encode_parts(value)
        return joined(rest, taken)

    def encode_parts(self, value: Any) -> tuple[bytes, list[tuple[int, bytes]]]:
        """``encode(value)`` as a message and the large ``bytes`` value taken out of it (by field
        number), which can travel unframed beside it."""
        part = self.part
        if part is None:
            if value is not None:
                raise Bad("None", value).error(self.function, self.label, self.label, "None")
            return b"", []
        try:
            part.check(value)
        except Bad as e:
            raise e.error(self.function, part.label, part.root, part.declared) from None
        taken = self.splice.take((value,)) if self.splice is not None else None
        if taken is not None:
            return b"", taken[1]
        m = self.cls()
        try:
            part.put(m, value)
        except Exception as exc:
            raise encode_error(self.function, part.label, exc) from exc
        return m.SerializeToString(), []

    def decode_parts(self, rest: bytes, found: Mapping[int, bytes]) -> Any:
        """The value of ``encode_parts``'s message and large value."""
        if found:
            if self.splice is None or list(found) != [self.splice.slots[0][1]]:
                raise ProtocolError(f"{self.what}: no large bytes fields {sorted(found)}")
            return found[self.splice.slots[0][1]]
        return self.decode(rest)


def read_none(m: Message) -> None:
    """The value of a message whose type is ``None`` (it has no field)."""
    return None


class Batch:
    """A repeated field carrying a batch of typed items (stream items, updates)."""

    __slots__ = ("check", "cls", "declared", "decode", "function", "get", "label", "put", "what")

    def __init__(self, compiler: Compiler, message: MessageSpec, field: str, function: str, label: str) -> None:
        (f,) = [f for f in message.fields if f.name == field]
        assert isinstance(f.type, ListT), f
        self.cls = compiler.classes[message.name]
        self.put, self.get = compiler.field(f)
        self.check = compiler.check(f.type)
        self.declared = spell(f.type.elem)
        self.function = function
        self.label = label
        self.what = f"{function} {message.name}"
        self.decode: Callable[[bytes], list[Any]] = decoder(self.cls, self.get, self.what)

    def encode(self, items: Sequence[Any]) -> bytes:
        try:
            self.check(items)
        except Bad as e:
            if not e.path:  # not a sequence at all
                raise TypeError(f"{self.function}(): a batch of items must be a list, "
                                f"got {type(items).__name__}") from None
            e.path.pop()  # the index in the batch means nothing to the user
            raise e.error(self.function, self.label, self.label, self.declared) from None
        m = self.cls()
        try:
            self.put(m, items)
        except Exception as exc:
            raise encode_error(self.function, self.label, exc) from exc
        return m.SerializeToString()
