"""The worker's server runs on its event loop (a grpc.aio server): what user code does there, or
raises there, must not stop the loop or leave a call unanswered, and each call starts from a clean
context, as a unary call on its own task would."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

import rpc_parallel as rp
from rpc_parallel._schema import service_spec

from .conftest import Failures, Updates
from .workers import Calls, Edges, ExitsInInit, Streamer


def _each_way(conn: rp.Connection, f: rp.RpcFunction[[], int]) -> list[BaseException]:
    """The errors of ``f`` run on the call stream, as a unary call (under a deadline) and submitted."""
    errors: list[BaseException] = []
    for call in (lambda: conn.run(f), lambda: _under_deadline(conn, f), lambda: conn.submit(f).result(30)):
        with pytest.raises(rp.RemoteError) as raised:
            call()
        errors.append(raised.value)
    return errors


def _under_deadline(conn: rp.Connection, f: rp.RpcFunction[[], int]) -> int:
    with rp.deadline(30):
        return conn.run(f)


def test_a_cancelled_error_or_a_base_exception_of_user_code_is_the_callers_error() -> None:
    handle = Edges.spawn()
    try:
        with Edges.connect(handle) as conn:
            for f, remote_type in ((Edges.cancelled, "CancelledError"), (Edges.odd_async, "Odd"), (Edges.odd, "Odd")):
                for err in _each_way(conn, f):
                    assert err.remote_type.endswith(remote_type), (f, err)

            async def aio() -> str:
                async with await rp.aio.connect(handle) as aconn:
                    with pytest.raises(rp.RemoteError) as raised:
                        await aconn.run(Edges.cancelled)
                    return raised.value.remote_type

            assert asyncio.run(aio()).endswith("CancelledError")
            assert conn.run(Edges.alive)
    finally:
        handle.shutdown()


def test_sys_exit_in_an_async_one_way_or_init_ends_the_worker_with_its_code(failures: Failures) -> None:
    handle = Edges.spawn(on_failure=failures)
    with Edges.connect(handle) as conn:
        conn.run(Edges.exit_later, 5)
        crashed = failures.first()
    assert isinstance(crashed, rp.WorkerCrashedError) and "exit code 5" in str(crashed)
    with pytest.raises(rp.WorkerCrashedError, match="exit code 7"):
        ExitsInInit.spawn(7)


def test_context_variables_set_by_a_call_do_not_reach_the_next() -> None:
    handle = Edges.spawn()
    try:
        with Edges.connect(handle) as conn:
            for f in (Edges.set_async, Edges.set_plain):
                assert [conn.run(f, f"r{i}") for i in range(3)] == ["unset"] * 3  # the call stream
                with rp.deadline(30):
                    assert [conn.run(f, f"u{i}") for i in range(3)] == ["unset"] * 3  # unary
                assert [conn.submit(f, f"s{i}").result(30) for i in range(3)] == ["unset"] * 3

            async def aio() -> list[str]:
                async with await rp.aio.connect(handle) as aconn:
                    return [await aconn.run(Edges.set_async, f"a{i}") for i in range(3)]

            assert asyncio.run(aio()) == ["unset"] * 3
    finally:
        handle.shutdown()


def test_an_async_direct_pipe_writer_accepts_every_item_while_open_and_drains() -> None:
    handle = Edges.spawn()
    try:
        with Edges.connect(handle) as conn:
            updates = Updates()
            conn.run(Edges.many, 200_000, on_update=updates)
            assert updates.wait(60)
            assert updates.values[-1] == -1, "a write was refused while the stream was open"
            assert updates.values[:-1] == list(range(200_000))
    finally:
        handle.shutdown()


def test_an_async_generator_pipe_closed_mid_stream_leaves_the_worker_well(failures: Failures) -> None:
    handle = Edges.spawn(on_failure=failures)
    try:
        with Edges.connect(handle) as conn:
            for _ in range(5):
                pipe = conn.run(Edges.endless)
                assert next(pipe) == 0
                time.sleep(0.1)
                pipe.close()
            time.sleep(0.5)
            assert conn.run(Edges.alive)
        assert failures.got == []
    finally:
        handle.shutdown()


def test_an_aio_connection_serves_a_second_event_loop() -> None:
    """As a module-scoped fixture shared by tests each with a loop of its own."""
    handle = Calls.spawn()
    try:
        async def connect() -> rp.aio.Connection:
            conn = await rp.aio.connect(Calls, handle, "t")
            assert await conn.run(Calls.tagged, 1) == "t:1"
            return conn

        conn = asyncio.run(connect())

        async def again() -> None:
            assert await conn.run(Calls.tagged, 2) == "t:2"
            assert await conn.submit(Calls.tagged, 3) == "t:3"
            await conn.close()

        asyncio.run(again())
    finally:
        handle.shutdown()


def test_a_call_without_the_token_is_refused_at_once_whatever_its_shape() -> None:
    """A streaming call that sends no message, or one of a method that does not exist, too: a
    unary rejection would wait for a request message first."""
    handle = Streamer.spawn()
    try:
        name = service_spec(Streamer).full_name
        with grpc.insecure_channel(handle.address) as channel:
            calls = {
                "no message, client streaming": lambda: channel.stream_unary(f"/{name}/Fast")(iter([]), timeout=10),
                "no message, bidi": lambda: list(channel.stream_stream("/rpc_parallel.v1.Control/Pipeline")(
                    iter([]), timeout=10)),
                "unknown method": lambda: channel.stream_unary(f"/{name}/Nope")(iter([]), timeout=10),
                "unary": lambda: channel.unary_unary(f"/{name}/Release")(b"", timeout=10),
            }
            for label, call in calls.items():
                started = time.monotonic()
                with pytest.raises(grpc.RpcError) as refused:
                    call()
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, label
                assert time.monotonic() - started < 5, label
    finally:
        handle.shutdown()
