"""Large ``bytes`` values, written and read around protobuf: taken out of a message's values and
appended to its wire bytes by hand, or cut out of them; and the allocator warm-up for sending them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from .._schema import Scalar, TypeRef

__all__ = ("SPLICE_MIN", "Splice", "is_plain_bytes", "joined", "merge_values", "spliced_decoder", "wire",
           "wire_size")

_C = TypeVar("_C")

# A ``bytes`` value at least this large is written and read around protobuf: protobuf would copy it
# into its arena, again into the serialized string, and twice more when parsing. Splicing the wire
# bytes by hand copies it once each way (proto3 parsers accept fields in any order).
SPLICE_MIN = 1 << 16


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


def is_plain_bytes(t: TypeRef) -> bool:
    return isinstance(t, Scalar) and t.proto == "bytes"


class Splice:
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
            if type(v) is bytes and len(v) >= SPLICE_MIN:
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
                    if index is not None and size >= SPLICE_MIN and pos + size <= end:
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


def spliced_decoder(splice: Splice, decode: Callable[[bytes], _C],
                    merge: Callable[[_C, dict[int, bytes]], _C]) -> Callable[[bytes], _C]:
    """``decode`` for messages that may carry large spliced ``bytes`` fields: those are cut out of
    ``data`` and put back into the decoded value by ``merge``."""

    def decode_spliced(data: bytes) -> _C:
        if len(data) < SPLICE_MIN:
            return decode(data)
        rest, found = splice.cut(data)
        value = decode(rest)
        return merge(value, found) if found else value

    return decode_spliced


def merge_values(values: list[Any], found: dict[int, bytes]) -> list[Any]:
    """``values`` with the large values ``found`` (by index) in their places."""
    for index, value in found.items():
        values[index] = value
    return values
