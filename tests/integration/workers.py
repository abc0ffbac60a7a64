"""Worker types for the integration tests (importable, so spawned workers find them)."""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator

import rpc_parallel as rp
from examples.counter import Counter


class Blob(rp.Worker):
    """Bytes in, bytes out: large-message tests. No connection state (plain clients may call it)."""

    @rp.rpc
    def size(self, data: bytes) -> int:
        return len(data)

    @rp.rpc
    def make(self, n: int) -> bytes:
        return b"x" * n

    @rp.rpc
    def echo(self, data: bytes) -> bytes:
        return data

    @rp.rpc
    def env(self, key: str) -> str | None:
        return os.environ.get(key)


class Relay(rp.Worker):
    """Takes handles of other workers and talks to them directly (OCaml worker_binprot / stream_workers)."""

    @rp.rpc
    def incr_on(self, target: rp.WorkerHandle, by: int) -> int:
        with Counter.connect(target, "relay") as conn:
            return conn.run(Counter.incr, by)

    @rp.reverse_pipe
    def sum_over(self, targets: Iterator[rp.WorkerHandle], by: int) -> list[int]:
        """Increment every streamed worker by ``by``; the list of their new totals."""
        out = []
        for target in targets:
            with Counter.connect(target, "relay") as conn:
                out.append(conn.run(Counter.incr, by))
        return out


class Summer(rp.Worker):
    def init_worker_state(self, offset: int) -> None:
        self.offset = offset

    @rp.reverse_pipe
    def total(self, xs: Iterator[int]) -> int:
        return self.offset + sum(xs)


class BadInit(rp.Worker):
    def init_worker_state(self, message: str) -> None:
        raise RuntimeError(message)

    @rp.rpc
    def ping(self) -> None:
        pass


class BadConnection(rp.Worker):
    def init_connection_state(self, message: str) -> None:
        if message:
            raise PermissionError(message)

    @rp.rpc
    def ping(self) -> str:
        return "pong"


class Streamer(rp.Worker):
    """Pipes for batching: a lone item must not wait for company; a fast producer's items share messages."""

    def init_worker_state(self, arg: None) -> None:
        self.gate = threading.Event()

    @rp.pipe
    def one_then_gate(self) -> Iterator[int]:
        yield 1
        self.gate.wait(60)  # until release() is called
        yield 2

    @rp.rpc
    def release(self) -> None:
        self.gate.set()

    @rp.pipe
    def fast(self, n: int) -> Iterator[int]:
        yield from range(n)

    @rp.pipe
    async def one_then_wait(self) -> AsyncIterator[int]:
        """An idle pipe that holds no thread of the worker: it waits on the worker's event loop."""
        if not hasattr(self, "opened"):
            self.opened = asyncio.Event()
        yield 1
        await self.opened.wait()
        yield 2

    @rp.rpc
    async def open_gate(self) -> None:
        self.opened.set()

    @rp.rpc
    def threads(self) -> int:
        return threading.active_count()


class Where(rp.Worker):
    """Where and how its process runs (fork server tests)."""

    @rp.rpc
    def ppid(self) -> int:
        return os.getppid()

    @rp.rpc
    def hash_randomized(self) -> bool:
        return bool(sys.flags.hash_randomization)

    @rp.rpc
    def env(self, key: str) -> str | None:
        return os.environ.get(key)

    @rp.one_way
    def exit(self, code: int) -> None:
        os._exit(code)


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for this error")


class Calls(rp.Worker):
    """Pipelined calls (``submit``): connection state, errors, sizes, a gate to hold calls in flight."""

    def init_worker_state(self, arg: None) -> None:
        self.gate = threading.Event()

    def init_connection_state(self, tag: str) -> str:
        return tag

    @rp.rpc
    def tagged(self, x: int) -> str:
        return f"{self.connection_state}:{x}"

    @rp.rpc
    def fail(self, message: str) -> int:
        raise ValueError(message)

    @rp.rpc
    def make(self, n: int) -> bytes:
        return bytes(range(256)) * (n // 256) + b"z" * (n % 256)

    @rp.rpc
    def size(self, data: bytes) -> int:
        return len(data)

    @rp.rpc
    def concat(self, a: bytes, sep: str, b: bytes) -> bytes:
        return a + sep.encode() + b

    @rp.rpc
    def reject(self, data: bytes) -> int:
        raise ValueError(f"rejected {len(data)} bytes from {self.connection_state}")

    @rp.rpc
    def unprintable(self) -> int:
        raise Unprintable()

    @rp.rpc
    def held(self) -> int:
        self.gate.wait(60)
        return 1

    @rp.rpc
    def release(self) -> None:
        self.gate.set()

    @rp.rpc
    async def later(self, x: int) -> int:
        return x * 2


class Journal(rp.Worker):
    """One-way notes that take their time: run concurrently, a slow early note ends last."""

    def init_worker_state(self, arg: None) -> None:
        self.lines: list[str] = []

    @rp.one_way
    def note(self, line: str, delay: float) -> None:
        time.sleep(delay)
        self.lines.append(line)

    @rp.rpc
    def notes(self) -> list[str]:
        return list(self.lines)


class Adapter(rp.Worker):
    """One function of each kind with a result, for map / contra_map."""

    @rp.rpc
    def incr(self, x: int) -> int:
        return x + 1

    @rp.rpc
    def add(self, a: int, b: int) -> int:
        return a + b

    @rp.pipe
    def count(self, n: int) -> Iterator[int]:
        yield from range(n)

    @rp.reverse_pipe
    def total(self, xs: Iterator[int]) -> int:
        return sum(xs)

    @rp.direct_pipe
    def ticks(self, writer: rp.DirectWriter[int], n: int) -> None:
        for i in range(n):
            writer.write(i)
        writer.close()

    @rp.reverse_pipe
    def first_only(self, xs: Iterator[int]) -> int:
        """Answer after the first update, not reading the rest."""
        return next(xs)


class Direct(rp.Worker):
    """Direct pipes that write before they return, fail before they return, or end the worker."""

    @rp.direct_pipe
    def then_return(self, writer: rp.DirectWriter[int], n: int, linger: float) -> None:
        """Write ``n`` items, wait ``linger`` s, return; a thread writes ``n`` more and closes."""
        for i in range(n):
            writer.write(i)
        time.sleep(linger)

        def later() -> None:
            for i in range(n, 2 * n):
                writer.write(i)
            writer.close()

        threading.Thread(target=later).start()

    @rp.direct_pipe
    def fail_first(self, writer: rp.DirectWriter[int], message: str) -> None:
        writer.write(1)
        raise ValueError(message)

    @rp.direct_pipe
    def close_then_raise(self, writer: rp.DirectWriter[int]) -> None:
        writer.write(7)
        writer.close()
        raise ValueError("after close")

    @rp.direct_pipe
    def then_die(self, writer: rp.DirectWriter[int]) -> None:
        """Return, then write one item and end the worker process."""

        def later() -> None:
            writer.write(7)
            time.sleep(0.3)
            os._exit(3)

        threading.Thread(target=later).start()


class AsyncKinds(rp.Worker):
    """Every kind with an ``async def`` implementation (run on the worker's event loop)."""

    def init_worker_state(self) -> None:
        self.notes: list[str] = []

    @rp.rpc
    async def double(self, x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    @rp.one_way
    async def note(self, text: str) -> None:
        await asyncio.sleep(0)
        self.notes.append(text)

    @rp.rpc
    async def notes_so_far(self) -> list[str]:
        return list(self.notes)

    @rp.pipe
    async def count(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    @rp.state
    async def watch(self, n: int) -> tuple[str, AsyncIterator[int]]:
        async def updates() -> AsyncIterator[int]:
            for i in range(n):
                yield i * 10

        return "start", updates()

    @rp.direct_pipe
    async def ticks(self, writer: rp.DirectWriter[int], n: int) -> None:
        async def later() -> None:
            for i in range(n):
                writer.write(i)
                await asyncio.sleep(0)
            writer.close()

        self._ticking = asyncio.get_running_loop().create_task(later())

    @rp.reverse_pipe
    async def total(self, xs: AsyncIterator[int]) -> int:
        return sum([x async for x in xs])


_REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("bench_request", default="unset")


class Odd(BaseException):
    """Not an Exception: user code may raise one all the same."""


class Edges(rp.Worker):
    """The edges of the worker's event loop (its server is a grpc.aio server there): user code
    raising CancelledError or other BaseExceptions, sys.exit in async code, context variables,
    async direct pipes that write a lot, async generators closed mid-stream."""

    @rp.rpc
    async def cancelled(self) -> int:
        """Awaits a task that something else cancelled: its CancelledError is this call's error."""
        task = asyncio.ensure_future(asyncio.sleep(10))
        asyncio.get_running_loop().call_soon(task.cancel)
        await task
        return 1

    @rp.rpc
    async def odd_async(self) -> int:
        raise Odd("async odd")

    @rp.rpc
    def odd(self) -> int:
        raise Odd("plain odd")

    @rp.rpc
    async def set_async(self, value: str) -> str:
        seen = _REQUEST.get()
        _REQUEST.set(value)
        return seen

    @rp.rpc
    def set_plain(self, value: str) -> str:
        seen = _REQUEST.get()
        _REQUEST.set(value)
        return seen

    @rp.one_way
    async def exit_later(self, code: int) -> None:
        sys.exit(code)

    @rp.direct_pipe
    async def many(self, writer: rp.DirectWriter[int], n: int) -> None:
        refused = 0
        for i in range(n):
            refused += not writer.write(i)
            await writer.drain()
        writer.write(-refused - 1)  # -1: none refused
        writer.close()

    @rp.pipe
    async def endless(self) -> AsyncIterator[int]:
        i = 0
        while True:
            yield i
            i += 1
            await asyncio.sleep(0)

    @rp.rpc
    def alive(self) -> bool:
        return True


class ExitsInInit(rp.Worker):
    async def init_worker_state(self, code: int) -> None:
        sys.exit(code)
