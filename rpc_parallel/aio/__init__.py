"""The asyncio API: the same operations as the blocking API, awaitable, over the same core."""

from __future__ import annotations

import asyncio
import functools
import logging
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Generic, Literal, ParamSpec, TypeVar, Unpack, overload

import grpc

from .. import _client
from .._deadline import remaining
from .._errors import RpcParallelError
from .._function import (
    DirectPipeFunction,
    Function,
    Kind,
    OneWayFunction,
    PipeFunction,
    ReversePipeFunction,
    RpcFunction,
    StateFunction,
)
from .._handle import WorkerHandle
from .._options import IGNORE_FAILURE, LOG_FAILURE, ForegroundOptions, ShutdownOn, SpawnOptions
from .._pipes import Closed, DirectPipeId, LogRecord, Update
from .._settings import RpcSettings
from .._transport import open_aio_channel
from .._worker import Worker
from . import map_reduce as map_reduce
from ._bridge import sync_iter as _sync_iter

__all__ = ("Connection", "Pipe", "connect", "map_reduce", "serve", "shutdown", "spawn", "spawn_in_foreground")

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
S = TypeVar("S")
U = TypeVar("U")
_END = object()
_EOF: Any = getattr(grpc.aio, "EOF")  # noqa: B009 - (read() at a stream's end; absent from the type stubs)


class _ThreadSource(Generic[T]):
    """A pipe's batches from a blocking ``rp.Pipe``, each read on a thread."""

    def __init__(self, pipe: _client.Pipe[T]) -> None:
        self._pipe = pipe

    async def next_batch(self) -> list[T] | None:
        return await asyncio.to_thread(self._pipe.next_batch)

    def close(self) -> None:
        self._pipe.close()


class _CallSource(Generic[T]):
    """A pipe's batches read from its ``grpc.aio`` call on this event loop: no thread waits."""

    def __init__(self, call: Any, decode: Callable[[bytes], list[T]], errors: Any) -> None:
        self._call = call
        self._decode = decode
        self._errors = errors
        self._closed = False

    async def next_batch(self) -> list[T] | None:
        if self._closed:
            return None
        try:
            with self._errors:
                data = await self._call.read()
        except RpcParallelError:
            self._closed = True
            if self._call.cancelled():  # close() cancelled it meanwhile: that is its end
                return None
            raise
        if data is _EOF:
            self._closed = True
            return None
        return self._decode(data)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._call.cancel()


class Pipe(Generic[T]):
    """The items of a pipe, for ``async for``; ``aclose()`` (or ``close()``) aborts the stream."""

    def __init__(self, pipe: _client.Pipe[T] | _ThreadSource[T] | _CallSource[T], first: list[T] | None = None
                 ) -> None:
        self._source: _ThreadSource[T] | _CallSource[T] = (
            _ThreadSource(pipe) if isinstance(pipe, _client.Pipe) else pipe)
        self._batch: Iterator[T] = iter(first or ())

    def __aiter__(self) -> Pipe[T]:
        return self

    async def __anext__(self) -> T:
        while True:
            for item in self._batch:
                return item
            batch = await self._source.next_batch()
            if batch is None:
                raise StopAsyncIteration
            self._batch = iter(batch)

    def close(self) -> None:
        self._source.close()

    async def aclose(self) -> None:
        self._source.close()

    async def __aenter__(self) -> Pipe[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._source.close()


class Connection:
    """An asyncio connection to a worker server (see ``rpc_parallel.Connection``)."""

    def __init__(self, conn: _client.Connection) -> None:
        self.sync = conn
        self._channel: grpc.aio.Channel | None = None  # for streams: made on first use, on the running loop

    def _aio_channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            handle = self.sync.handle
            self._channel = open_aio_channel(handle.address, handle.settings, ca=handle.ca)
        return self._channel

    async def _open_stream(self, f: Function[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A pipe's or a state's ``grpc.aio`` call, once the worker's function started: its first
        message read (an error it raised first is raised here), as the blocking ``run`` does."""
        sync: Any = self.sync
        sync._check_open()
        m, args, kwargs, post = sync._adapt(f, args, kwargs)
        data = sync._request(m, args, kwargs)
        call = self._aio_channel().unary_stream(m.path, None, None)(data, metadata=sync._md, timeout=remaining())
        with sync._errors:
            first = await call.read()
        return m, call, first, post

    @property
    def worker_id(self) -> str:
        return self.sync.worker_id

    @property
    def closed(self) -> bool:
        return self.sync.closed

    @overload
    async def run(self, f: RpcFunction[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...
    @overload
    async def run(self, f: OneWayFunction[P], /, *args: P.args, **kwargs: P.kwargs) -> None: ...
    @overload
    async def run(self, f: PipeFunction[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Pipe[T]: ...
    @overload
    async def run(self, f: StateFunction[P, S, U], /, *args: P.args, **kwargs: P.kwargs) -> tuple[S, Pipe[U]]: ...
    @overload
    async def run(self, f: ReversePipeFunction[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...
    @overload
    async def run(self, f: DirectPipeFunction[P, T], /, *args: Any,
                  on_update: Callable[[Update[T] | Closed], object], **kwargs: Any) -> DirectPipeId: ...
    async def run(self, f: Function[Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``f``; results as in the blocking API, pipes as ``rp.aio.Pipe``."""
        kind = f.kind
        sync: Any = self.sync
        if kind is Kind.RPC:
            rpc: Any = f
            return await self.submit(rpc, *args, **kwargs)
        if kind is Kind.ONE_WAY:
            m, data, _ = sync._prepare(f, args, kwargs, Kind.ONE_WAY)  # the arguments as they are now
            try:
                with _client.must_not_wait():
                    return sync._send_one_way(m, data)
            except _client.WouldWait:  # the connection's one_way calls in flight are at their bound
                return await asyncio.to_thread(sync._send_one_way, m, data)
        if kind is Kind.PIPE:  # run waits for the generator to start; then no thread waits on it
            m, call, first, post = await self._open_stream(f, args, kwargs)
            items = m.codec.decode_items
            decode = items if post is None else (lambda d: [post(x) for x in items(d)])
            return Pipe(_CallSource(call, decode, sync._errors), [] if first is _EOF else decode(first))
        if kind is Kind.STATE:
            m, call, first, _ = await self._open_stream(f, args, kwargs)
            if first is _EOF:
                raise RpcParallelError(f"{m.name}: the worker's state stream ended before its state")
            _, state, updates = m.codec.decode_state_message(first)
            return state, Pipe(_CallSource(call, lambda d: m.codec.decode_state_message(d)[2], sync._errors),
                               list(updates))
        loop = asyncio.get_running_loop()
        if kind is Kind.DIRECT_PIPE:  # run returns once the function returned: not on the loop
            callback = kwargs.pop("on_update")
            return await asyncio.to_thread(sync.run, f, *args,
                                           on_update=lambda u: loop.call_soon_threadsafe(callback, u), **kwargs)
        args = tuple(_sync_iter(a, loop) for a in args)
        kwargs = {k: _sync_iter(v, loop) for k, v in kwargs.items()}
        return await asyncio.to_thread(sync.run, f, *args, **kwargs)

    def submit(self, f: RpcFunction[P, R], *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        """Start an rpc call; await the result later. The event loop never blocks: while the
        connection's calls in flight are at their bound, the call waits for room on a thread."""
        sync: Any = self.sync
        m, data, post = sync._prepare(f, args, kwargs, Kind.RPC)  # the arguments as they are now
        try:
            with _client.must_not_wait():
                return asyncio.wrap_future(sync._submit_data(m, data, post))
        except _client.WouldWait:
            return asyncio.ensure_future(self._submit_when_there_is_room(m, data, post))

    async def _submit_when_there_is_room(self, m: Any, data: bytes, post: Any) -> Any:
        """Submit once there is room, on a thread; cancelling this cancels the call, sent or not."""
        sent: list[Any] = []
        cancelled = threading.Event()
        sync: Any = self.sync

        def submit() -> Any:
            sync._wait_for_submit_room(data)
            if cancelled.is_set():  # cancelled while it waited: never sent
                return None
            future = sync._submit_data(m, data, post)
            sent.append(future)
            if cancelled.is_set():
                future.cancel()
            return future

        try:
            future = await asyncio.to_thread(submit)
        except asyncio.CancelledError:
            cancelled.set()
            for f in sent:
                f.cancel()
            raise
        return await asyncio.wrap_future(future)

    def abort(self, pipe_id: DirectPipeId) -> None:
        self.sync.abort(pipe_id)

    async def close_server(self) -> None:
        await asyncio.to_thread(self.sync.close_server)

    async def logs(self, level: int = logging.INFO) -> Pipe[LogRecord]:
        """The worker's ``logging`` records from now on (see ``rpc_parallel.Connection.logs``)."""
        return Pipe(await asyncio.to_thread(self.sync.logs, level))

    async def worker_settings(self) -> RpcSettings:
        return await asyncio.to_thread(self.sync.worker_settings)

    @property
    def close_reason(self) -> str | None:
        """Why the connection is closed (see ``rp.Connection.close_reason``); None while open."""
        return self.sync.close_reason

    async def close(self) -> None:
        """Close the connection (pending one_ways are flushed first, as ``rp.Connection.close``)."""
        await asyncio.to_thread(self.sync.close)
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close(None)

    async def aclose(self) -> None:
        """``close()``, under the name of the async-iterator convention."""
        await self.close()

    async def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the connection is closed; False on timeout."""
        return await asyncio.to_thread(self.sync.wait_closed, timeout)

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _on_loop(callback: Callable[[BaseException], None], loop: asyncio.AbstractEventLoop
             ) -> Callable[[BaseException], None]:
    """``callback`` called on ``loop`` (what is not a callable is left for ``spawn`` to refuse)."""
    if callback in (LOG_FAILURE, IGNORE_FAILURE) or not callable(callback):
        return callback

    def on_failure(exc: BaseException) -> None:
        loop.call_soon_threadsafe(callback, exc)

    return on_failure


@overload
async def spawn(cls: type[Worker], arg: Any = None, *,
                shutdown_on: Literal[ShutdownOn.HEARTBEATER_TIMEOUT, ShutdownOn.CALLED_SHUTDOWN_FUNCTION]
                = ShutdownOn.HEARTBEATER_TIMEOUT, **options: Unpack[SpawnOptions]) -> WorkerHandle: ...
@overload
async def spawn(cls: type[Worker], arg: Any = None, *, shutdown_on: Literal[ShutdownOn.CONNECTION_CLOSED],
                connection_arg: Any = None, **options: Unpack[SpawnOptions]) -> Connection: ...
async def spawn(cls: type[Worker], arg: Any = None, *, shutdown_on: ShutdownOn = ShutdownOn.HEARTBEATER_TIMEOUT,
                connection_arg: Any = None, **options: Unpack[SpawnOptions]) -> WorkerHandle | Connection:
    """``await rp.aio.spawn(Worker, arg, ...)``: ``Worker.spawn`` (the same options) with
    ``on_failure`` called on this event loop; returns a handle, or an ``rp.aio.Connection`` with
    ``CONNECTION_CLOSED``."""
    if "on_failure" in options:  # the default (logging) needs no event loop
        options["on_failure"] = _on_loop(options["on_failure"], asyncio.get_running_loop())
    if shutdown_on is ShutdownOn.CONNECTION_CLOSED:
        def connected() -> _client.Connection:
            return cls.spawn(arg, shutdown_on=ShutdownOn.CONNECTION_CLOSED, connection_arg=connection_arg, **options)

        return Connection(await asyncio.to_thread(connected))

    def spawned() -> WorkerHandle:
        return cls.spawn(arg, shutdown_on=shutdown_on, **options)

    return await asyncio.to_thread(spawned)


async def serve(cls: type[Worker], arg: Any = None, *, settings: RpcSettings | None = None,
                name: str | None = None) -> WorkerHandle:
    """``Worker.serve`` without blocking the event loop."""
    return await asyncio.to_thread(cls.serve, arg, settings=settings, name=name)


@overload
async def connect(handle: WorkerHandle, connection_arg: Any = None, /) -> Connection: ...
@overload
async def connect(cls: type, handle: WorkerHandle, connection_arg: Any = None, /) -> Connection: ...
async def connect(first: Any, second: Any = _client.NOT_GIVEN, third: Any = None, /) -> Connection:
    """Open an asyncio connection to the worker server ``handle``: ``await connect(handle, arg)``
    (its worker type found by the handle's fingerprint among those this process declared) or
    ``await connect(Worker, handle, arg)``."""
    if isinstance(first, WorkerHandle):
        args: tuple[Any, ...] = (first, None if second is _client.NOT_GIVEN else second)
    else:
        args = (first, second, third)
    return Connection(await asyncio.to_thread(_client.connect, *args))


async def shutdown(handle: WorkerHandle) -> None:
    """``await rp.aio.shutdown(handle)``: ``handle.shutdown()`` without blocking the event loop."""
    await asyncio.to_thread(handle.shutdown)


async def spawn_in_foreground(cls: type[Worker], arg: Any = None, *,
                              shutdown_on: ShutdownOn = ShutdownOn.HEARTBEATER_TIMEOUT,
                              **options: Unpack[ForegroundOptions]) -> tuple[WorkerHandle, subprocess.Popen[bytes]]:
    """``Worker.spawn_in_foreground`` without blocking the event loop (the caller reads the
    process's pipes and reaps it)."""
    return await asyncio.to_thread(functools.partial(cls.spawn_in_foreground, arg, shutdown_on=shutdown_on,
                                                     **options))
