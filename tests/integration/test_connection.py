"""A connection's own state: ``closed``, ``wait_closed``, ``worker_id``, ``close_reason``, and a
``with`` block that raises (OCaml's ``Connection.close``/``close_finished``/``close_reason``)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

import rpc_parallel as rp

from .workers import Adapter, AsyncKinds, Calls, Direct, Streamer


def test_the_state_of_an_open_then_closed_connection(calls: rp.WorkerHandle) -> None:
    conn = Calls.connect(calls, "t")
    assert conn.worker_id == calls.worker_id
    assert not conn.closed and conn.close_reason is None
    assert conn.wait_closed(0.1) is False  # open: the wait times out
    assert conn.run(Calls.tagged, 1) == "t:1"
    conn.close()
    assert conn.closed and conn.wait_closed(5) is True
    assert conn.close_reason == "closed by close()"
    conn.close()  # again: nothing happens
    assert conn.close_reason == "closed by close()"


def test_a_with_block_that_raises_closes_its_connection_and_the_error_propagates(calls: rp.WorkerHandle) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), Calls.connect(calls, "t") as conn:
        assert conn.run(Calls.tagged, 2) == "t:2"
        raise Boom
    assert conn.closed and conn.close_reason == "closed by close()"
    with Calls.connect(calls, "u") as other:  # the worker is untouched
        assert other.run(Calls.tagged, 3) == "u:3"


def test_a_remote_error_inside_a_with_block_closes_the_connection_too(calls: rp.WorkerHandle) -> None:
    with pytest.raises(rp.RemoteError, match="no good"), Calls.connect(calls, "t") as conn:
        conn.run(Calls.fail, "no good")
    assert conn.closed


def test_connect_finds_the_worker_type_from_the_handle(calls: rp.WorkerHandle) -> None:
    with rp.connect(calls, "h") as conn:  # the type: the declared one with the handle's fingerprint
        assert conn.worker_type is Calls
        assert conn.run(Calls.tagged, 1) == "h:1"
    with rp.connect(Calls, calls, "n") as conn:  # or named
        assert conn.run(Calls.tagged, 2) == "n:2"
    stranger = rp.WorkerHandle(worker_id="w", address=calls.address, token=calls.token, fingerprint="0" * 32)
    with pytest.raises(TypeError, match="no worker type declared in this process has the fingerprint"):
        rp.connect(stranger)


def test_the_aio_forms_of_connect_shutdown_and_spawn_in_foreground() -> None:
    async def main() -> None:
        handle = await rp.aio.spawn(Calls)
        conn = await rp.aio.connect(handle, "a")
        assert await conn.run(Calls.tagged, 1) == "a:1"
        await conn.close()
        conn = await rp.aio.connect(Calls, handle, "b")
        assert await conn.run(Calls.tagged, 2) == "b:2"
        await conn.close()
        await rp.aio.shutdown(handle)
        assert await asyncio.to_thread(_gone, handle.pid)

        fg, proc = await rp.aio.spawn_in_foreground(Calls)
        try:
            conn = await rp.aio.connect(fg, "f")
            assert await conn.run(Calls.tagged, 3) == "f:3"
            await conn.close()
            await rp.aio.shutdown(fg)
            assert await asyncio.to_thread(proc.wait, 10) == 0
        finally:
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()

    asyncio.run(main())


def _gone(pid: int) -> bool:
    try:
        psutil.Process(pid).wait(10)
    except psutil.NoSuchProcess:
        pass
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_map_and_contra_map_adapt_a_function_on_the_caller_s_side() -> None:
    """OCaml Function.map / contra_map: with run, submit and rp.aio, on every kind that has a result."""
    handle = Adapter.spawn()
    try:
        as_text = Adapter.incr.map(str)
        from_text = Adapter.incr.contra_map(int)
        both = Adapter.incr.contra_map(len).map(lambda n: n * 10)
        pair = Adapter.add.contra_map(lambda s: (s[0], s[1]))  # several parameters: a tuple of them
        with Adapter.connect(handle) as conn:
            assert conn.run(as_text, 1) == "2"
            assert conn.submit(as_text, 2).result() == "3"
            assert conn.run(from_text, "41") == 42
            assert conn.run(both, "abc") == 40
            assert conn.run(pair, [3, 4]) == 7
            assert conn.run(Adapter.incr, 1) == 2  # the declared function is untouched
            assert list(conn.run(Adapter.count.map(lambda i: -i), 3)) == [0, -1, -2]
            assert conn.run(Adapter.total.map(float), iter([1, 2, 3])) == 6.0
            got: list[object] = []
            done = threading.Event()

            def on_update(u: rp.Update[str] | rp.Closed) -> None:
                got.append(u.value if isinstance(u, rp.Update) else "closed")
                if isinstance(u, rp.Closed):
                    done.set()

            conn.run(Adapter.ticks.map(lambda i: f"t{i}"), 2, on_update=on_update)
            assert done.wait(10) and got == ["t0", "t1", "closed"]
            with pytest.raises(TypeError, match="must return a tuple"):
                conn.run(Adapter.add.contra_map(lambda s: s), 1)
        with pytest.raises(TypeError, match="map takes a function"):
            Adapter.incr.map(3)  # type: ignore[arg-type]
        assert "mapped" in repr(as_text) and "Adapter.incr" in repr(as_text)

        async def main() -> None:
            conn = await rp.aio.connect(handle)
            assert await conn.run(as_text, 5) == "6"
            assert await conn.submit(from_text, "6") == 7
            await conn.close()

        asyncio.run(main())
    finally:
        handle.shutdown()


def test_a_direct_pipe_s_run_returns_once_its_function_returned() -> None:
    """OCaml's rule: run resolves after the implementation returned; the items written before
    that reach on_update after run returned; an exception before the return is raised from run."""
    handle = Direct.spawn()
    try:
        with Direct.connect(handle) as conn:
            events: list[tuple[str, object, float]] = []
            closed = threading.Event()

            def on_update(u: rp.Update[int] | rp.Closed) -> None:
                events.append(("update" if isinstance(u, rp.Update) else "closed", u, time.monotonic()))
                if isinstance(u, rp.Closed):
                    closed.set()

            started = time.monotonic()
            conn.run(Direct.then_return, 3, 0.5, on_update=on_update)
            assert time.monotonic() - started >= 0.5  # it waited for the function's return
            assert closed.wait(10)
            assert [e[1].value for e in events if e[0] == "update"] == [0, 1, 2, 3, 4, 5]  # type: ignore[attr-defined]
            assert all(t >= started + 0.5 for _, _, t in events)  # nothing before the function returned
            assert events[-1][1] == rp.Closed("by_remote_side")

            calls: list[object] = []
            with pytest.raises(rp.RemoteError, match="no start") as failed:
                conn.run(Direct.fail_first, "no start", on_update=calls.append)
            assert failed.value.remote_type == "ValueError"
            time.sleep(0.2)
            assert calls == []  # the pipe never was: no update, no Closed
    finally:
        handle.shutdown()


def test_a_direct_pipe_closed_by_the_worker_s_death_carries_the_error() -> None:
    handle = Direct.spawn(on_failure=rp.IGNORE_FAILURE)
    with Direct.connect(handle) as conn:
        got: list[rp.Update[int] | rp.Closed] = []
        closed = threading.Event()

        def on_update(u: rp.Update[int] | rp.Closed) -> None:
            got.append(u)
            if isinstance(u, rp.Closed):
                closed.set()

        conn.run(Direct.then_die, on_update=on_update)
        assert closed.wait(20)
    assert got[0] == rp.Update(7)
    last = got[-1]
    assert isinstance(last, rp.Closed) and isinstance(last.error, rp.WorkerConnectionError)
    assert last.reason == str(last.error)
    assert _gone(handle.pid)


def test_a_reverse_pipe_fed_through_a_writer() -> None:
    """OCaml's reverse direct pipe: the caller pushes the updates through a writer."""
    handle = Adapter.spawn()
    try:
        with Adapter.connect(handle) as conn:
            def five(w: rp.DirectWriter[int]) -> None:
                for i in range(5):
                    assert w.write(i)
                w.close()
                assert w.closed and not w.write(99)  # closed: refused

            assert conn.run(Adapter.total, five) == 10

            def in_background(w: rp.DirectWriter[int]) -> None:  # returns at once; a thread writes
                def later() -> None:
                    for i in range(10_000):
                        w.write(i)
                    w.close()

                threading.Thread(target=later).start()

            assert conn.run(Adapter.total, in_background) == sum(range(10_000))

            def broken(w: rp.DirectWriter[int]) -> None:
                w.write(1)
                raise KeyError("the caller's own")

            with pytest.raises(KeyError, match="the caller's own"):
                conn.run(Adapter.total, broken)
            assert conn.run(Adapter.total, iter([1, 2])) == 3  # the connection and worker live on

        async def main() -> None:
            aconn = await rp.aio.connect(handle)
            assert await aconn.run(Adapter.total, five) == 10
            await aconn.close()

        asyncio.run(main())
    finally:
        handle.shutdown()


def test_every_kind_async_on_the_worker_and_through_rp_aio() -> None:
    async def main() -> None:
        handle = await rp.aio.spawn(AsyncKinds)
        try:
            async with await rp.aio.connect(handle) as conn:
                assert await conn.run(AsyncKinds.double, 21) == 42
                assert await conn.submit(AsyncKinds.double, 4) == 8
                await conn.run(AsyncKinds.note, "a")
                await conn.run(AsyncKinds.note, "b")
                deadline = asyncio.get_running_loop().time() + 10
                while await conn.run(AsyncKinds.notes_so_far) != ["a", "b"]:  # one_ways, in order
                    assert asyncio.get_running_loop().time() < deadline
                    await asyncio.sleep(0.02)
                pipe = await conn.run(AsyncKinds.count, 4)
                assert [x async for x in pipe] == [0, 1, 2, 3]
                state, updates = await conn.run(AsyncKinds.watch, 3)
                assert state == "start" and [u async for u in updates] == [0, 10, 20]
                got: list[object] = []
                closed = asyncio.Event()

                def on_update(u: rp.Update[int] | rp.Closed) -> None:  # called on this event loop
                    got.append(u)
                    if isinstance(u, rp.Closed):
                        closed.set()

                await conn.run(AsyncKinds.ticks, 3, on_update=on_update)
                await asyncio.wait_for(closed.wait(), 10)
                assert got == [rp.Update(0), rp.Update(1), rp.Update(2), rp.Closed("by_remote_side")]

                async def xs() -> AsyncIterator[int]:  # an async iterable of updates
                    for i in range(5):
                        yield i

                assert await conn.run(AsyncKinds.total, xs()) == 10
                assert await conn.run(AsyncKinds.total, iter([1, 2, 3])) == 6
            assert conn.closed
        finally:
            await rp.aio.shutdown(handle)

    asyncio.run(main())


def test_a_thousand_idle_aio_pipes_on_one_connection_cost_no_thread_on_either_side() -> None:
    """DESIGN section 2: a thousand open pipes cost no threads. The worker's server is a grpc.aio
    server on its event loop, so an open stream is a task there; the caller reads each pipe on its
    own loop. An rpc on the same connection still answers at normal speed."""
    async def main() -> None:
        handle = await rp.aio.spawn(Streamer)
        try:
            async with await rp.aio.connect(handle) as conn:
                assert [x async for x in await conn.run(Streamer.fast, 2)] == [0, 1]
                mine, theirs = threading.active_count(), await conn.run(Streamer.threads)
                started = time.monotonic()
                for _ in range(20):
                    await conn.run(Streamer.threads)
                idle_rtt = (time.monotonic() - started) / 20
                pipes = [await conn.run(Streamer.one_then_wait) for _ in range(1000)]
                assert await asyncio.gather(*(pipe.__anext__() for pipe in pipes)) == [1] * 1000
                waiting = [asyncio.ensure_future(pipe.__anext__()) for pipe in pipes]  # each waits for its 2
                await asyncio.sleep(0.2)
                assert not any(w.done() for w in waiting)
                started = time.monotonic()
                for _ in range(20):
                    now_theirs = await conn.run(Streamer.threads)
                busy_rtt = (time.monotonic() - started) / 20
                assert threading.active_count() <= mine + 1  # (grpc.aio's poller, once)
                assert now_theirs <= theirs + 2, f"the worker went from {theirs} to {now_theirs} threads"
                assert busy_rtt < max(10 * idle_rtt, 0.05), (busy_rtt, idle_rtt)
                await conn.run(Streamer.open_gate)
                assert await asyncio.gather(*waiting) == [2] * 1000
        finally:
            await rp.aio.shutdown(handle)

    asyncio.run(main())


def test_idle_aio_pipes_hold_no_thread_of_the_caller() -> None:
    """rp.aio reads its pipes with grpc.aio on the caller's loop: 200 pipes each with a read
    pending cost the caller no thread, and calls on the same connection still answer at once
    (reads on threads would fill the default executor: worker_settings() took seconds)."""
    async def main() -> None:
        handle = await rp.aio.spawn(Streamer)
        try:
            async with await rp.aio.connect(handle) as conn:
                await conn.run(Streamer.fast, 1)  # the connection's streams are set up
                threads = threading.active_count()
                pipes = [await conn.run(Streamer.one_then_gate) for _ in range(200)]
                assert [await pipe.__anext__() for pipe in pipes] == [1] * 200
                waiting = [asyncio.ensure_future(pipe.__anext__()) for pipe in pipes]  # each waits for its 2
                await asyncio.sleep(0.2)
                assert not any(w.done() for w in waiting)
                assert threading.active_count() <= threads + 1  # (grpc.aio's poller, once)
                started = time.monotonic()
                assert (await conn.worker_settings()).max_message_size > 0
                assert [x async for x in await conn.run(Streamer.fast, 3)] == [0, 1, 2]
                assert time.monotonic() - started < 2.0
                await conn.run(Streamer.release)
                assert await asyncio.gather(*waiting) == [2] * 200
                assert threading.active_count() <= threads + 1
        finally:
            await rp.aio.shutdown(handle)

    asyncio.run(main())


def test_review_mends_of_the_new_call_forms() -> None:
    """A writer whose call ended early leaves no thread; an exception after writer.close() still
    reaches run; a raising map ends a direct pipe with Closed(error); contra_map chains on a builtin."""
    adapter, direct = Adapter.spawn(), Direct.spawn()
    try:
        with Adapter.connect(adapter) as conn, Direct.connect(direct) as dconn:
            def slow_writer(w: rp.DirectWriter[int]) -> None:
                w.write(5)
                time.sleep(0.2)
                w.write(6)
                w.close()

            assert conn.run(Adapter.first_only, iter([4])) == 4  # (the channel's own threads start)
            threads = threading.active_count()
            for _ in range(5):
                assert conn.run(Adapter.first_only, slow_writer) == 5
            deadline = time.monotonic() + 5
            while threading.active_count() > threads and time.monotonic() < deadline:
                time.sleep(0.05)
            assert threading.active_count() <= threads  # no feeding thread left waiting

            with pytest.raises(rp.RemoteError, match="after close"):
                dconn.run(Direct.close_then_raise, on_update=lambda u: None)

            got: list[object] = []
            closed = threading.Event()

            def on_update(u: object) -> None:
                got.append(u)
                if isinstance(u, rp.Closed):
                    closed.set()

            dconn.run(Direct.then_return.map(lambda i: 1 // (i - 1)), 3, 0.0, on_update=on_update)
            assert closed.wait(10)
            last = got[-1]
            assert isinstance(last, rp.Closed) and isinstance(last.error, ZeroDivisionError)

            assert conn.run(Adapter.incr.contra_map(int).contra_map(str.strip), " 41 ") == 42
    finally:
        adapter.shutdown()
        direct.shutdown()


def test_review_mends_of_rp_aio() -> None:
    """Pending wait_closed()s hold no thread; an aio direct pipe holds none either and calls
    on_update only after run returned; a pipe closed from another task ends its reader's loop."""
    async def main() -> None:
        handle = await rp.aio.spawn(Direct)
        streamer = await rp.aio.spawn(Streamer)
        try:
            conn = await rp.aio.connect(handle)
            waits = [asyncio.ensure_future(conn.wait_closed()) for _ in range(8)]
            assert await conn.wait_closed(0.05) is False
            assert (await asyncio.wait_for(conn.worker_settings(), 5)).max_message_size > 0
            warm = asyncio.Event()
            await conn.run(Direct.then_return, 1, 0.0,  # (grpc.aio's own poller thread starts once)
                           on_update=lambda u: warm.set() if isinstance(u, rp.Closed) else None)
            await asyncio.wait_for(warm.wait(), 10)
            threads = threading.active_count()
            returned = False
            early: list[bool] = []
            done = asyncio.Event()

            def on_update(u: object) -> None:
                early.append(returned)
                if isinstance(u, rp.Closed):
                    done.set()

            await conn.run(Direct.then_return, 3, 0.0, on_update=on_update)
            returned = True
            await asyncio.wait_for(done.wait(), 10)
            assert early and all(early)  # every call came after run returned
            assert threading.active_count() <= threads
            await conn.close()
            assert all(await asyncio.gather(*waits))

            sconn = await rp.aio.connect(streamer)
            pipe = await sconn.run(Streamer.one_then_gate)

            async def read_all() -> list[int]:
                return [x async for x in pipe]

            reader = asyncio.ensure_future(read_all())
            await asyncio.sleep(0.1)
            await pipe.aclose()
            assert await reader == [1]  # ended, not cancelled
            await sconn.close()
        finally:
            await rp.aio.shutdown(handle)
            await rp.aio.shutdown(streamer)

    asyncio.run(main())


def test_a_pipe_read_across_the_connections_close_raises_connection_closed() -> None:
    """The caller's own close() cut it off (rp.ConnectionClosedError), as for every other call:
    not the worker side ending it (rp.WorkerConnectionError)."""
    handle = Streamer.spawn()
    try:
        for open_stream in (lambda c: c.run(Streamer.one_then_gate), lambda c: c.logs()):
            conn = Streamer.connect(handle)
            with ThreadPoolExecutor(1) as pool:
                read = pool.submit(list, open_stream(conn))
                time.sleep(0.3)
                conn.close()
                with pytest.raises(rp.ConnectionClosedError):
                    read.result(10)
        with Streamer.connect(handle) as conn:
            conn.run(Streamer.release)
    finally:
        handle.shutdown()
