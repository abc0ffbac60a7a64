"""The worker's half of pipelined ``rpc`` calls: one ``Control/Pipeline`` stream carries a
connection's ``submit`` calls in batches (``PipelineRequests``) and their results back in batches
(``PipelineReplies``), a large result in parts. Each call runs exactly as a unary call of its
method would (same connection state, same errors, on the thread pool that runs calls); results go
back as they finish. The caller's half is ``rpc_parallel._client._pipeline``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import grpc

from .._grpc_errors import CallFailed
from .._proto import control_pb2, errors_pb2
from .._protocol import PIPELINE_PART
from ._core import WorkerCore, connection_id

__all__ = ("serve",)

_END = object()


def serve(core: WorkerCore, requests: Iterator[control_pb2.PipelineRequests],
          context: grpc.ServicerContext) -> Iterator[control_pb2.PipelineReplies]:
    """Run the calls of one pipeline stream on the thread pool that runs calls; yield their results."""
    conn = connection_id(context)
    core.state_for(context)  # a stream of no (or a closed) connection ends here
    limit = core.settings.max_message_size
    part = max(1, min(PIPELINE_PART, limit // 2))
    out: queue.SimpleQueue[Any] = queue.SimpleQueue()
    if not context.add_callback(lambda: out.put(None)):  # cancelled, or the server stops
        return
    submitted = [0]
    live: set[int] = set()  # calls submitted and not answered yet
    cancelled: set[int] = set()  # live calls the caller gave up on: not run if not started yet

    def read() -> None:
        submit = core.submit_call
        try:
            for batch in requests:
                cancelled.update(cid for cid in batch.cancel if cid in live)  # a late cancel is moot
                for call in batch.calls:
                    submitted[0] += 1
                    live.add(call.id)
                    submit(_run, core, conn, call, part, out, live, cancelled)
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


def _run(core: WorkerCore, conn: str, call: control_pb2.PipelineCall, part: int,
         out: queue.SimpleQueue[Any], live: set[int], cancelled: set[int]) -> None:
    """Run one call (unless cancelled before it started); always answer it (the stream ends once
    every call got its answer)."""
    if call.id in cancelled:
        cancelled.discard(call.id)
        live.discard(call.id)
        out.put([control_pb2.PipelineResult(id=call.id, error=errors_pb2.ErrorInfo(
            type="Cancelled", message="the caller cancelled this call", worker_id=core.worker_id,
            worker_name=core.name or ""))])
        return
    try:
        results = _outcome(core, conn, call, part)
    except BaseException as exc:  # what _outcome lets through (e.g. an error that cannot describe itself)
        results = [control_pb2.PipelineResult(id=call.id, error=errors_pb2.ErrorInfo(
            type=type(exc).__qualname__, message="(the error could not be described)",
            worker_id=core.worker_id, worker_name=core.name or ""))]
    live.discard(call.id)
    cancelled.discard(call.id)  # a cancel that came while it ran: the caller drops the result
    out.put(results)


def _outcome(core: WorkerCore, conn: str, call: control_pb2.PipelineCall,
             part: int) -> list[control_pb2.PipelineResult]:
    """What a unary call of ``call.method`` would have answered, as results (parts) or an error."""
    try:
        codec, impl = core.rpc(call.method)
        state = core.state_of(conn)
        data = core.run_rpc(impl, state, codec.decode_request, call.request, codec.encode_result, len)
    except CallFailed as failed:
        return [control_pb2.PipelineResult(id=call.id, error=failed.info)]
    if len(data) <= part:
        return [control_pb2.PipelineResult(id=call.id, reply=data)]
    view = memoryview(data)
    last = (len(data) - 1) // part
    return [control_pb2.PipelineResult(id=call.id, reply=bytes(view[i * part:(i + 1) * part]), more=i < last)
            for i in range(last + 1)]
