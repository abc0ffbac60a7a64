"""Hostile input through raw gRPC: random bytes to every method, missing and wrong tokens, and
messages exactly at and one byte over the size limit in each direction."""

from __future__ import annotations

import random
from collections import Counter as Tally
from collections.abc import Iterator

import grpc
import pytest

import rpc_parallel as rp
from rpc_parallel import Kind
from rpc_parallel._schema import service_spec
from rpc_parallel._settings import grpc_options
from tests.integration.fault_workers import Color, Sink
from tests.integration.workers import Blob

pytestmark = pytest.mark.integration

TOKEN_KEY = "rpcpar-token"
CALLS_PER_METHOD = 1000
# what a worker may answer to garbage: decoded and served (OK), refused as undecodable
# (INVALID_ARGUMENT), or the function raised on strange but decodable values (UNKNOWN)
ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNKNOWN}


def _garbage(rng: random.Random) -> bytes:
    n = rng.choice((0, 1, 2, 3, 5, 8, 16, 64, 300))
    return rng.randbytes(n)


def _status(call: Iterator[bytes] | None, future: grpc.Future | None = None) -> grpc.StatusCode:
    try:
        if future is not None:
            future.result(timeout=30)
        elif call is not None:
            for _ in call:
                pass
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.timeout(180)
def test_random_bytes_to_every_method_get_an_error_and_the_worker_serves_on() -> None:
    failures: list[BaseException] = []
    handle = Sink.spawn(0, on_failure=failures.append, name="sink")
    spec = service_spec(Sink)
    rng = random.Random(20261128)
    seen: dict[str, Tally[grpc.StatusCode]] = {}
    channel = grpc.insecure_channel(handle.address, options=grpc_options(handle.settings, server=False))
    md = ((TOKEN_KEY, handle.token),)
    try:
        for m in spec.methods:
            path = spec.method_path(m)
            tally: Tally[grpc.StatusCode] = Tally()
            if m.kind in (Kind.RPC, Kind.ONE_WAY):
                call = channel.unary_unary(path)
                futures = [call.future(_garbage(rng), metadata=md, timeout=30) for _ in range(CALLS_PER_METHOD)]
                tally.update(_status(None, f) for f in futures)
            elif m.kind is Kind.REVERSE_PIPE:
                stream_call = channel.stream_unary(path)
                for _ in range(CALLS_PER_METHOD):
                    requests = [_garbage(rng) for _ in range(rng.randint(0, 3))]
                    tally[_status(None, stream_call.future(iter(requests), metadata=md, timeout=30))] += 1
            else:
                stream = channel.unary_stream(path)
                for _ in range(CALLS_PER_METHOD):
                    tally[_status(stream(_garbage(rng), metadata=md, timeout=30))] += 1
            seen[m.name] = tally
        assert all(set(t) <= ALLOWED for t in seen.values()), seen
        # the garbage really was refused, not silently accepted everywhere
        assert all(t[grpc.StatusCode.INVALID_ARGUMENT] > 0 for name, t in seen.items() if name != "ping"), seen
        assert sum(t.total() for t in seen.values()) == CALLS_PER_METHOD * len(spec.methods)
        with Sink.connect(handle) as conn:
            assert conn.run(Sink.many, 1, "ab", [1.0], {"k": 1}, None, Color.RED, b"", None) == 4
    finally:
        channel.close()
        handle.shutdown()
    assert failures == []


def test_calls_without_or_with_a_wrong_token_run_no_user_code() -> None:
    handle = Sink.spawn(0, name="sink-auth")
    spec = service_spec(Sink)
    channel = grpc.insecure_channel(handle.address)
    try:
        many = channel.unary_unary(spec.method_path(next(m for m in spec.methods if m.name == "many")))
        for md in ((), ((TOKEN_KEY, "0" * len(handle.token)),), ((TOKEN_KEY, ""),)):
            with pytest.raises(grpc.RpcError) as err:
                many(b"", metadata=md, timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with Sink.connect(handle) as conn:
            assert conn.run(Sink.ping) == 0  # no call reached `many`
    finally:
        channel.close()
        handle.shutdown()


def _overhead(n: int) -> int:
    """Bytes a ``bytes`` field 1 of length ``n`` adds around its payload: tag + length varint."""
    return 1 + len(_varint(n))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def test_messages_at_the_limit_pass_and_one_byte_over_fail_in_each_direction() -> None:
    limit = 1 << 20
    handle = Blob.spawn(name="blob-limit", settings=rp.RpcSettings(max_message_size=limit))
    at = limit - _overhead(limit)  # a payload whose message is exactly `limit` bytes
    assert at + _overhead(at) == limit
    try:
        with Blob.connect(handle) as conn:
            assert conn.run(Blob.size, b"\0" * at) == at  # request at the limit
            with pytest.raises(rp.MessageTooLargeError) as sent:
                conn.run(Blob.size, b"\0" * (at + 1))  # request one byte over
            assert (sent.value.size, sent.value.limit) == (limit + 1, limit)
            assert len(conn.run(Blob.make, at)) == at  # response at the limit
            with pytest.raises(rp.MessageTooLargeError) as got:
                conn.run(Blob.make, at + 1)  # response one byte over
            assert (got.value.size, got.value.limit) == (limit + 1, limit)
            assert conn.run(Blob.echo, b"still here") == b"still here"
        # and a raw client that skips our own size check is refused by the worker's gRPC server
        spec = service_spec(Blob)
        size = next(m for m in spec.methods if m.name == "size")
        channel = grpc.insecure_channel(handle.address)
        try:
            call = channel.unary_unary(spec.method_path(size))
            payload = b"\x0a" + _varint(at + 1) + b"\0" * (at + 1)
            with pytest.raises(grpc.RpcError) as raw:
                call(payload, metadata=((TOKEN_KEY, handle.token),), timeout=10)
            assert raw.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            ok = b"\x0a" + _varint(at) + b"\0" * at
            assert call(ok, metadata=((TOKEN_KEY, handle.token),), timeout=10) == b"\x08" + _varint(at * 2)
        finally:
            channel.close()
    finally:
        handle.shutdown()
