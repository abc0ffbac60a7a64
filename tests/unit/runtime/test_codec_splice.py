"""Large ``bytes`` values bypass protobuf's copies: the wire bytes are spliced by hand. The result
must be the same message protobuf itself would read and write, in any field order."""

from __future__ import annotations

import pathlib
import platform
import subprocess
import sys

import pytest

import rpc_parallel as rp
from rpc_parallel._codec import SPLICE_MIN, MethodCodec, codec_for, message_classes, wire, wire_size
from rpc_parallel._schema import file_spec

from .codec_bytes_decls import Bytesy

BIG = bytes(range(256)) * (SPLICE_MIN // 256 + 7)
OTHER = b"\xff" * (3 * SPLICE_MIN)


@pytest.fixture
def put() -> MethodCodec:
    return codec_for(Bytesy).method("put")


def _request_cls() -> type:
    return message_classes(file_spec(Bytesy.__module__))["BytesyPutRequest"]


@pytest.mark.parametrize("data,more", [(BIG, b"small"), (b"small", BIG), (BIG, OTHER), (b"", b"")])
def test_requests_round_trip_and_match_protobuf(put: MethodCodec, data: bytes, more: bytes) -> None:
    values = [-5, data, "héllo", more]
    wire = put.encode_request(values)
    assert put.decode_request(wire) == values
    parsed = _request_cls().FromString(wire)  # protobuf reads what we spliced
    assert (parsed.a, parsed.data, parsed.tail, parsed.more) == (-5, data, "héllo", more)
    canonical = _request_cls()(a=-5, data=data, tail="héllo", more=more).SerializeToString()
    assert put.decode_request(canonical) == values


def test_big_field_first_in_a_protobuf_message_decodes(put: MethodCodec) -> None:
    canonical = _request_cls()(data=BIG, a=1, more=OTHER).SerializeToString()
    assert put.decode_request(canonical) == [1, BIG, "", OTHER]


def test_results_round_trip(put: MethodCodec) -> None:
    wire = put.encode_result(BIG)
    assert put.decode_result(wire) == BIG
    response = message_classes(file_spec(Bytesy.__module__))["BytesyPutResponse"]
    assert response.FromString(wire).value == BIG
    assert put.decode_result(response(value=BIG).SerializeToString()) == BIG


@pytest.mark.parametrize("data,more", [(BIG, b"small"), (b"small", BIG), (BIG, OTHER), (b"", b"")])
def test_parts_are_the_message_and_its_large_values_unframed(put: MethodCodec, data: bytes, more: bytes) -> None:
    values = [-5, data, "héllo", more]
    rest, taken = put.encode_request_parts(values)
    assert all(value is values[1] or value is values[3] for _, value in taken)  # the caller's objects: no copy
    assert b"".join((rest, *wire(taken))) == put.encode_request(values)
    assert wire_size(rest, taken) == len(put.encode_request(values))
    assert put.decode_request_parts(rest, dict(taken)) == values
    fields = _request_cls().DESCRIPTOR.fields_by_name
    large = [fields[name].number for name, v in (("data", data), ("more", more)) if len(v) >= SPLICE_MIN]
    assert [n for n, _ in taken] == large and len(rest) < SPLICE_MIN


def test_result_parts(put: MethodCodec) -> None:
    rest, taken = put.encode_result_parts(BIG)
    assert (rest, taken) == (b"", [(1, BIG)]) and taken[0][1] is BIG
    assert put.decode_result_parts(rest, dict(taken)) == BIG
    small_rest, none = put.encode_result_parts(b"abc")
    assert none == [] and put.decode_result_parts(small_rest, {}) == b"abc"


def test_large_values_for_fields_that_are_not_large_bytes_ones_are_refused(put: MethodCodec) -> None:
    rest, _ = put.encode_request_parts([1, b"", "t", b""])
    with pytest.raises(rp.ProtocolError):
        put.decode_request_parts(rest, {3: b"x" * 10})


def test_optional_and_repeated_bytes_take_the_protobuf_path() -> None:
    maybe = codec_for(Bytesy).method("maybe")
    assert maybe.decode_request(maybe.encode_request([BIG])) == [BIG]
    assert maybe.decode_request(maybe.encode_request([None])) == [None]
    assert maybe.decode_result(maybe.encode_result([BIG, b"x"])) == [BIG, b"x"]


@pytest.mark.parametrize("cut", [1, 10, len(BIG) // 2])
def test_truncated_messages_are_protocol_errors(put: MethodCodec, cut: int) -> None:
    wire = put.encode_request([1, BIG, "t", b""])
    with pytest.raises(rp.ProtocolError):
        put.decode_request(wire[:-cut])


def test_wrong_types_are_still_refused(put: MethodCodec) -> None:
    with pytest.raises(TypeError, match="data"):
        put.bind((1, "not bytes" * SPLICE_MIN, "t", b""), {})


_FAULTS_SCRIPT = """
import resource, sys
from rpc_parallel._codec import _splice, codec_for
from tests.unit.runtime.codec_bytes_decls import Bytesy
if sys.argv[1] == "cold":
    _splice._allocator_warm = True  # as if warmed: skips the warming
put = codec_for(Bytesy).method("put")
data = b"\\xa5" * (16 << 20)
put.encode_request([0, data, "", b""])
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    wire = put.encode_request([0, data, "", b""])
    copy = wire[1:]  # gRPC's own copy of the message, alive at the same time
    del wire, copy
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="about glibc's allocator")
def test_sending_large_bytes_reuses_memory_instead_of_faulting_in_fresh_pages() -> None:
    """Two live 16 MiB copies per call crossed glibc's trim threshold, so every call faulted in
    4,096 fresh pages per copy; after the codec warmed the allocator, calls reuse the memory."""
    root = pathlib.Path(__file__).resolve().parents[3]

    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT, mode], cwd=root, check=True,
                             capture_output=True, text=True).stdout
        return int(out)

    warm = faults("warm")
    assert warm < 2 * 4096  # the heap grows once, then its pages are reused
    # without warming, fresh pages on most calls (how many depends on what the imports left on the
    # heap: 6 to 16 of the 16 copies here)
    assert faults("cold") > warm + 3 * 4096
