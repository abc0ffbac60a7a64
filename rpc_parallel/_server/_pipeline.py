"""The worker's half of a connection's ``rpc`` calls on its streams: ``Control/Call`` carries its
blocking ``run`` calls one at a time. Pipelined calls: one ``Control/Pipeline`` stream carries a
connection's ``submit`` calls in batches (``PipelineRequests``) and their results back in batches
(``PipelineReplies``), a large result in parts. Each call runs exactly as a unary call of its
method would (same connection state, same errors, on the thread pool that runs calls); results go
back as they finish. The caller's half is ``rpc_parallel._client._pipeline``.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator

from .._grpc_errors import CallFailed
from .._proto import control_pb2, errors_pb2
from .._protocol import PIPELINE_PART
from ._core import Context, WorkerCore, cancelled_here, connection_id, is_coroutine_function, when_done
from ._pump import Pump

__all__ = ("serve", "serve_calls")


async def serve(core: WorkerCore, requests: AsyncIterator[control_pb2.PipelineRequests],
                context: Context) -> AsyncIterator[control_pb2.PipelineReplies]:
    """Run the calls of one pipeline stream (plain functions on the thread pool, ``async def``
    ones on the event loop); yield their results as they finish."""
    conn = connection_id(context)
    await core.state_for(context)  # a stream of no (or a closed) connection ends here
    limit = core.settings.max_message_size
    part = max(1, min(PIPELINE_PART, limit // 2))
    # results (each a list: a result, or the parts of a large one), from threads and tasks; not
    # bounded: the caller bounds the calls it has in flight
    out = Pump(core.loop, high_water=1 << 62, high_bytes=1 << 62, shared=True)
    when_done(context, out.stop)
    live: set[int] = set()  # calls submitted and not answered yet
    cancelled: set[int] = set()  # live calls the caller gave up on: not run if not started yet
    submitted = [-1]  # known once the caller's requests ended

    async def read() -> None:
        count = 0
        try:
            async for batch in requests:
                cancelled.update(cid for cid in batch.cancel if cid in live)  # a late cancel is moot
                for call in batch.calls:
                    count += 1
                    live.add(call.id)
                    if _is_async(core, call.method):
                        core.background(_run_async(core, conn, call, part, out, live, cancelled))
                    else:
                        core.threads.submit(_run, core, conn, call, part, out, live, cancelled)
        except Exception:  # the stream failed or the server is stopping: the writer hears of it
            pass
        submitted[0] = count
        out.put(None)  # (a wake-up: the stream ends once every call is answered)

    reader = core.background(read())
    batch: list[control_pb2.PipelineResult] = []
    size = delivered = 0
    try:
        async for ready in out.batches():
            for item in ready:  # a message never holds more than ``part`` bytes of results
                if item is None:
                    continue
                delivered += 1
                for result in item:  # a call's result, or the parts of a large one, each <= part
                    more = result.ByteSize() + 8
                    if batch and size + more > part:
                        yield control_pb2.PipelineReplies(results=batch)
                        batch, size = [], 0
                    batch.append(result)
                    size += more
            if batch:
                yield control_pb2.PipelineReplies(results=batch)
                batch, size = [], 0
            if delivered == submitted[0]:
                return
    finally:
        reader.cancel()


async def serve_calls(core: WorkerCore, requests: AsyncIterator[control_pb2.PipelineCall],
                      context: Context) -> AsyncIterator[control_pb2.PipelineResult]:
    """``Control/Call``: a connection's blocking calls, each answered (its result, or the parts of
    a large one) before the caller sends the next."""
    conn = connection_id(context)
    await core.state_for(context)  # a stream of no (or a closed) connection ends here
    part = max(1, min(PIPELINE_PART, core.settings.max_message_size // 2))
    base = contextvars.copy_context()
    async for call in requests:
        if _is_async(core, call.method):  # a task of its own, as a unary call's: no call sees another's context
            results = await asyncio.create_task(_outcome_async(core, conn, call, part), context=base.copy())
        else:
            results = await core.threads.run(_outcome, core, conn, call, part)  # (in a copy of this context)
        for result in results:
            yield result


def _is_async(core: WorkerCore, method: str) -> bool:
    try:
        return is_coroutine_function(core.rpc(method)[1])
    except CallFailed:
        return False  # answered (with the error) on a thread


def _run(core: WorkerCore, conn: str, call: control_pb2.PipelineCall, part: int, out: Pump, live: set[int],
         cancelled: set[int]) -> None:
    """Run one call (unless cancelled before it started); always answer it (the stream ends once
    every call got its answer)."""
    results = [_cancelled(core, call)] if call.id in cancelled else _outcome(core, conn, call, part)
    _answer(call, results, out, live, cancelled)


async def _run_async(core: WorkerCore, conn: str, call: control_pb2.PipelineCall, part: int, out: Pump,
                     live: set[int], cancelled: set[int]) -> None:
    """``_run`` of an ``async def`` function, on the event loop."""
    results = [_cancelled(core, call)] if call.id in cancelled else await _outcome_async(core, conn, call, part)
    _answer(call, results, out, live, cancelled)


def _answer(call: control_pb2.PipelineCall, results: list[control_pb2.PipelineResult], out: Pump, live: set[int],
            cancelled: set[int]) -> None:
    live.discard(call.id)
    cancelled.discard(call.id)  # a cancel that came while it ran: the caller drops the result
    out.put(results)


def _cancelled(core: WorkerCore, call: control_pb2.PipelineCall) -> control_pb2.PipelineResult:
    return control_pb2.PipelineResult(id=call.id, error=errors_pb2.ErrorInfo(
        type="Cancelled", message="the caller cancelled this call", worker_id=core.worker_id,
        worker_name=core.name or ""))


def _undescribed(core: WorkerCore, call: control_pb2.PipelineCall, exc: BaseException) -> control_pb2.PipelineResult:
    return control_pb2.PipelineResult(id=call.id, error=errors_pb2.ErrorInfo(
        type=type(exc).__qualname__, message="(the error could not be described)",
        worker_id=core.worker_id, worker_name=core.name or ""))


def _outcome(core: WorkerCore, conn: str, call: control_pb2.PipelineCall,
             part: int) -> list[control_pb2.PipelineResult]:
    """What a unary call of ``call.method`` would have answered, as results (parts) or an error
    (on a thread)."""
    try:
        codec, impl = core.rpc(call.method)
        state = core.state_of(conn)
        return _results(call, core.run_rpc(impl, state, codec.decode_request, call.request, codec.encode_result, len),
                        part)
    except CallFailed as failed:
        return [control_pb2.PipelineResult(id=call.id, error=failed.info)]
    except BaseException as exc:  # what run_rpc lets through (e.g. an error that cannot describe itself)
        return [_undescribed(core, call, exc)]


async def _outcome_async(core: WorkerCore, conn: str, call: control_pb2.PipelineCall,
                         part: int) -> list[control_pb2.PipelineResult]:
    """``_outcome`` of an ``async def`` function, on the event loop."""
    try:
        codec, impl = core.rpc(call.method)
        state = core.state_of(conn)
        data = await core.run_rpc_async(impl, state, codec.decode_request, call.request, codec.encode_result, len)
        return _results(call, data, part)
    except CallFailed as failed:
        return [control_pb2.PipelineResult(id=call.id, error=failed.info)]
    except BaseException as exc:  # as _outcome
        if cancelled_here(exc):
            raise
        return [_undescribed(core, call, exc)]


def _results(call: control_pb2.PipelineCall, data: bytes, part: int) -> list[control_pb2.PipelineResult]:
    """A result as one message, or in parts of at most ``part`` bytes."""
    if len(data) <= part:
        return [control_pb2.PipelineResult(id=call.id, reply=data)]
    view = memoryview(data)
    last = (len(data) - 1) // part
    return [control_pb2.PipelineResult(id=call.id, reply=bytes(view[i * part:(i + 1) * part]), more=i < last)
            for i in range(last + 1)]
