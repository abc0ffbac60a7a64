"""``submit`` multiplexes its calls on one stream per connection (Control/Pipeline); each call must
behave exactly as the unary call of its method: results, connection state, errors, sizes, and the
fate of calls in flight when the connection closes or the worker dies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import pytest

import rpc_parallel as rp
from rpc_parallel._client._pipeline import Pipeline
from rpc_parallel._codec import codec_for
from rpc_parallel._protocol import PIPELINE_MAX_REQUEST, PIPELINE_MIN_LIMIT, PIPELINE_PART

from .conftest import Failures
from .workers import Calls


def _pipeline_of(conn: rp.Connection) -> Pipeline | None:
    return conn._pipeline


def test_many_calls_in_flight_get_their_own_results_with_their_connection_state(calls: rp.WorkerHandle) -> None:
    with Calls.connect(calls, "a") as a, Calls.connect(calls, "b") as b:
        futures = [(f"{tag}:{i}", conn.submit(Calls.tagged, i)) for i in range(3000) for tag, conn in (("a", a), ("b", b))]
        futures += [(2 * i, a.submit(Calls.later, i)) for i in range(500)]  # async def functions too
        for expected, f in futures:
            assert f.result(30) == expected
        assert _pipeline_of(a) is not None and _pipeline_of(b) is not None  # submit went pipelined
        assert a.run(Calls.tagged, 7) == "a:7"  # run rides its own stream beside it


def test_errors_are_those_of_unary_calls(calls: rp.WorkerHandle) -> None:
    with Calls.connect(calls, "t") as conn:
        with pytest.raises(rp.RemoteError) as pipelined:
            conn.submit(Calls.fail, "boom").result(30)
        with pytest.raises(rp.RemoteError) as unary:
            conn.run(Calls.fail, "boom")
        for err in (pipelined.value, unary.value):
            assert (err.remote_type, err.remote_message) == ("ValueError", "boom")
            assert "raise ValueError(message)" in err.remote_traceback
        assert conn.submit(Calls.tagged, 1).result(30) == "t:1"  # the stream goes on after a failed call
        with pytest.raises(TypeError):
            conn.submit(Calls.tagged, "not an int")  # checked before anything is sent


def test_large_results_come_in_parts_and_too_large_ones_fail_alone(calls: rp.WorkerHandle) -> None:
    with Calls.connect(calls, "t") as conn:
        sizes = [0, 1, PIPELINE_PART - 10, PIPELINE_PART + 1, 5 * PIPELINE_PART + 123]
        futures = [conn.submit(Calls.make, n) for n in sizes]
        for n, f in zip(sizes, futures, strict=True):
            assert f.result(60) == conn.run(Calls.make, n)
        big = b"\x01" * (2 * PIPELINE_MAX_REQUEST)  # too large to batch: goes unary, same result
        assert conn.submit(Calls.size, big).result(60) == len(big)

    small = Calls.spawn(settings=rp.RpcSettings(max_message_size=4 << 20))
    try:
        with Calls.connect(small, "t") as conn:
            over = conn.submit(Calls.make, 4 << 20)
            fine = conn.submit(Calls.make, 3 << 20)
            with pytest.raises(rp.MessageTooLargeError) as too_large:
                over.result(60)
            assert too_large.value.limit == 4 << 20
            assert len(fine.result(60)) == 3 << 20
            assert _pipeline_of(conn) is not None and not _pipeline_of(conn).broken  # type: ignore[union-attr]
    finally:
        small.shutdown()


def test_closing_the_connection_fails_calls_in_flight_and_the_worker_goes_on(calls: rp.WorkerHandle) -> None:
    conn = Calls.connect(calls, "t")
    held = [conn.submit(Calls.held) for _ in range(3)]
    done = conn.submit(Calls.tagged, 5)
    assert done.result(30) == "t:5"
    conn.close()
    for f in held:
        with pytest.raises(rp.ConnectionClosedError):
            f.result(30)
    with pytest.raises(rp.ConnectionClosedError):
        conn.submit(Calls.tagged, 6)
    with Calls.connect(calls, "u") as again:
        again.run(Calls.release)
        assert again.submit(Calls.tagged, 1).result(30) == "u:1"


def test_a_dead_worker_fails_calls_in_flight_and_later_ones(failures: Failures) -> None:
    worker = Calls.spawn(on_failure=failures)
    with Calls.connect(worker, "t") as conn:
        held = [conn.submit(Calls.held) for _ in range(5)]
        assert conn.submit(Calls.tagged, 1).result(30) == "t:1"
        os.kill(worker.pid, signal.SIGKILL)
        for f in held:
            with pytest.raises(rp.WorkerConnectionError):
                f.result(30)
        with pytest.raises(rp.RpcParallelError):
            conn.submit(Calls.tagged, 2).result(30)
    assert isinstance(failures.first(), rp.WorkerCrashedError)


def test_a_small_max_message_size_keeps_calls_unary() -> None:
    worker = Calls.spawn(settings=rp.RpcSettings(max_message_size=PIPELINE_MIN_LIMIT - 1))
    try:
        with Calls.connect(worker, "t") as conn:
            assert [conn.submit(Calls.tagged, i).result(30) for i in range(3)] == ["t:0", "t:1", "t:2"]
            assert _pipeline_of(conn) is None
    finally:
        worker.shutdown()


def test_a_submitted_call_can_be_cancelled_and_the_stream_goes_on(calls: rp.WorkerHandle) -> None:
    with Calls.connect(calls, "t") as conn:
        held = conn.submit(Calls.held)
        assert held.cancel() and held.cancelled()  # the worker drops its result when it is done
        conn.run(Calls.release)
        assert conn.submit(Calls.tagged, 3).result(30) == "t:3"

        async def impatient() -> str:
            aconn = rp.aio.Connection(conn)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(aconn.run(Calls.make, 3 << 20), 0.001)  # its asyncio side is cancelled
            return await aconn.run(Calls.tagged, 4)

        assert asyncio.run(impatient()) == "t:4"
        assert conn.submit(Calls.tagged, 5).result(30) == "t:5"


def test_results_at_the_limit_and_requests_near_it_share_the_stream() -> None:
    limit = PIPELINE_MIN_LIMIT  # the smallest max_message_size that pipelines: 256 KiB
    worker = Calls.spawn(settings=rp.RpcSettings(max_message_size=limit))
    make_overhead = len(codec_for(Calls).method("make").encode_result(bytes(limit - 100))) - (limit - 100)
    try:
        with Calls.connect(worker, "t") as conn:
            at_limit = [conn.submit(Calls.make, limit - make_overhead) for _ in range(3)]
            requests = [conn.submit(Calls.size, bytes(PIPELINE_MAX_REQUEST - 64)) for _ in range(40)]
            small = [conn.submit(Calls.tagged, i) for i in range(100)]
            assert [len(f.result(60)) for f in at_limit] == [limit - make_overhead] * 3
            assert [f.result(60) for f in requests] == [PIPELINE_MAX_REQUEST - 64] * 40
            assert [f.result(60) for f in small] == [f"t:{i}" for i in range(100)]
            pipe = _pipeline_of(conn)
            assert pipe is not None and not pipe.broken
    finally:
        worker.shutdown()


def test_an_error_that_cannot_describe_itself_still_answers_its_call(calls: rp.WorkerHandle) -> None:
    with Calls.connect(calls, "t") as conn:
        for failed in (conn.submit(Calls.unprintable), None):
            with pytest.raises(rp.RemoteError) as err:
                failed.result(30) if failed is not None else conn.run(Calls.unprintable)
            assert err.value.remote_type.endswith("Unprintable") and "str() raised" in err.value.remote_message
        assert conn.submit(Calls.tagged, 1).result(30) == "t:1"
