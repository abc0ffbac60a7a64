"""Pipelined ``rpc`` calls: the calls ``submit`` makes on a connection, multiplexed on one
``Control/Pipeline`` stream instead of one gRPC call each (both sides).

A gRPC call costs both processes far more CPU than a message on an open stream (call set-up,
metadata, HTTP/2 stream, completion-queue wake-ups in each process), so many small calls in flight
are cheaper sent as batches of ``PipelineCall``s, as OCaml's rpc_parallel multiplexes its calls on
one connection. The worker runs each call exactly as a unary call of its method (same connection
state, same errors, in its thread pool) and sends results back in batches as they finish, a large
result in parts. Unary calls stay for everything else, and for any gRPC client.
"""

from __future__ import annotations

import concurrent.futures
import functools
import itertools
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import grpc

from ._errors import ConnectionClosedError, RpcParallelError, WorkerConnectionError
from ._grpc_errors import CallFailed, map_error_info, map_rpc_error
from ._proto import control_pb2, control_pb2_grpc, errors_pb2

if TYPE_CHECKING:
    from ._server import WorkerServer

__all__ = ("MAX_REQUEST", "MIN_LIMIT", "Pipeline", "serve")

MIN_LIMIT = 256 << 10  # below this max_message_size, calls go unary (a batch or an error must fit)
MAX_REQUEST = 64 << 10  # larger requests go unary: batching gains them nothing
_BATCH = 256 << 10  # requests per message, in bytes
_PART = 1 << 20  # results per message (and parts of a large one), in bytes, at most half the limit
_END = object()


# -- the caller's side ---------------------------------------------------------------------------


class Pipeline:
    """One connection's pipeline stream; opened on first use, failed as a whole if the stream ends."""

    def __init__(self, channel: grpc.Channel, metadata: tuple[tuple[str, str], ...], label: str,
                 limit: int) -> None:
        self._label = label
        self._batch = max(1, min(_BATCH, limit // 2))  # bytes of requests per message
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: dict[int, tuple[concurrent.futures.Future[Any], Callable[[bytes], Any]]] = {}
        self._parts: dict[int, list[bytes]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._failure: Callable[[], RpcParallelError] | None = None  # set once the stream ended
        stub = control_pb2_grpc.ControlStub(channel)
        self._call: Any = stub.Pipeline(self._requests(), metadata=metadata)
        threading.Thread(target=self._read, name=f"rpc_parallel-pipeline-{label}", daemon=True).start()

    @property
    def broken(self) -> bool:
        return self._failure is not None

    def submit(self, method: str, request: bytes, decode: Callable[[bytes], Any]) -> concurrent.futures.Future[Any]:
        """Start a call of ``method``; the future gets ``decode(reply)`` or the call's error. It is
        running from the start: a call on its way cannot be cancelled (``cancel()`` is False)."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.set_running_or_notify_cancel()
        call_id = next(self._ids)
        with self._lock:
            failure = self._failure
            if failure is None:
                self._pending[call_id] = (future, decode)
        if failure is not None:
            future.set_exception(failure())
            return future
        self._queue.put(control_pb2.PipelineCall(id=call_id, method=method, request=request))
        return future

    def _requests(self) -> Iterator[control_pb2.PipelineRequests]:
        """The request stream (gRPC consumes it on its own thread): batches of queued calls."""
        get, get_nowait = self._queue.get, self._queue.get_nowait
        cap = self._batch
        call = get()
        while call is not _END:
            batch, size = [call], call.ByteSize() + 8
            while True:  # add what is queued while it fits; what does not opens the next batch
                try:
                    call = get_nowait()
                except queue.Empty:
                    call = None
                    break
                if call is _END:
                    break
                more = call.ByteSize() + 8  # the call's own framing inside the batch
                if size + more > cap:
                    break
                batch.append(call)
                size += more
            yield control_pb2.PipelineRequests(calls=batch)
            if call is None:
                call = get()

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
        parts = self._parts.pop(result.id, None)
        if entry is None:
            return
        future, decode = entry
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
        self._queue.put(_END)  # gRPC's thread may be waiting in _requests
        for future, _ in pending.values():
            future.set_exception(self._failure())

    def close(self) -> None:
        """End the stream; calls still in flight fail with ``ConnectionClosedError``."""
        self._fail(_closed)
        self._call.cancel()


def _closed() -> RpcParallelError:
    return ConnectionClosedError("the connection was closed while this call was in flight")


# -- the worker's side ---------------------------------------------------------------------------


def serve(server: WorkerServer, requests: Iterator[control_pb2.PipelineRequests],
          context: grpc.ServicerContext) -> Iterator[control_pb2.PipelineReplies]:
    """Run the calls of one pipeline stream on ``server``'s thread pool; yield their results."""
    conn = server.connection_id(context)
    server.state_for(context)  # a stream of no (or a closed) connection ends here
    limit = server.settings.max_message_size
    part = max(1, min(_PART, limit // 2))
    out: queue.SimpleQueue[Any] = queue.SimpleQueue()
    if not context.add_callback(lambda: out.put(None)):  # cancelled, or the server stops
        return
    submitted = [0]

    def read() -> None:
        submit = server.submit_call
        try:
            for batch in requests:
                for call in batch.calls:
                    submitted[0] += 1
                    submit(_run, server, conn, call, part, out)
        except Exception:  # the stream failed or the server is stopping: the writer hears of it
            pass
        out.put((_END, submitted[0]))

    threading.Thread(target=read, name="rpc_parallel-pipeline", daemon=True).start()
    delivered, total = 0, -1
    get, get_nowait = out.get, out.get_nowait
    batch: list[control_pb2.PipelineResult] = []
    size = 0
    while delivered != total:
        item = get()
        while True:  # take what is ready; a message never holds more than ``part`` bytes of results
            if item is None:
                return
            if type(item) is tuple:
                total = item[1]
            else:
                delivered += 1
                for result in item:  # a call's result, or the parts of a large one, each <= part
                    more = result.ByteSize() + 8
                    if batch and size + more > part:
                        yield control_pb2.PipelineReplies(results=batch)
                        batch, size = [], 0
                    batch.append(result)
                    size += more
            try:
                item = get_nowait()
            except queue.Empty:
                break
        if batch:
            yield control_pb2.PipelineReplies(results=batch)
            batch, size = [], 0


def _run(server: WorkerServer, conn: str, call: control_pb2.PipelineCall, part: int,
         out: queue.SimpleQueue[Any]) -> None:
    """Run one call; always answer it (the stream ends once every call got its answer)."""
    try:
        results = _outcome(server, conn, call, part)
    except BaseException as exc:  # what _outcome lets through (e.g. an error that cannot describe itself)
        results = [control_pb2.PipelineResult(id=call.id, error=errors_pb2.ErrorInfo(
            type=type(exc).__qualname__, message="(the error could not be described)",
            worker_id=server.worker_id, worker_name=server.name or ""))]
    out.put(results)


def _outcome(server: WorkerServer, conn: str, call: control_pb2.PipelineCall,
             part: int) -> list[control_pb2.PipelineResult]:
    """What a unary call of ``call.method`` would have answered, as results (parts) or an error."""
    try:
        codec, impl = server.rpc(call.method)
        state = server.state_of(conn)
        data = server.run_rpc(impl, state, codec.decode_request, call.request, codec.encode_result, len)
    except CallFailed as failed:
        return [control_pb2.PipelineResult(id=call.id, error=failed.info)]
    if len(data) <= part:
        return [control_pb2.PipelineResult(id=call.id, reply=data)]
    view = memoryview(data)
    last = (len(data) - 1) // part
    return [control_pb2.PipelineResult(id=call.id, reply=bytes(view[i * part:(i + 1) * part]), more=i < last)
            for i in range(last + 1)]
