"""A connection's blocking ``run`` of an rpc rides its ``Control/Call`` stream, one call at a time
(about half the cost of a unary call): each call must behave exactly as the unary call of its
method, and a call that finds the stream busy (another thread's call), or that runs under an
``rp.deadline``, goes unary."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import rpc_parallel as rp
from rpc_parallel._protocol import PIPELINE_PART

from .conftest import Failures
from .workers import Calls


def _on_stream(conn: rp.Connection) -> bool:
    """Whether the connection's call stream is open (a blocking call went on it)."""
    return conn._calls._replies is not None


def test_results_errors_and_state_are_those_of_unary_calls(calls: rp.WorkerHandle) -> None:
    with Calls.connect(calls, "t") as conn:
        assert conn.run(Calls.tagged, 1) == "t:1"
        assert _on_stream(conn)
        with pytest.raises(rp.RemoteError) as streamed:
            conn.run(Calls.fail, "boom")
        with rp.deadline(30), pytest.raises(rp.RemoteError) as unary:  # under a deadline: a unary call
            conn.run(Calls.fail, "boom")
        for err in (streamed.value, unary.value):
            assert (err.remote_type, err.remote_message) == ("ValueError", "boom")
            assert "raise ValueError(message)" in err.remote_traceback
            assert err.worker_id == calls.worker_id
        assert conn.run(Calls.tagged, 2) == "t:2"  # the stream goes on after a failed call
        assert conn.run(Calls.later, 4) == 8  # an async def function
        with pytest.raises(TypeError):
            conn.run(Calls.tagged, "not an int")  # checked before anything is sent


def test_large_results_come_in_parts(calls: rp.WorkerHandle) -> None:
    with Calls.connect(calls, "t") as conn:
        for n in (0, PIPELINE_PART - 10, PIPELINE_PART + 1, 5 * PIPELINE_PART + 123):
            assert conn.run(Calls.make, n) == bytes(range(256)) * (n // 256) + b"z" * (n % 256)
        assert _on_stream(conn)

    small = Calls.spawn(settings=rp.RpcSettings(max_message_size=4 << 20))
    try:
        with Calls.connect(small, "t") as conn:
            with pytest.raises(rp.MessageTooLargeError) as too_large:
                conn.run(Calls.make, 4 << 20)
            assert too_large.value.limit == 4 << 20
            assert len(conn.run(Calls.make, 3 << 20)) == 3 << 20  # and the stream goes on
    finally:
        small.shutdown()


def test_a_call_that_finds_the_stream_busy_goes_unary_meanwhile(calls: rp.WorkerHandle) -> None:
    with Calls.connect(calls, "t") as conn, ThreadPoolExecutor(1) as pool:
        held = pool.submit(conn.run, Calls.held)  # holds the stream until released
        time.sleep(0.3)
        assert not held.done() and _on_stream(conn)
        assert [conn.run(Calls.tagged, i) for i in range(3)] == ["t:0", "t:1", "t:2"]
        conn.run(Calls.release)
        assert held.result(30) == 1
        assert conn.run(Calls.tagged, 3) == "t:3"


def test_closing_the_connection_fails_a_call_in_flight_and_the_worker_goes_on(calls: rp.WorkerHandle) -> None:
    conn = Calls.connect(calls, "t")
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(conn.run, Calls.held)
        time.sleep(0.3)
        conn.close()
        with pytest.raises(rp.ConnectionClosedError):
            held.result(30)
    with pytest.raises(rp.ConnectionClosedError):
        conn.run(Calls.tagged, 6)
    with Calls.connect(calls, "u") as again:
        again.run(Calls.release)
        assert again.run(Calls.tagged, 1) == "u:1"


def test_a_dead_worker_fails_the_call_in_flight_as_a_unary_call_would(failures: Failures) -> None:
    worker = Calls.spawn(on_failure=failures)
    with Calls.connect(worker, "t") as conn, ThreadPoolExecutor(1) as pool:
        assert conn.run(Calls.tagged, 1) == "t:1"
        held = pool.submit(conn.run, Calls.held)
        time.sleep(0.3)
        os.kill(worker.pid, signal.SIGKILL)
        with pytest.raises(rp.WorkerConnectionError):
            held.result(30)
        with pytest.raises(rp.RpcParallelError):
            conn.run(Calls.tagged, 2)
    assert isinstance(failures.first(), rp.WorkerCrashedError)


def test_rp_aio_calls_ride_a_grpc_aio_call_stream_and_a_cancelled_one_ends_it(calls: rp.WorkerHandle) -> None:
    """rp.aio's run of an rpc rides the same kind of stream, a grpc.aio call on the caller's loop;
    calls that find it busy (other tasks') are pipelined. Cancelling the task of a call in flight
    cancels the stream (its reply would otherwise answer the next call), and the next call opens
    another."""
    async def main() -> None:
        async with await rp.aio.connect(Calls, calls, "a") as conn:
            assert await conn.run(Calls.tagged, 1) == "a:1"
            stream = conn._calls
            assert stream is not None and stream._call is not None
            assert await asyncio.gather(*(conn.run(Calls.tagged, i) for i in range(50))) == [
                f"a:{i}" for i in range(50)]
            with pytest.raises(rp.RemoteError) as failed:
                await conn.run(Calls.fail, "boom")
            assert (failed.value.remote_type, failed.value.remote_message) == ("ValueError", "boom")
            held = asyncio.ensure_future(conn.run(Calls.held))
            await asyncio.sleep(0.3)
            first = stream._call
            held.cancel()
            with pytest.raises(asyncio.CancelledError):
                await held
            assert stream._call is None and first.cancelled()
            await conn.run(Calls.release)
            assert await conn.run(Calls.tagged, 2) == "a:2"
            assert stream._call is not None and stream._call is not first
            assert await conn.run(Calls.make, 3 * PIPELINE_PART) == conn.sync.run(Calls.make, 3 * PIPELINE_PART)

    asyncio.run(main())


def test_rp_aio_close_fails_a_call_in_flight_on_the_stream_with_connection_closed(calls: rp.WorkerHandle) -> None:
    """Not a bare CancelledError, which gather and TaskGroup would take for a cancellation."""
    async def main() -> None:
        conn = await rp.aio.connect(Calls, calls, "a")
        assert await conn.run(Calls.tagged, 1) == "a:1"
        held = asyncio.ensure_future(conn.run(Calls.held))  # on the call stream
        await asyncio.sleep(0.3)
        await conn.close()
        with pytest.raises(rp.ConnectionClosedError):
            await held
        async with await rp.aio.connect(Calls, calls, "b") as again:
            await again.run(Calls.release)

    asyncio.run(main())
