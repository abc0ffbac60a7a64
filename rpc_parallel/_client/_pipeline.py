"""The caller's half of a connection's ``rpc`` calls on its streams: its blocking ``run`` calls one
at a time on a ``Control/Call`` stream (``CallStream``), and the calls ``submit`` makes,
multiplexed on one ``Control/Pipeline`` stream (``Pipeline``), instead of one gRPC call each.

A gRPC call costs both processes far more CPU than a message on an open stream (call set-up,
metadata, HTTP/2 stream, completion-queue wake-ups in each process), so many small calls in flight
are cheaper sent as batches of ``PipelineCall``s, as OCaml's rpc_parallel multiplexes its calls on
one connection. The worker (``rpc_parallel._server._pipeline``) sends results back in batches as
they finish, a large result in parts. Unary calls stay for everything else, and for any gRPC client.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import itertools
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import grpc.aio

from .._errors import ConnectionClosedError, RpcParallelError, WorkerConnectionError
from .._grpc_errors import ErrorBoundary, map_error_info, map_rpc_error
from .._proto import control_pb2, control_pb2_grpc
from .._protocol import PIPELINE_BATCH, SUBMIT_MAX_BYTES, SUBMIT_MAX_CALLS
from ._session import delivering, in_done_callback, wait_allowed

__all__ = ("AioCallStream", "CallStream", "Pipeline")

_END = object()


class Pipeline:
    """One connection's pipeline stream; opened on first use, failed as a whole if the stream ends."""

    def __init__(self, channel: grpc.Channel, metadata: tuple[tuple[str, str], ...], label: str,
                 limit: int) -> None:
        self._label = label
        self._batch = max(1, min(PIPELINE_BATCH, limit // 2))  # bytes of requests per message
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: dict[int, tuple[concurrent.futures.Future[Any], Callable[[bytes], Any], int]] = {}
        self._pending_bytes = 0  # of the requests in flight
        self._parts: dict[int, list[bytes]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # a call in flight ended
        self._failure: Callable[[], RpcParallelError] | None = None  # set once the stream ended
        stub = control_pb2_grpc.ControlStub(channel)
        self._call: Any = stub.Pipeline(self._requests(), metadata=metadata)
        self._reader = threading.Thread(target=self._read, name=f"rpc_parallel-pipeline-{label}", daemon=True)
        self._reader.start()

    @property
    def broken(self) -> bool:
        return self._failure is not None

    def _full(self, size: int) -> bool:
        """With the lock held: whether a request of ``size`` bytes must wait for room."""
        return self._failure is None and bool(self._pending) and (
            len(self._pending) >= SUBMIT_MAX_CALLS or self._pending_bytes + size > SUBMIT_MAX_BYTES)

    def wait_for_room(self, size: int) -> None:
        """Wait until a request of ``size`` bytes would not wait in ``submit`` (or the stream broke)."""
        with self._lock:
            while self._full(size):
                self._room.wait()

    def submit(self, method: str, request: bytes, decode: Callable[[bytes], Any]) -> concurrent.futures.Future[Any]:
        """Start a call of ``method``; the future gets ``decode(reply)`` or the call's error. Until
        it has, ``future.cancel()`` cancels the call: the worker does not run it if it has not
        started, or drops its result.

        With ``SUBMIT_MAX_CALLS`` calls or ``SUBMIT_MAX_BYTES`` of requests in flight, the caller
        waits for some to finish (but a done-callback never waits: the thread it runs on is what
        makes room)."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        call_id = next(self._ids)
        size = len(request)
        patient = not in_done_callback()
        with self._lock:
            while patient and self._full(size) and wait_allowed():
                self._room.wait()
            failure = self._failure
            if failure is None:
                self._pending[call_id] = (future, decode, size)
                self._pending_bytes += size
        if failure is not None:
            future.set_running_or_notify_cancel()
            future.set_exception(failure())
            return future
        self._queue.put(control_pb2.PipelineCall(id=call_id, method=method, request=request))
        future.add_done_callback(functools.partial(self._done, call_id))
        return future

    def _done(self, call_id: int, future: concurrent.futures.Future[Any]) -> None:
        """A future ended: if the caller cancelled it, forget the call and tell the worker."""
        if not future.cancelled():
            return
        with self._lock:
            entry = self._pending.pop(call_id, None)
            if entry is not None:
                self._pending_bytes -= entry[2]
                self._room.notify()
        if entry is not None and self._failure is None:
            self._queue.put(call_id)

    def _requests(self) -> Iterator[control_pb2.PipelineRequests]:
        """The request stream (gRPC consumes it on its own thread): batches of queued calls, and the
        ids of calls cancelled meanwhile."""
        get, get_nowait = self._queue.get, self._queue.get_nowait
        cap = self._batch
        item = get()
        while item is not _END:
            calls: list[control_pb2.PipelineCall] = []
            cancels: list[int] = []
            size = 0
            while True:  # add what is queued while it fits; what does not opens the next batch
                if type(item) is int:
                    cancels.append(item)
                else:
                    more = item.ByteSize() + 8  # the call's own framing inside the batch
                    if calls and size + more > cap:
                        break
                    calls.append(item)
                    size += more
                try:
                    item = get_nowait()
                except queue.Empty:
                    item = None
                    break
                if item is _END:
                    break
            yield control_pb2.PipelineRequests(calls=calls, cancel=cancels)
            if item is None:
                item = get()

    def _read(self) -> None:
        label = self._label
        failure: Callable[[], RpcParallelError] = functools.partial(
            WorkerConnectionError, f"{label} ended the pipeline stream")
        try:
            for replies in self._call:
                for result in replies.results:
                    self._deliver(result)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED and self._call.cancelled():
                failure = _closed
            else:  # each call gets its own exception object
                failure = functools.partial(map_rpc_error, exc, worker=label)
        finally:
            self._fail(failure)

    def _deliver(self, result: control_pb2.PipelineResult) -> None:
        if result.more:
            self._parts.setdefault(result.id, []).append(result.reply)
            return
        with self._lock:
            entry = self._pending.pop(result.id, None)
            if entry is not None:
                self._pending_bytes -= entry[2]
                self._room.notify()
        parts = self._parts.pop(result.id, None)
        if entry is None:
            return
        future, decode, _ = entry
        if not future.set_running_or_notify_cancel():
            return  # cancelled meanwhile
        with delivering():
            if result.HasField("error"):
                future.set_exception(map_error_info(result.error, worker=self._label))
                return
            try:
                value = decode(b"".join((*parts, result.reply)) if parts else result.reply)
            except Exception as exc:
                future.set_exception(exc)
            else:
                future.set_result(value)

    def _fail(self, failure: Callable[[], RpcParallelError]) -> None:
        """The stream ended: every call in flight fails, and so does every later one."""
        with self._lock:
            if self._failure is None:
                self._failure = failure
            pending, self._pending = self._pending, {}
            self._pending_bytes = 0
            self._room.notify_all()
        self._queue.put(_END)  # gRPC's thread may be waiting in _requests
        with delivering():
            for future, _, _ in pending.values():
                if future.set_running_or_notify_cancel():
                    future.set_exception(self._failure())

    def close(self) -> None:
        """End the stream; calls still in flight fail with ``ConnectionClosedError``."""
        self._fail(_closed)
        self._call.cancel()


def _closed() -> RpcParallelError:
    return ConnectionClosedError("the connection was closed while this call was in flight")


class CallStream:
    """One connection's ``Control/Call`` stream, opened on first use: a blocking call writes its
    request and reads its reply on the calling thread, one call at a time (a call that finds one
    in flight is not made here: ``call`` says so, and it goes as a unary call)."""

    def __init__(self, channel: grpc.Channel, metadata: tuple[tuple[str, str], ...], label: str,
                 errors: ErrorBoundary) -> None:
        self._open: Any = control_pb2_grpc.ControlStub(channel).Call
        self._metadata = metadata
        self._label = label
        self._errors = errors
        self._lock = threading.Lock()
        self._requests: queue.SimpleQueue[Any] | None = None
        self._replies: Any = None
        self._closed = False

    def call(self, method: str, request: bytes) -> bytes | None:
        """The reply of a call of ``method``, or None if another call is in flight; the call's
        error (as a unary call of the method would raise it) if it failed."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._closed:
                return None
            if self._replies is None:
                requests = self._requests = queue.SimpleQueue()
                self._replies = self._open(iter(requests.get, _END), metadata=self._metadata)
            assert self._requests is not None
            self._requests.put(control_pb2.PipelineCall(method=method, request=request))
            parts: list[bytes] = []
            try:
                with self._errors:
                    result = next(self._replies)
                    while result.more:
                        parts.append(result.reply)
                        result = next(self._replies)
            except BaseException:
                self._end()  # the stream is broken (the next call opens another)
                raise
        except StopIteration:
            raise WorkerConnectionError(f"{self._label} ended the call stream") from None
        finally:
            self._lock.release()
        return _reply(result, parts, self._label)

    def _end(self) -> None:
        if self._requests is not None:
            self._requests.put(_END)
        if self._replies is not None:
            self._replies.cancel()
        self._requests = self._replies = None

    def close(self) -> None:
        """End the stream (a call in flight fails as the connection's close makes it)."""
        self._closed = True
        requests, replies = self._requests, self._replies
        if requests is not None:
            requests.put(_END)
        if replies is not None:
            replies.cancel()


class AioCallStream:
    """``CallStream`` for ``rp.aio``: the stream is a ``grpc.aio`` call on the caller's event loop,
    and a call that finds another task's call in flight is not made here (``call`` says so)."""

    def __init__(self, channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...], label: str,
                 errors: ErrorBoundary) -> None:
        self._open = channel.stream_stream(_CALL, request_serializer=control_pb2.PipelineCall.SerializeToString,
                                           response_deserializer=control_pb2.PipelineResult.FromString)
        self._metadata = metadata
        self._label = label
        self._errors = errors
        self._busy = False
        self._call: Any = None
        self._closed = False

    async def call(self, method: str, request: bytes) -> bytes | None:
        """As ``CallStream.call``. Cancelling the awaiting task cancels the stream, and so the call."""
        if self._busy or self._closed:
            return None
        self._busy = True
        try:
            if self._call is None:
                self._call = self._open(None, metadata=self._metadata)  # (written to)
            call = self._call
            parts: list[bytes] = []
            try:
                with self._errors:
                    await call.write(control_pb2.PipelineCall(method=method, request=request))
                    result = await call.read()
                    while result is not _AIO_EOF and result.more:
                        parts.append(result.reply)
                        result = await call.read()
            except asyncio.CancelledError:
                self._end()  # its reply unread: the next call opens another stream
                task = asyncio.current_task()
                if self.is_closed() and task is not None and not task.cancelling():  # close() cancelled the stream
                    raise ConnectionClosedError("the connection was closed while this call was in flight") from None
                raise
            except BaseException:
                self._end()  # broken: the next call opens another
                raise
            if result is _AIO_EOF:
                self._end()
                raise WorkerConnectionError(f"{self._label} ended the call stream")
        finally:
            self._busy = False
        return _reply(result, parts, self._label)

    def is_closed(self) -> bool:
        return self._closed

    def _end(self) -> None:
        call, self._call = self._call, None
        if call is not None:
            call.cancel()

    def close(self) -> None:
        self._closed = True
        self._end()


def _reply(result: control_pb2.PipelineResult, parts: list[bytes], label: str) -> bytes:
    """A call's reply from its last result (and earlier parts); its error raised."""
    if result.HasField("error"):
        raise map_error_info(result.error, worker=label)
    return b"".join((*parts, result.reply)) if parts else result.reply


_CALL = "/rpc_parallel.v1.Control/Call"
_AIO_EOF: Any = getattr(grpc.aio, "EOF")  # noqa: B009 - (read() at a stream's end; absent from the type stubs)
