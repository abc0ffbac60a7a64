"""Bounded memory (DESIGN.md section 10): every buffer between a producer and its consumer is bounded,
and a producer that runs ahead waits. Bounds are asserted on counts and generously on memory; the
figures are measured by the benchmark."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

import rpc_parallel as rp
from rpc_parallel._protocol import ONE_WAY_MAX_CALLS, ONE_WAY_QUEUE_CALLS, SUBMIT_MAX_CALLS

from .conftest import Updates
from .flow_workers import Flow

MIB = 1 << 20


def test_a_pipe_whose_consumer_stopped_stops_its_producer() -> None:
    handle = Flow.spawn()
    try:
        with Flow.connect(handle) as conn:
            idle = conn.run(Flow.rss_mib)
            with conn.run(Flow.blobs, MIB, 5000) as pipe:
                assert len(next(pipe)) == MIB  # then the caller stops reading
                time.sleep(2.0)
                produced, _ = conn.run(Flow.counts)
                assert produced < 100, f"{produced} items of 1 MiB produced for a caller that read one"
                assert conn.run(Flow.rss_mib) < idle + 256
    finally:
        handle.shutdown()


def test_a_direct_pipe_that_writes_everything_before_returning_delivers_it() -> None:
    handle = Flow.spawn()
    updates = Updates()
    try:
        with Flow.connect(handle) as conn:
            conn.run(Flow.many_before_return, 100_000, on_update=updates)
            updates.wait(30)
        assert [c.reason for c in updates.closed] == ["by_remote_side"]
        assert updates.values == list(range(100_000))
    finally:
        handle.shutdown()


def test_one_way_calls_to_a_slow_worker_make_the_caller_wait() -> None:
    handle = Flow.spawn()
    try:
        with Flow.connect(handle) as conn:
            payload = bytes(100_000)
            sent = 1000
            for _ in range(sent):
                conn.run(Flow.slow_note, payload, 0.001)
            _, ran = conn.run(Flow.counts)
            # what is in flight is bounded: the unacknowledged calls, and the worker's two queues (calls
            # ready to run, calls waiting for a lower number) and the one it runs
            assert sent - ran <= ONE_WAY_MAX_CALLS + 2 * ONE_WAY_QUEUE_CALLS + 2, (sent, ran)
            assert conn.run(Flow.rss_mib) < 1024
    finally:
        handle.shutdown()


def test_submitted_calls_in_flight_are_bounded() -> None:
    handle = Flow.spawn()
    try:
        with Flow.connect(handle) as conn:
            futures = [conn.submit(Flow.slow_echo, b"x", 0.0) for _ in range(3 * SUBMIT_MAX_CALLS)]
            unfinished = sum(not f.done() for f in futures)
            assert unfinished <= SUBMIT_MAX_CALLS
            assert [f.result(60) for f in futures] == [1] * len(futures)
    finally:
        handle.shutdown()


def _on_a_loop(main: Callable[[], Awaitable[None]], within: float = 30.0) -> None:
    """Run ``main`` on an event loop in a thread; fail if it has not ended in ``within`` s (a
    blocked loop never does)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(main())  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), "the event loop is blocked"
    if errors:
        raise errors[0]


def test_asyncio_one_way_calls_wait_for_room_without_blocking_the_loop() -> None:
    """Calls the worker holds (behind a gate) fill the bound; the next ones wait, and the loop goes
    on: the gate is opened from it, on another connection."""
    handle = Flow.spawn()
    sent = ONE_WAY_MAX_CALLS + 2 * ONE_WAY_QUEUE_CALLS + 100

    async def main() -> None:
        async with await rp.aio.connect(Flow, handle) as conn, await rp.aio.connect(Flow, handle) as other:
            async def send() -> None:
                for i in range(sent):
                    await conn.run(Flow.gated_note, i)

            sending = asyncio.ensure_future(send())
            await asyncio.sleep(0.5)  # past the bound by now; a blocked loop never gets here
            assert not sending.done()
            await other.run(Flow.open_gate)
            await sending
            notes: list[int] = []
            while len(notes) < sent:
                notes = await other.run(Flow.open_gate)
            assert notes == list(range(sent))

    try:
        _on_a_loop(main)
    finally:
        handle.shutdown()


def test_asyncio_submits_past_the_bound_never_block_the_loop() -> None:
    """Past the bound, ``submit`` returns at once (the call waits for room on a thread): the loop
    submitting them all is done before the first call (0.5 s each) could have made room."""
    handle = Flow.spawn()
    count = SUBMIT_MAX_CALLS + 100

    async def main() -> None:
        async with await rp.aio.connect(Flow, handle) as conn:
            results = [conn.submit(Flow.slow_echo, b"x", 0.5) for _ in range(count)]
            assert not any(r.done() for r in results)  # had the loop waited for room, some would be
            assert await asyncio.gather(*results) == [1] * count

    try:
        _on_a_loop(main)
    finally:
        handle.shutdown()


def test_asyncio_submits_past_the_bound_take_their_arguments_at_once_and_can_be_cancelled() -> None:
    handle = Flow.spawn()

    async def main() -> None:
        async with await rp.aio.connect(Flow, handle) as conn:
            held = [conn.submit(Flow.slow_echo, b"x", 0.3) for _ in range(SUBMIT_MAX_CALLS)]  # the bound is full
            xs = [1]
            later = conn.submit(Flow.echo_ints, xs)
            xs.append(2)  # after the call: not part of it
            dropped = conn.submit(Flow.echo_ints, [7, 7, 7])
            await asyncio.sleep(0)  # its thread is waiting for room now
            dropped.cancel()  # never sent
            assert await asyncio.gather(*held) == [1] * SUBMIT_MAX_CALLS
            assert await later == [1]
            await asyncio.sleep(0.3)
            assert await conn.run(Flow.echoed) == [[1]]

    try:
        _on_a_loop(main)
    finally:
        handle.shutdown()
