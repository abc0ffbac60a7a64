"""The worker type's own gRPC service: one handler per function, by kind, over a ``WorkerCore``.

rpc and one_way functions are unary methods, pipe, state and direct_pipe ones server-streaming,
reverse_pipe ones client-streaming; every message is raw bytes the method's codec reads and
writes. Handlers are coroutines on the server's event loop (``_core``). Stream items go through a
``Pump`` (bounded, batching) from the thread or task producing them to the handler, an async
generator of messages.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import grpc

from .._codec import MethodCodec
from .._declaration import CONNECTION_STATE, foreign_functions
from .._function import ForeignMethod, Kind
from .._grpc_errors import CallFailed, Kind as ErrKind, abort
from .._pipes import DirectWriter
from .._protocol import SEQ_KEY
from .._schema import MethodSpec
from ._core import Context, WorkerCore, cancelled_here, connection_id, is_coroutine_function, when_done
from ._loop import run_coroutine
from ._pump import Pump

__all__ = ("foreign_handlers", "service_handler")

_EMPTY = b""


def service_handler(core: WorkerCore) -> grpc.GenericRpcHandler[Any, Any]:
    """The handler of ``core``'s worker type service (``/package.Worker/Method`` for each function)."""
    spec = core.spec
    return grpc.method_handlers_generic_handler(spec.full_name, {m.rpc_name: _handler(core, m) for m in spec.methods})


def foreign_handlers(core: WorkerCore) -> list[grpc.GenericRpcHandler[Any, Any]]:
    """The handlers of the methods of existing ``.proto`` services that ``core``'s worker type
    implements (``@rp.rpc(method=...)``), one per service, under exactly their names."""
    by_service: dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]] = {}
    for f in foreign_functions(core.cls):
        foreign = f.foreign
        assert foreign is not None
        by_service.setdefault(foreign.service, {})[foreign.name] = grpc.unary_unary_rpc_method_handler(
            _foreign_rpc(core, foreign, getattr(core.cls, f.name).impl))
    return [grpc.method_handlers_generic_handler(service, methods) for service, methods in by_service.items()]


_Unary = Callable[[bytes, Context], Coroutine[Any, Any, bytes]]


def _foreign_rpc(core: WorkerCore, foreign: ForeignMethod, impl: Callable[..., Any]) -> _Unary:
    request_class, response_class = foreign.request, foreign.response

    def decode(data: bytes) -> list[Any]:
        return [request_class.FromString(data)]

    def encode(result: Any) -> bytes:
        if not isinstance(result, response_class):
            raise TypeError(f"{foreign.method} must return a {response_class.__name__}, not {type(result).__name__}")
        data: bytes = result.SerializeToString()
        return data

    return _unary(core, impl, decode, encode)


def _handler(core: WorkerCore, m: MethodSpec) -> grpc.RpcMethodHandler[Any, Any]:
    codec = core.codec.method(m.name)
    impl = getattr(core.cls, m.name).impl
    if m.kind is Kind.RPC:
        return grpc.unary_unary_rpc_method_handler(_rpc(core, codec, impl))
    if m.kind is Kind.ONE_WAY:
        return grpc.unary_unary_rpc_method_handler(_one_way(core, codec, impl))
    if m.kind is Kind.REVERSE_PIPE:
        return grpc.stream_unary_rpc_method_handler(_reverse(core, m, codec, impl))
    return grpc.unary_stream_rpc_method_handler(_stream(core, m, codec, impl))


def _rpc(core: WorkerCore, codec: MethodCodec, impl: Callable[..., Any]) -> _Unary:
    return _unary(core, impl, codec.decode_request, codec.encode_result)


def _unary(core: WorkerCore, impl: Callable[..., Any], decode: Callable[[bytes], list[Any]],
           encode: Callable[[Any], bytes]) -> _Unary:
    """The behavior of a unary rpc: ``decode`` the request, run ``impl``, ``encode`` its result."""

    async def behavior(request: bytes, context: Context) -> bytes:
        state = await core.state_for(context)
        try:
            return await core.run_rpc_async(impl, state, decode, request, encode, len)
        except CallFailed as failed:
            await abort(context, failed.info)

    return behavior


# -- one_way ---------------------------------------------------------------------------------------


def _seq(context: Context) -> int | None:
    """The call's one-way number (``rpcpar-seq``), if it has one (``ValueError`` if malformed)."""
    for key, value in context.invocation_metadata() or ():
        if key == SEQ_KEY:
            if not (isinstance(value, str) and value.isdecimal() and value.isascii()):
                raise ValueError(f"{SEQ_KEY} metadata must be a number from 0, got {value!r}")
            return int(value)
    return None


def _one_way(core: WorkerCore, codec: MethodCodec, impl: Callable[..., Any]) -> _Unary:
    def run(state: Any, args: list[Any]) -> None:
        try:
            core.call(impl, state, args)
        except BaseException as exc:  # whatever it is, the caller is gone: the host hears of it
            core.background_failure(exc)

    async def behavior(request: bytes, context: Context) -> bytes:
        """Acknowledge at once and queue the call: in its connection's order if numbered
        (``_inorder``), else to run as soon as a thread is free."""
        state = await core.state_for(context)
        try:
            seq = _seq(context)
        except ValueError as exc:
            await abort(context, core.info(exc, ErrKind.BAD_REQUEST))
        order = core.one_way_order(connection_id(context)) if seq is not None else None
        try:
            job = functools.partial(run, state, codec.decode_request(request))
            bad = None
        except Exception as exc:
            job, bad = None, exc
        try:
            if order is not None and seq is not None:
                # a call that cannot run still takes its number; one that finds the queue full
                # keeps its place and waits for room on a thread (the caller waits for its answer)
                if not order.put(seq, job, len(request), wait=False):
                    await core.threads.run(order.resume, seq, job, len(request))
            elif job is not None:
                core.one_way_executor.submit(job)
        except ValueError as exc:
            await abort(context, core.info(exc, ErrKind.BAD_REQUEST))
        except RuntimeError:  # the one-way pool is shut down
            await abort(context, core.info(ConnectionError("the worker is shutting down"), ErrKind.CONNECTION_CLOSED))
        if bad is not None:
            await abort(context, core.info(bad, ErrKind.BAD_REQUEST))
        return _EMPTY

    return behavior


# -- pipe, state, direct_pipe ----------------------------------------------------------------------


class _Writer(DirectWriter[Any]):
    """A direct pipe's writer. Its stream ends once it is closed *and* the function returned, so an
    exception the function raises after closing it still reaches the caller's run."""

    def __init__(self, pump: Pump) -> None:
        self._pump = pump
        self._lock = threading.Lock()
        self._closing = False
        self._returned = False

    def write(self, item: Any) -> bool:
        if self._closing:
            return False
        self._pump.put(item)  # (on the loop, a full queue takes it without waiting: drain() waits)
        return not self._pump.stopped

    async def drain(self) -> None:
        await self._pump.room()

    def close(self) -> None:
        with self._lock:
            self._closing = True
            if self._returned:
                self._pump.finish()

    def returned(self) -> None:
        """The function returned (after its return mark was queued)."""
        with self._lock:
            self._returned = True
            if self._closing:
                self._pump.finish()

    @property
    def closed(self) -> bool:
        return self._closing or self._pump.finished


def _stream(core: WorkerCore, m: MethodSpec, codec: MethodCodec,
            impl: Callable[..., Any]) -> Callable[[bytes, Context], AsyncIterator[bytes]]:
    limit = core.settings.max_message_size
    kind = m.kind
    encode = codec.encode_updates_batch if kind is Kind.STATE else codec.encode_items
    # a generator function has started once it yields; a plain function once it returned
    generator = inspect.isgeneratorfunction(impl) or inspect.isasyncgenfunction(impl)

    async def behavior(request: bytes, context: Context) -> AsyncIterator[bytes]:
        state = await core.state_for(context)
        args = await core.decode_request(codec, request, context)
        pump = Pump(core.loop, shared=kind is Kind.DIRECT_PIPE)  # a writer may be used from any thread
        when_done(context, pump.stop)  # the call ended (cancelled: the producer stops)
        if kind is Kind.DIRECT_PIPE:
            # the function runs beside this generator, which sends what it writes as it writes it
            # (items written before it returns too: a bounded queue could not hold them all)
            core.background(_run_direct(core, impl, state, _Writer(pump), args, pump))
        else:
            try:
                produced = await core.call_async(impl, state, args)
                if kind is Kind.STATE:
                    initial, produced = produced
                    first = codec.encode_state(initial)
            except BaseException as exc:
                if cancelled_here(exc):
                    raise
                await core.fail_call(exc, context)
            if kind is Kind.STATE:
                yield first
            elif not generator:
                # a plain function returned its iterator: it has started (the caller's run returns
                # on the first message); a generator has once it yields its first item, or ends
                yield encode([])
            _start_producer(core, produced, pump, state)
        try:
            async for batch in pump.batches():
                if kind is Kind.DIRECT_PIPE and any(item is _RETURNED for item in batch):
                    at = next(i for i, item in enumerate(batch) if item is _RETURNED)
                    if at:
                        for message in _split(encode, batch[:at], limit):
                            yield message
                    yield encode([])  # the function returned: the caller's run returns now
                    batch = batch[at + 1:]
                    if not batch:
                        continue
                for message in _split(encode, batch, limit):
                    yield message
        except BaseException as exc:  # the producer's (raised by batches), or of encoding
            if cancelled_here(exc):
                raise
            await core.fail_call(exc, context)
        finally:
            pump.stop()

    return behavior


# In a direct pipe's stream, where its function returned: the caller's run returns there (OCaml's
# run resolves once the implementation returned), and the items before it reach on_update after
_RETURNED = object()


async def _run_direct(core: WorkerCore, impl: Callable[..., Any], state: Any, writer: _Writer, args: list[Any],
                      pump: Pump) -> None:
    """Run a direct pipe's function; its exception ends the stream with the caller's error (raised
    from the caller's run), its return marks the stream."""
    try:
        await core.call_async(impl, state, [writer, *args])
    except BaseException as exc:
        pump.finish(exc)
        return
    pump.put(_RETURNED)
    writer.returned()


def _start_producer(core: WorkerCore, produced: Any, pump: Pump, state: Any) -> None:
    if hasattr(produced, "__aiter__"):
        core.background(_produce_async(produced, pump, state))
    else:
        core.threads.submit(_produce, iter(produced), pump, state)


def _split(encode: Callable[[list[Any]], bytes], batch: list[Any], limit: int) -> Iterator[bytes]:
    """Encode ``batch`` as one message, or as several if one would exceed ``limit`` bytes."""
    data = encode(batch)
    if len(data) <= limit or len(batch) == 1:
        yield data  # a single oversized item fails in gRPC with RESOURCE_EXHAUSTED, naming the sizes
        return
    half = len(batch) // 2
    yield from _split(encode, batch[:half], limit)
    yield from _split(encode, batch[half:], limit)


def _produce(items: Iterator[Any], pump: Pump, state: Any) -> None:
    """Run the user's iterator into ``pump``; close it (GeneratorExit) when the caller stops."""
    CONNECTION_STATE.set(state)
    try:
        for item in items:
            if not pump.put(item):
                close = getattr(items, "close", None)
                if close is not None:
                    close()
                return
    except BaseException as exc:
        pump.finish(exc)
        return
    pump.finish()


async def _produce_async(items: Any, pump: Pump, state: Any) -> None:
    """``_produce`` for an async iterator, on the event loop."""
    CONNECTION_STATE.set(state)
    try:
        async for item in items:
            await pump.room()
            if not pump.put(item, block=False) and pump.stopped:
                aclose = getattr(items, "aclose", None)
                if aclose is not None:
                    await aclose()
                return
    except BaseException as exc:
        pump.finish(exc)
        return
    pump.finish()


# -- reverse_pipe ----------------------------------------------------------------------------------


def _reverse(core: WorkerCore, m: MethodSpec, codec: MethodCodec,
             impl: Callable[..., Any]) -> Callable[[AsyncIterator[bytes], Context], Coroutine[Any, Any, bytes]]:
    index = [p.name for p in m.params].index(m.updates_param or "")
    is_async = is_coroutine_function(impl)

    async def behavior(requests: AsyncIterator[bytes], context: Context) -> bytes:
        state = await core.state_for(context)
        first = await anext(requests, None)

        def decode(data: bytes | None) -> list[Any]:
            """The first message's arguments, the updates parameter streaming the rest."""
            if data is None:
                raise ValueError("empty request stream")
            args = codec.decode_request(data)
            args[index] = (_async_updates(args[index], requests, codec) if is_async else
                           _updates(args[index], requests, codec))
            return args

        try:
            return await core.run_rpc_async(impl, state, decode, first, codec.encode_result, len)
        except CallFailed as failed:
            await abort(context, failed.info)

    return behavior


def _updates(first: list[Any], requests: AsyncIterator[bytes], codec: MethodCodec) -> Iterator[Any]:
    """The updates for a plain function (on a thread), read from the stream on the event loop."""
    yield from first
    while True:
        data = run_coroutine(_next(requests))
        if data is None:
            return
        yield from codec.decode_updates(data)


async def _next(requests: AsyncIterator[bytes]) -> bytes | None:
    return await anext(requests, None)


async def _async_updates(first: list[Any], requests: AsyncIterator[bytes], codec: MethodCodec) -> AsyncIterator[Any]:
    for item in first:
        yield item
    async for data in requests:
        for item in codec.decode_updates(data):
            yield item
