"""A connection's blocking ``run`` of an rpc rides its ``Control/Call`` stream, one call at a time
(about half the cost of a unary call): each call must behave exactly as the unary call of its
method, and a call that finds the stream busy (another thread's call), or that runs under an
``rp.deadline``, goes unary."""

from __future__ import annotations

import os
import signal
import threading
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
    outcome: list[BaseException | int] = []

    def run_held() -> None:
        try:
            outcome.append(conn.run(Calls.held))
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=run_held)
    runner.start()
    time.sleep(0.3)
    conn.close()
    runner.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], rp.ConnectionClosedError), outcome
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
