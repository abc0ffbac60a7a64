"""Large ``bytes`` values of a blocking ``rpc`` call travel unframed beside its message
(``Spliced/Call``): no copy of them on either side, and the call behaves exactly as the unary one
(results, errors, connection state, max_message_size at the byte)."""

from __future__ import annotations

import grpc
import pytest

import rpc_parallel as rp
from rpc_parallel._codec import codec_for
from rpc_parallel._proto import control_pb2
from rpc_parallel._protocol import CONN_KEY, SPLICED_CALL, SPLICED_KEY, SPLICED_ONE, TOKEN_KEY

from .workers import Calls

MiB = 1 << 20


def _pattern(n: int, seed: int) -> bytes:
    return bytes((i * 31 + seed) & 0xFF for i in range(256)) * (n // 256) + bytes(n % 256)


def test_large_values_in_and_out_equal_what_unary_calls_give(calls: rp.WorkerHandle) -> None:
    a, b = _pattern(2 * MiB, 1), _pattern(MiB + 77, 2)
    with Calls.connect(calls, "t") as conn:
        assert conn.run(Calls.concat, b"x", "-", b"y") == b"x-y"  # small: one unary message
        assert conn._spliced is None and conn._spliced_one is None
        assert conn.run(Calls.size, a) == len(a)
        assert conn._spliced_one is not None and conn._spliced is None  # one large value: Spliced/One
        assert conn.run(Calls.concat, b"", "", b) == b  # ... and a large result comes back raw
        assert conn.run(Calls.concat, b"", "x" * 5000, b) == b"x" * 5000 + b  # a header too large for metadata
        assert conn.run(Calls.concat, a, "--", b) == a + b"--" + b  # two large values, a small one between
        assert conn._spliced is not None  # went as a stream
        made = conn.run(Calls.make, 3 * MiB + 5)  # a large result comes back unframed too
        assert made == bytes(range(256)) * ((3 * MiB + 5) // 256) + b"z" * 5
        assert conn.submit(Calls.size, a).result(30) == len(a)  # submit: unary (too large to batch)


def test_errors_and_connection_state_are_those_of_unary_calls(calls: rp.WorkerHandle) -> None:
    with Calls.connect(calls, "alice") as conn:
        with pytest.raises(rp.RemoteError) as err:
            conn.run(Calls.reject, bytes(2 * MiB))
        assert err.value.remote_type == "ValueError"
        assert err.value.remote_message == f"rejected {2 * MiB} bytes from alice"
        assert conn.run(Calls.size, bytes(2 * MiB)) == 2 * MiB  # and it serves on


def test_max_message_size_holds_at_the_byte_both_ways() -> None:
    limit = 4 * MiB
    handle = Calls.spawn(settings=rp.RpcSettings(max_message_size=limit))
    codec = codec_for(Calls)
    overhead = len(codec.method("size").encode_request([bytes(limit - 100)])) - (limit - 100)
    result_overhead = len(codec.method("make").encode_result(bytes(limit - 100))) - (limit - 100)
    try:
        with Calls.connect(handle, "t") as conn:
            assert conn.run(Calls.size, bytes(limit - overhead)) == limit - overhead
            with pytest.raises(rp.MessageTooLargeError) as sent:
                conn.run(Calls.size, bytes(limit - overhead + 1))
            assert (sent.value.size, sent.value.limit) == (limit + 1, limit)
            assert len(conn.run(Calls.make, limit - result_overhead)) == limit - result_overhead
            with pytest.raises(rp.MessageTooLargeError) as got:
                conn.run(Calls.make, limit - result_overhead + 1)
            assert (got.value.size, got.value.limit) == (limit + 1, limit)
            assert conn.run(Calls.size, bytes(2 * MiB)) == 2 * MiB
    finally:
        handle.shutdown()


def test_malformed_spliced_calls_are_refused_and_the_worker_serves_on(calls: rp.WorkerHandle) -> None:
    opened = Calls.connect(calls, "raw")
    md = ((TOKEN_KEY, calls.token), (CONN_KEY, opened.connection_id))
    good = control_pb2.SplicedHeader(method="Size", message=b"", fields=[1]).SerializeToString()
    cases = {
        "garbage header": [b"\xff\xff\xff"],
        "unknown method": [control_pb2.SplicedHeader(method="Nope").SerializeToString()],
        "a value missing": [good],
        "a field that is not a large bytes one": [
            control_pb2.SplicedHeader(method="Size", fields=[7]).SerializeToString(), b"x"],
    }
    with grpc.insecure_channel(calls.address) as channel:
        call = channel.stream_stream(SPLICED_CALL, None, None)
        for what, messages in cases.items():
            with pytest.raises(grpc.RpcError) as err:
                list(call(iter(messages), metadata=md))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, what
        assert [control_pb2.SplicedHeader.FromString(m) for m in call(iter([good, b"abc"]), metadata=md)] == [
            control_pb2.SplicedHeader(message=b"\x08\x06")]  # well formed: 3 (field 1, zigzag sint64 6)
        with pytest.raises(grpc.RpcError) as no_connection:
            list(call(iter([good, b"abc"]), metadata=md[:1]))
        assert no_connection.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(grpc.RpcError) as no_token:
            list(call(iter([good, b"abc"])))
        assert no_token.value.code() == grpc.StatusCode.UNAUTHENTICATED
        one = channel.unary_unary(SPLICED_ONE, None, None)
        for header in (b"", b"\xff\xff", control_pb2.SplicedHeader(method="Size", fields=[1, 1]).SerializeToString()):
            with pytest.raises(grpc.RpcError) as err:
                one(b"abc", metadata=(*md, (SPLICED_KEY, header)))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, header
        reply, done = one.with_call(b"abc", metadata=(*md, (SPLICED_KEY, good)))
        assert (reply, dict(done.trailing_metadata())[SPLICED_KEY]) == (b"\x08\x06", b"")  # a whole message
    with opened:
        assert opened.run(Calls.size, bytes(2 * MiB)) == 2 * MiB
