"""The asyncio API: the same operations as the blocking API, awaitable, over the same core."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, Literal, ParamSpec, TypeVar, Unpack, cast, overload

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
_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


async def _offload(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on a thread of rp.aio's own pool (in this context: rp.deadline
    holds there), never the loop's default executor, which the program's own blocking calls may
    fill: a few waiting calls of ours must not stall every other."""
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=64, thread_name_prefix="rpc_parallel-aio")
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(
        _EXECUTOR, functools.partial(context.run, fn, *args, **kwargs))
_EOF: Any = getattr(grpc.aio, "EOF")  # noqa: B009 - (read() at a stream's end; absent from the type stubs)


class _ThreadSource(Generic[T]):
    """A pipe's batches from a blocking ``rp.Pipe``, each read on a thread."""

    def __init__(self, pipe: _client.Pipe[T]) -> None:
        self._pipe = pipe

    async def next_batch(self) -> list[T] | None:
        return await _offload(self._pipe.next_batch)

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
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self.ended and (task is None or not task.cancelling()):
                return None  # close() from elsewhere cancelled the read: the pipe's end, not this task's
            raise
        if data is _EOF:
            self._closed = True
            return None
        return self._decode(data)

    @property
    def ended(self) -> bool:
        """Whether the pipe ended (or ``close()`` was called), as seen now."""
        return self._closed

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
        self._channel_loop: asyncio.AbstractEventLoop | None = None
        self._running = 0  # rpc calls of run in flight
        self._calls: _client.AioCallStream | None = None
        self._direct: dict[int, Any] = {}  # direct pipes read on this loop, by id
        self._tasks: set[asyncio.Task[None]] = set()

    def _aio_channel(self) -> grpc.aio.Channel:
        """The connection's grpc.aio channel on the running loop (a connection used from another
        loop later, as a fixture shared by tests each with their own, gets a channel there)."""
        loop = asyncio.get_running_loop()
        if self._channel is None or self._channel_loop is not loop:
            handle = self.sync.handle
            self._channel = open_aio_channel(handle.address, handle.settings, ca=handle.ca)
            self._channel_loop = loop
            self._calls = None  # (its stream was on the other loop's channel)
        return self._channel

    def _call_stream(self) -> _client.AioCallStream:
        channel = self._aio_channel()
        if self._calls is None:
            sync: Any = self.sync
            self._calls = _client.AioCallStream(channel, sync._md, sync._label, sync._errors)
        return self._calls

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
    @overload  # a reverse direct pipe: a writer function in place of the updates
    async def run(self, f: ReversePipeFunction[..., R], /, *args: Any, **kwargs: Any) -> R: ...
    @overload
    async def run(self, f: DirectPipeFunction[P, T], /, *args: Any,
                  on_update: Callable[[Update[T] | Closed], object], **kwargs: Any) -> DirectPipeId: ...
    async def run(self, f: Function[Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``f``; results as in the blocking API, pipes as ``rp.aio.Pipe``."""
        kind = f.kind
        sync: Any = self.sync
        if kind is Kind.RPC:
            m, data, post = sync._prepare(f, args, kwargs, Kind.RPC)
            # a call alone on its connection rides the call stream (the shortest round trip);
            # calls made together are pipelined, which carries many at once for less CPU
            alone = not self._running and remaining() is None and sync.streams(m, data)
            self._running += 1
            try:
                reply = await self._call_stream().call(m.rpc_name, data) if alone else None
                if reply is None:
                    return await self._submit_prepared(m, data, post)
            finally:
                self._running -= 1
            value = m.codec.decode_result(reply)
            return value if post is None else post(value)
        if kind is Kind.ONE_WAY:
            m, data, _ = sync._prepare(f, args, kwargs, Kind.ONE_WAY)  # the arguments as they are now
            try:
                with _client.must_not_wait():
                    return sync._send_one_way(m, data)
            except _client.WouldWait:  # the connection's one_way calls in flight are at their bound
                return await _offload(sync._send_one_way, m, data)
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
        if kind is Kind.DIRECT_PIPE:
            callback = kwargs.pop("on_update", None)
            if callback is None:
                raise TypeError(f"{f.qualname}() is a direct_pipe: pass on_update=callback")
            return await self._direct_pipe(f, args, kwargs, callback)
        args = tuple(_sync_iter(a, loop) for a in args)
        kwargs = {k: _sync_iter(v, loop) for k, v in kwargs.items()}
        return await _offload(sync.run, f, *args, **kwargs)

    def submit(self, f: RpcFunction[P, R], *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        """Start an rpc call; await the result later. The event loop never blocks: while the
        connection's calls in flight are at their bound, the call waits for room on a thread."""
        sync: Any = self.sync
        return self._submit_prepared(*sync._prepare(f, args, kwargs, Kind.RPC))  # the arguments as they are now

    def _submit_prepared(self, m: Any, data: bytes, post: Any) -> Awaitable[Any]:
        sync: Any = self.sync
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
            future = await _offload(submit)
        except asyncio.CancelledError:
            cancelled.set()
            for f in sent:
                f.cancel()
            raise
        return await asyncio.wrap_future(future)

    def abort(self, pipe_id: DirectPipeId) -> None:
        """Cancel a running direct pipe; its ``on_update`` then gets ``Closed("aborted")``."""
        call = self._direct.get(pipe_id.value)
        if call is not None:
            call.cancel()
        else:
            self.sync.abort(pipe_id)

    async def _direct_pipe(self, f: Function[Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                           on_update: Callable[[Any], object]) -> DirectPipeId:
        """A direct pipe read on this loop: ``run`` returns once the function returned (an
        exception it raised before is raised here), and ``on_update`` runs on this loop from then
        on, from a task (never before ``run`` returned); no thread waits."""
        sync: Any = self.sync
        sync._check_open()
        m, args, kwargs, post = sync._adapt(f, args, kwargs)
        data = sync._request(m, args, kwargs)
        call = self._aio_channel().unary_stream(m.path, None, None)(data, metadata=sync._md, timeout=remaining())
        early: list[Any] = []
        ended = False
        with sync._errors:
            while True:  # up to the mark of the function's return
                message = await call.read()
                if message is _EOF:  # it closed its writer and returned
                    ended = True
                    break
                items = m.codec.decode_items(message)
                if not items:
                    break
                early.extend(items)
        pipe_id = DirectPipeId(next(sync._direct_ids))
        self._direct[pipe_id.value] = call
        errors = sync._errors
        label = sync._label

        def update(item: Any) -> None:
            on_update(Update(post(item) if post is not None else item))

        async def deliver() -> None:
            reason, error = "by_remote_side", cast(BaseException | None, None)
            try:
                for item in early:
                    update(item)
                while not ended:
                    try:
                        with errors:
                            message = await call.read()
                    except RpcParallelError as exc:
                        if call.cancelled():
                            reason = "aborted"
                        else:
                            reason, error = str(exc), exc
                        break
                    except asyncio.CancelledError:
                        reason = "aborted"
                        break
                    if message is _EOF:
                        break
                    for item in m.codec.decode_items(message):
                        update(item)
            except Exception as exc:  # on_update (or a map function) raised: the pipe ends with it
                reason, error = _client.update_failed(call, exc, pipe_id, label)
            finally:
                self._direct.pop(pipe_id.value, None)
            _client.deliver_closed(on_update, Closed(reason, error), pipe_id, label)

        task = asyncio.get_running_loop().create_task(deliver())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return pipe_id

    async def close_server(self) -> None:
        await _offload(self.sync.close_server)

    async def logs(self, level: int = logging.INFO) -> Pipe[LogRecord]:
        """The worker's ``logging`` records from now on (see ``rpc_parallel.Connection.logs``)."""
        return Pipe(await _offload(self.sync.logs, level))

    async def worker_settings(self) -> RpcSettings:
        return await _offload(self.sync.worker_settings)

    @property
    def close_reason(self) -> str | None:
        """Why the connection is closed (see ``rp.Connection.close_reason``); None while open."""
        return self.sync.close_reason

    async def close(self) -> None:
        """Close the connection (pending one_ways are flushed first, as ``rp.Connection.close``)."""
        if self._calls is not None:
            self._calls.close()
        await _offload(self.sync.close)
        if self._channel is not None:
            channel, self._channel = self._channel, None
            if self._channel_loop is asyncio.get_running_loop():  # (one of another loop goes with it)
                await channel.close(None)

    async def aclose(self) -> None:
        """``close()``, under the name of the async-iterator convention."""
        await self.close()

    async def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the connection is closed; False on timeout. No thread waits meanwhile."""
        loop = asyncio.get_running_loop()
        closed = loop.create_future()

        def mark() -> None:
            if not closed.done():
                closed.set_result(True)

        self.sync.on_closed(lambda: loop.call_soon_threadsafe(mark))
        try:
            return await asyncio.wait_for(asyncio.shield(closed), timeout)
        except TimeoutError:
            return False

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

        return Connection(await _offload(connected))

    def spawned() -> WorkerHandle:
        return cls.spawn(arg, shutdown_on=shutdown_on, **options)

    return await _offload(spawned)


async def serve(cls: type[Worker], arg: Any = None, *, settings: RpcSettings | None = None,
                name: str | None = None) -> WorkerHandle:
    """``Worker.serve`` without blocking the event loop."""
    return await _offload(cls.serve, arg, settings=settings, name=name)


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
    return Connection(await _offload(_client.connect, *args))


async def shutdown(handle: WorkerHandle) -> None:
    """``await rp.aio.shutdown(handle)``: ``handle.shutdown()`` without blocking the event loop."""
    await _offload(handle.shutdown)


async def spawn_in_foreground(cls: type[Worker], arg: Any = None, *,
                              shutdown_on: ShutdownOn = ShutdownOn.HEARTBEATER_TIMEOUT,
                              **options: Unpack[ForegroundOptions]) -> tuple[WorkerHandle, subprocess.Popen[bytes]]:
    """``Worker.spawn_in_foreground`` without blocking the event loop (the caller reads the
    process's pipes and reaps it)."""
    return await _offload(functools.partial(cls.spawn_in_foreground, arg, shutdown_on=shutdown_on,
                                                     **options))
