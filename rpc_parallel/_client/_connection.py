"""``Connection``: the caller's side of one connection, ``run``/``submit`` for every kind.

One ``Connection`` owns one gRPC channel (one TCP connection) to one worker server, and one open
``Control/OpenConnection`` stream whose lifetime is the connection's. Every gRPC error of its
calls that raise reaches the caller through its ``ErrorBoundary``; the futures of ``submit`` get
theirs from ``map_rpc_error``.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, cast, overload

import grpc
from google.protobuf.message import DecodeError

from .._codec import MethodCodec, ServiceCodec, codec_for, joined, wire_size
from .._deadline import expired, remaining
from .._declaration import declared_workers, is_worker_type
from .._errors import (
    ConnectionClosedError,
    MessageTooLargeError,
    ProtocolError,
    RpcParallelError,
    WorkerConnectionError,
)
from .._function import (
    DirectPipeFunction,
    ForeignMethod,
    Function,
    Kind,
    OneWayFunction,
    PipeFunction,
    ReversePipeFunction,
    RpcFunction,
    StateFunction,
    adaptation,
    chain,
    spread,
)
from .._grpc_errors import ErrorBoundary, map_rpc_error
from .._handle import WorkerHandle
from .._pipes import Closed, DirectPipeId, DirectWriter, LogRecord, Update
from .._proto import control_pb2, control_pb2_grpc
from .._protocol import (
    ONE_WAY_MAX_BYTES,
    ONE_WAY_MAX_CALLS,
    PIPELINE_MAX_REQUEST,
    PIPELINE_MIN_LIMIT,
    SEQ_KEY,
    SPLICED_CALL,
    SPLICED_HEADER_MAX,
    SPLICED_KEY,
    SPLICED_ONE,
    fingerprint_messages,
)
from .._schema import ServiceSpec, service_spec
from .._settings import RpcSettings
from .._transport import at_thread_exit, dial
from ._pipe import Pipe
from ._pipeline import CallStream, Pipeline
from ._session import call_metadata, delivering, in_done_callback, open_session, wait_allowed, worker_label
from ._upload import upload

__all__ = ("Connection", "connect", "deliver_closed", "update_failed")

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
S = TypeVar("S")
U = TypeVar("U")
# an rpc whose large bytes values add up to this much goes as Spliced/Call (no copies of them); a
# smaller one is cheaper copied into one message than streamed (a stream costs gRPC a thread)
_SPLICED_CALL_MIN = 1 << 20
_BATCH = 4096
_LOG = logging.getLogger("rpc_parallel")


class _ForeignCodec:
    """The codec of an rpc implementing a method of an existing ``.proto`` service: its one
    argument is the request message, its result the response message."""

    def __init__(self, f: Function[Any], foreign: ForeignMethod) -> None:
        self._name = f.qualname
        self._foreign = foreign

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        values = [*args, *kwargs.values()]
        request = self._foreign.request
        if len(values) != 1 or not isinstance(values[0], request):
            raise TypeError(f"{self._name}() takes one {request.__name__} (it implements {self._foreign.method})")
        return values

    def encode_request(self, values: list[Any]) -> bytes:
        data: bytes = values[0].SerializeToString()
        return data

    def encode_request_parts(self, values: list[Any]) -> tuple[bytes, list[Any]]:
        return self.encode_request(values), []

    def decode_result(self, data: bytes) -> Any:
        return self._foreign.response.FromString(data)


class _Method:
    """A method's multicallable and codec on one connection (built on first use)."""

    __slots__ = ("call", "codec", "foreign", "kind", "name", "path", "rpc_name", "updates_index")

    def __init__(self, channel: grpc.Channel, spec: ServiceSpec, codec: ServiceCodec, f: Function[Any]) -> None:
        self.foreign = f.foreign
        if f.foreign is not None:  # a method of another service, under its own name; never pipelined
            # (the rpc calls use only bind, encode_request(_parts) and decode_result, which it has)
            self.codec: MethodCodec = cast(MethodCodec, _ForeignCodec(f, f.foreign))
            self.kind = Kind.RPC
            self.name = f.qualname
            self.rpc_name = f.foreign.name
            self.updates_index = -1
            self.path = f.foreign.method
            self.call: Any = channel.unary_unary(f.foreign.method, None, None)
            return
        m = spec.method(f.name)
        self.path = path = spec.method_path(m)
        self.codec = codec.method(f.name)
        self.kind = m.kind
        self.name = f.qualname
        self.rpc_name = m.rpc_name
        self.updates_index = [p.name for p in m.params].index(m.updates_param) if m.updates_param else -1
        if m.kind in (Kind.RPC, Kind.ONE_WAY):
            self.call = channel.unary_unary(path, None, None)
        elif m.kind is Kind.REVERSE_PIPE:
            self.call = channel.stream_unary(path, None, None)
        else:
            self.call = channel.unary_stream(path, None, None)


def _chunks(updates: Iterable[Any]) -> Iterator[list[Any]]:
    """A reverse pipe's updates in batches of ``_BATCH``."""
    batch: list[Any] = []
    for item in updates:
        batch.append(item)
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class _WriterFeed(DirectWriter[Any]):
    """The caller's side of a reverse direct pipe: ``writer_fn(writer)`` runs on a thread of its
    own and writes the updates; ``items()`` yields them to the request stream, through a bounded
    queue (a writer that runs ahead of the stream waits). The updates end at ``close()`` (not when
    ``writer_fn`` returns: it may leave the writing to a thread of its own); an
    exception of ``writer_fn`` before that ends them with it (raised from ``run``)."""

    _CLOSED = object()

    def __init__(self, writer_fn: Callable[[DirectWriter[Any]], object], label: str) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=_BATCH * 4)
        self._closed = False
        self._done = threading.Event()  # the call ended: writes are refused
        self._fn = writer_fn
        self._thread = threading.Thread(target=self._run, name=f"rpc_parallel-writer-{label}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            self._fn(self)
        except BaseException as exc:  # the caller's own failure: ends the updates, raised from run
            self._closed = True
            self._put(_Failed(exc))

    def _put(self, item: Any) -> bool:
        while not self._done.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def write(self, item: Any) -> bool:
        if self._closed:
            return False
        return self._put(item)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._put(self._CLOSED)

    @property
    def closed(self) -> bool:
        return self._closed or self._done.is_set()

    def batches(self) -> Iterator[list[Any]]:
        """What was written so far, as one batch (a lone update leaves at once), until ``close()``."""
        while True:
            try:
                batch = [self._queue.get(timeout=0.1)]
            except queue.Empty:
                if self._done.is_set():  # the call ended first (the worker answered, a deadline)
                    return
                continue
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for i, item in enumerate(batch):
                if item is self._CLOSED or isinstance(item, _Failed):
                    if i:
                        yield batch[:i]
                    if isinstance(item, _Failed):
                        raise item.error
                    return
            yield batch

    def end(self) -> None:
        """The call ended: a waiting or later write returns False, and the request stream ends."""
        self._done.set()
        try:
            self._queue.put_nowait(self._CLOSED)  # wakes a read at once (else it sees _done within 0.1 s)
        except queue.Full:
            pass


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class Connection:
    """A connection to a worker server; run its worker type's functions with ``run``/``submit``.

    Worker state is shared by every connection; ``init_connection_state`` ran for this one. Close it
    with ``close()`` or a ``with`` block.
    """

    def __init__(self, cls: type, handle: WorkerHandle, connection_arg: Any = None) -> None:
        if not is_worker_type(cls):
            raise TypeError(f"connect takes a worker type (an rp.Worker subclass) first, not {cls!r}")
        if not isinstance(handle, WorkerHandle):
            raise TypeError(f"connect takes an rp.WorkerHandle, not {handle!r}")
        self.worker_type = cls
        self.handle = handle
        self._spec = service_spec(cls)
        self._codec = codec_for(cls)
        self._label = worker_label(handle)
        # DEADLINE_EXCEEDED: an rp.deadline passed; a call our own close() cut off: ConnectionClosedError
        self._errors = ErrorBoundary(self._label, timeout=expired, closing=lambda: self._closing)
        encoded_arg = self._codec.encode_connection_init(connection_arg)
        within = remaining()
        self._channel = dial(handle.address, handle.settings, self._label, ca=handle.ca, expire=expired,
                             within=within)
        self._methods: dict[Function[Any], _Method] = {}
        self._pending: dict[Any, int] = {}  # one_way calls not yet acknowledged -> their bytes
        self._pending_bytes = 0
        self._pending_lock = threading.Lock()
        self._room = threading.Condition(self._pending_lock)  # a one_way call was acknowledged
        self._direct: dict[int, Any] = {}
        self._direct_ids = itertools.count(1)
        self._closed_event = threading.Event()
        self._close_callbacks: list[Callable[[], object]] = []
        self._close_lock = threading.Lock()
        self._closing = False
        self._close_reason: str | None = None
        self._spliced: Any = None
        self._spliced_one: Any = None
        self._pipeline: Pipeline | None = None
        self._pipeline_lock = threading.Lock()
        self._pipelined = handle.settings.max_message_size >= PIPELINE_MIN_LIMIT
        self._control = control_pb2_grpc.ControlStub(self._channel)
        request = control_pb2.OpenConnectionRequest(
            worker_id=handle.worker_id, fingerprint=self._spec.fingerprint, arg=encoded_arg,
            functions=fingerprint_messages(self._spec), service=self._spec.full_name)
        try:
            self._session, self.connection_id = open_session(self._channel, request, handle.token, self._errors,
                                                             remaining() if within is not None else None)
        except BaseException:
            self._channel.close()
            raise
        self._md = call_metadata(handle.token, self.connection_id)
        self._calls = CallStream(self._channel, self._md, self._label, self._errors)
        self._one_way_seq = itertools.count()
        self._session.add_done_callback(self._session_ended)
        _track(self)

    # -- properties ----------------------------------------------------------------------------

    @property
    def worker_id(self) -> str:
        return self.handle.worker_id

    @property
    def closed(self) -> bool:
        """True once closed by ``close()`` or by the worker side going away."""
        return self._closing or self._closed_event.is_set()

    @property
    def close_reason(self) -> str | None:
        """Why the connection is closed: ``"closed by close()"``, or how the worker side ended it
        (its calls then raise ``WorkerConnectionError``); None while it is open."""
        return self._close_reason

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the connection is closed; False on timeout."""
        return self._closed_event.wait(timeout)

    def on_closed(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` once the connection is closed (at once if it is): from the thread
        that closed it."""
        with self._close_lock:
            if not self._closed_event.is_set():
                self._close_callbacks.append(callback)
                return
        callback()

    def _mark_closed(self) -> None:
        with self._close_lock:
            self._closed_event.set()
            callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                _LOG.exception("a close callback of %s raised", self._label)

    def _session_ended(self, call: Any) -> None:
        if self._close_reason is None:  # not our close(): the worker went away or ended it
            try:
                status = f"{call.code().name}: {call.details()}"
            except Exception:  # a call that ended without a status (grpc gives none on some paths)
                status = "the connection's stream ended"
            self._close_reason = f"the worker side ended the connection ({status})"
        self._mark_closed()

    # -- running -------------------------------------------------------------------------------

    def _method(self, f: Function[Any]) -> _Method:
        m = self._methods.get(f)
        if m is None:
            if not isinstance(f, Function) or f.owner is None or not issubclass(self.worker_type, f.owner):
                raise TypeError(f"{f!r} is not a function of worker type {self.worker_type.__name__}")
            m = self._methods[f] = _Method(self._channel, self._spec, self._codec, f)
        return m

    def _check_open(self) -> None:
        if self._closing:
            raise ConnectionClosedError(f"the connection to {self._label} is closed (close() was called)")
        if self._closed_event.is_set():
            raise WorkerConnectionError(f"the connection to {self._label} is lost: {self._close_reason}")

    def _request(self, m: _Method, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        return self._encode(m, m.codec.bind(args, kwargs))

    def _encode(self, m: _Method, values: list[Any]) -> bytes:
        """The request message of bound ``values``; too large for the worker is an error here."""
        data = m.codec.encode_request(values)
        self._check_size(m, len(data))
        return data

    def _check_size(self, m: _Method, size: int) -> None:
        limit = self.handle.settings.max_message_size
        if size > limit:
            raise MessageTooLargeError(
                f"the arguments of {m.name} encode to {size} bytes, over max_message_size {limit}",
                size=size, limit=limit)

    def _run_spliced(self, m: _Method, rest: bytes, taken: list[tuple[int, bytes]], timeout: float | None) -> Any:
        """An rpc whose large ``bytes`` values travel unframed beside its message (Spliced/Call):
        no copy of them on either side, where a message would need one per side."""
        header = control_pb2.SplicedHeader(method=m.rpc_name, message=rest, fields=[n for n, _ in taken])
        if len(taken) == 1 and header.ByteSize() <= SPLICED_HEADER_MAX:
            return self._run_spliced_one(m, header, taken[0][1], timeout)
        if self._spliced is None:
            self._spliced = self._channel.stream_stream(SPLICED_CALL, None, None)
        call = self._spliced(iter([header.SerializeToString(), *(v for _, v in taken)]), metadata=self._md,
                             timeout=timeout)
        try:
            with self._errors:
                reply = control_pb2.SplicedHeader.FromString(next(call))
                found = {number: next(call) for number in reply.fields}
        except (StopIteration, DecodeError) as exc:
            call.cancel()
            raise ProtocolError(f"{self._label} sent a malformed reply to {m.name}: {exc!r}") from exc
        return m.codec.decode_result_parts(reply.message, found)

    def _run_spliced_one(self, m: _Method, header: control_pb2.SplicedHeader, value: bytes,
                         timeout: float | None) -> Any:
        """One large value: a unary call (Spliced/One), the header in metadata. Unlike a stream, it
        copies the value into gRPC on this thread, as a plain unary call does."""
        if self._spliced_one is None:
            self._spliced_one = self._channel.unary_unary(SPLICED_ONE, None, None)
        with self._errors:
            reply, call = self._spliced_one.with_call(
                value, metadata=(*self._md, (SPLICED_KEY, header.SerializeToString())), timeout=timeout)
        raw = next((v for k, v in call.trailing_metadata() or () if k == SPLICED_KEY), None)
        if raw is None:
            raise ProtocolError(f"{self._label} sent a reply to {m.name} without its spliced header")
        if not raw:  # the reply is the whole result message
            return m.codec.decode_result(reply)
        try:
            result = control_pb2.SplicedHeader.FromString(raw)
        except DecodeError as exc:
            raise ProtocolError(f"{self._label} sent a malformed reply to {m.name}: {exc!r}") from exc
        return m.codec.decode_result_parts(result.message, dict.fromkeys(result.fields, reply))

    @overload
    def run(self, f: RpcFunction[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...
    @overload
    def run(self, f: OneWayFunction[P], /, *args: P.args, **kwargs: P.kwargs) -> None: ...
    @overload
    def run(self, f: PipeFunction[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Pipe[T]: ...
    @overload
    def run(self, f: StateFunction[P, S, U], /, *args: P.args, **kwargs: P.kwargs) -> tuple[S, Pipe[U]]: ...
    @overload
    def run(self, f: ReversePipeFunction[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...
    @overload  # a reverse direct pipe: a writer function in place of the updates (not expressible with P)
    def run(self, f: ReversePipeFunction[..., R], /, *args: Any, **kwargs: Any) -> R: ...
    @overload
    def run(self, f: DirectPipeFunction[P, T], /, *args: Any,
            on_update: Callable[[Update[T] | Closed], object], **kwargs: Any) -> DirectPipeId: ...
    def run(self, f: Function[Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``f`` on this connection; what it returns depends on ``f``'s kind (DESIGN.md section 2)."""
        self._check_open()
        m, args, kwargs, post = self._adapt(f, args, kwargs)
        if post is None:
            return self._run(m, args, kwargs)
        if m.kind in (Kind.PIPE, Kind.DIRECT_PIPE):
            return self._run_mapped(m, args, kwargs, post)
        return post(self._run(m, args, kwargs))  # an rpc's or a reverse pipe's result

    def _run(self, m: _Method, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        kind = m.kind
        timeout = remaining()  # an rp.deadline: the whole call (a pipe's whole stream) must end by then
        if kind is Kind.RPC:
            rest, taken = m.codec.encode_request_parts(m.codec.bind(args, kwargs))
            if taken:
                self._check_size(m, wire_size(rest, taken))
                if sum(len(v) for _, v in taken) >= _SPLICED_CALL_MIN:
                    return self._run_spliced(m, rest, taken, timeout)
                rest = joined(rest, taken)
            else:
                self._check_size(m, len(rest))
            # on the connection's call stream (about half a unary call), but under a deadline
            # (gRPC cancels a unary call at it), while another call holds the stream, or on the
            # thread that brings the stream's replies (a done-callback)
            if timeout is None and self.streams(m, rest) and not in_done_callback():
                reply = self._calls.call(m.rpc_name, rest)
                if reply is not None:
                    return m.codec.decode_result(reply)
            with self._errors:
                return m.codec.decode_result(m.call(rest, metadata=self._md, timeout=timeout))
        if kind is Kind.ONE_WAY:
            return self._send_one_way(m, self._request(m, args, kwargs))
        if kind is Kind.PIPE:
            data = self._request(m, args, kwargs)
            # returns once the generator started, as OCaml's f has returned its pipe (subscribe, then trigger)
            pipe = Pipe(m.call(data, metadata=self._md, timeout=timeout), m.codec.decode_items, self._errors)
            # (in a done-callback, waiting for the first message could block the thread that brings it)
            return pipe if in_done_callback() else pipe.wait_started()
        if kind is Kind.STATE:
            data = self._request(m, args, kwargs)
            call = m.call(data, metadata=self._md, timeout=timeout)
            with self._errors:
                first = next(call)
            _, state, _ = m.codec.decode_state_message(first)
            return state, Pipe(call, lambda d: m.codec.decode_state_message(d)[2], self._errors)
        if kind is Kind.DIRECT_PIPE:
            on_update = kwargs.pop("on_update", None)
            if on_update is None:
                raise TypeError(f"{m.name}() is a direct_pipe: pass on_update=callback")
            data = self._request(m, args, kwargs)
            return self._direct_pipe(m, data, on_update, timeout)
        return self._reverse_pipe(m, args, kwargs, timeout)

    def _adapt(self, f: Function[Any], args: tuple[Any, ...], kwargs: dict[str, Any]
               ) -> tuple[_Method, tuple[Any, ...], dict[str, Any], Callable[[Any], Any] | None]:
        """The declared function's method and arguments for a call of ``f`` (a ``contra_map``
        applied), and what its results go through (a ``map``), if anything."""
        base, pre, post = adaptation(f)
        m = self._method(base)
        if pre is not None:
            on_update = kwargs.pop("on_update", None)
            single = base.foreign is not None or len(self._spec.method(base.name).params) == 1
            args, kwargs = spread(pre(*args, **kwargs), single), {}
            if on_update is not None:
                kwargs["on_update"] = on_update
        return m, args, kwargs, post

    def _run_mapped(self, m: _Method, args: tuple[Any, ...], kwargs: dict[str, Any], post: Callable[[Any], Any]
                    ) -> Any:
        """``run`` of a pipe or direct pipe made by ``map``: each item through ``post``."""
        timeout = remaining()
        if m.kind is Kind.PIPE:
            data = self._request(m, args, kwargs)
            items = m.codec.decode_items
            pipe = Pipe(m.call(data, metadata=self._md, timeout=timeout),
                        lambda d: [post(x) for x in items(d)], self._errors)
            return pipe if in_done_callback() else pipe.wait_started()
        if m.kind is Kind.DIRECT_PIPE:
            on_update = kwargs.pop("on_update", None)
            if on_update is None:
                raise TypeError(f"{m.name}() is a direct_pipe: pass on_update=callback")
            deliver = on_update
            return self._direct_pipe(m, self._request(m, args, kwargs),
                                     lambda u: deliver(Update(post(u.value)) if isinstance(u, Update) else u), timeout)
        raise AssertionError(m.kind)

    def _send_one_way(self, m: _Method, data: bytes) -> None:
        """Send an encoded one_way request, first waiting while the calls in flight are at their bound."""
        size = len(data)
        with self._room:  # a bounded number (and bytes) in flight: the caller waits for acks
            while self._pending and not self.closed and not in_done_callback() and (
                    len(self._pending) >= ONE_WAY_MAX_CALLS or self._pending_bytes + size > ONE_WAY_MAX_BYTES
            ) and wait_allowed():
                self._room.wait(remaining())
            self._check_open()  # closed while it waited: not sent
            # numbered: the worker runs this connection's one-way calls in this order (_inorder)
            # no timeout: a number the worker never receives would hold up every later one_way
            fut = m.call.future(data, metadata=(*self._md, (SEQ_KEY, str(next(self._one_way_seq)))))
            self._pending[fut] = size
            self._pending_bytes += size
        fut.add_done_callback(self._one_way_done)

    def streams(self, m: _Method, request: bytes) -> bool:
        """Whether an rpc call with this encoded request may ride one of the connection's streams
        (Call, Pipeline) rather than a unary call of its own."""
        return self._pipelined and m.foreign is None and len(request) <= PIPELINE_MAX_REQUEST

    def _prepare(self, f: Function[Any], args: tuple[Any, ...], kwargs: dict[str, Any], kind: Kind
                 ) -> tuple[_Method, bytes, Callable[[Any], Any] | None]:
        """``f``'s method, encoded request (checked now, for callers that send it later) and what
        its result goes through (a ``map``)."""
        self._check_open()
        m, args, kwargs, post = self._adapt(f, args, kwargs)
        if m.kind is not kind:
            raise TypeError(f"{m.name} is a {m.kind.value}, not a {kind.value}")
        return m, self._request(m, args, kwargs), post

    def _one_way_done(self, fut: Any) -> None:
        with self._room:
            self._pending_bytes -= self._pending.pop(fut, 0)
            self._room.notify()

    def _direct_pipe(self, m: _Method, data: bytes, on_update: Callable[[Any], object],
                     timeout: float | None) -> DirectPipeId:
        call = m.call(data, metadata=self._md, timeout=timeout)
        pipe_id = DirectPipeId(next(self._direct_ids))
        errors = self._errors
        messages = iter(call)
        early: list[Any] = []  # items written before the function returned: delivered after run returns
        ended = False
        if not in_done_callback():  # (a done-callback must not wait: its run returns at once)
            # as OCaml's run: once the function returned; its exception before that is raised here
            while True:
                try:
                    with errors:
                        message = next(messages)
                except StopIteration:  # the function closed its writer before it returned
                    ended = True
                    break
                items = m.codec.decode_items(message)
                if not items:  # the mark of its return
                    break
                early.extend(items)
        self._direct[pipe_id.value] = call

        def deliver() -> None:
            reason, error = "by_remote_side", cast(BaseException | None, None)
            try:
                for item in early:
                    on_update(Update(item))
                while not ended:
                    try:
                        with errors:  # the stream's errors only: on_update's own are handled below
                            message = next(messages)
                    except StopIteration:
                        break
                    except RpcParallelError as exc:
                        if call.cancelled():  # conn.abort
                            reason = "aborted"
                        else:
                            error, reason = exc, str(exc)
                        break
                    for item in m.codec.decode_items(message):
                        on_update(Update(item))
            except Exception as exc:  # on_update (or a map function) raised: the pipe ends with it
                reason, error = update_failed(call, exc, pipe_id, self._label)
            finally:
                self._direct.pop(pipe_id.value, None)
            deliver_closed(on_update, Closed(reason, error), pipe_id, self._label)

        threading.Thread(target=deliver, name=f"rpc_parallel-direct-{pipe_id.value}", daemon=True).start()
        return pipe_id

    def _reverse_pipe(self, m: _Method, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None) -> Any:
        values = m.codec.bind(args, kwargs)
        index = m.updates_index
        updates: Any = values[index]
        if callable(updates) and not hasattr(updates, "__iter__"):  # a reverse direct pipe: a writer function
            feed = _WriterFeed(updates, self._label)
            values[index] = ()
            data = self._encode(m, values)
            feed.start()
            try:
                return self._upload(m, data, feed.batches(), timeout)
            finally:
                feed.end()
        data = self._encode(m, values)
        return self._upload(m, data, _chunks(updates), timeout)

    def _upload(self, m: _Method, data: bytes, batches: Iterator[list[Any]], timeout: float | None) -> Any:
        def requests() -> Iterator[bytes]:
            yield data
            for batch in batches:
                yield m.codec.encode_updates(batch)

        return m.codec.decode_result(upload(m.call, requests(), self._md, self._errors, timeout))

    def submit(self, f: RpcFunction[P, R], *args: P.args, **kwargs: P.kwargs) -> concurrent.futures.Future[R]:
        """Start an ``rpc`` call and return a future of its result. Calls on a connection share one
        stream (docs/function-kinds.md). Until the result is in, ``future.cancel()`` cancels the call
        (a function already running finishes; its result is dropped)."""
        self._check_open()
        m, values, named, post = self._adapt(f, args, kwargs)
        if m.kind is not Kind.RPC:
            raise TypeError(f"submit takes an rpc function; {m.name} is a {m.kind.value}")
        return self._submit_data(m, self._request(m, values, named), post)

    def _wait_for_submit_room(self, data: bytes) -> None:
        """Wait until ``_submit_data(m, data)`` would not wait for room."""
        if self._pipelined and len(data) <= PIPELINE_MAX_REQUEST and remaining() is None:
            self._pipe().wait_for_room(len(data))

    def _submit_data(self, m: _Method, data: bytes, post: Callable[[Any], Any] | None = None
                     ) -> concurrent.futures.Future[Any]:
        """Start an encoded rpc request (``submit``); its result goes through ``post`` (a ``map``)."""
        timeout = remaining()  # under an rp.deadline, a unary call: gRPC cancels it at the deadline
        decode: Callable[[bytes], Any] = m.codec.decode_result
        if post is not None:
            decode = chain(decode, post)
        if timeout is None and self.streams(m, data):
            return self._pipe().submit(m.rpc_name, data, decode)
        result: concurrent.futures.Future[Any] = concurrent.futures.Future()
        call = m.call.future(data, metadata=self._md, timeout=timeout)
        label = self._label

        def cancelled(f: concurrent.futures.Future[Any]) -> None:
            if f.cancelled():
                call.cancel()  # the caller's Future.cancel(): the worker's side is cancelled

        def done(c: Any) -> None:
            if not result.set_running_or_notify_cancel():
                return
            with delivering():  # on gRPC's channel thread
                try:
                    result.set_result(decode(c.result()))
                except grpc.RpcError as exc:  # a future's boundary: the error goes into the future
                    result.set_exception(map_rpc_error(exc, worker=label, timeout=expired,
                                                       closing=lambda: self._closing))
                except BaseException as exc:
                    result.set_exception(exc)

        result.add_done_callback(cancelled)
        call.add_done_callback(done)
        return result

    def _pipe(self) -> Pipeline:
        """This connection's pipeline stream (a new one if the last ended)."""
        pipe = self._pipeline
        if pipe is None or pipe.broken:
            with self._pipeline_lock:
                pipe = self._pipeline
                if pipe is None or pipe.broken:
                    self._check_open()
                    pipe = self._pipeline = Pipeline(self._channel, self._md, self._label,
                                                     self.handle.settings.max_message_size)
        return pipe

    def abort(self, pipe_id: DirectPipeId) -> None:
        """Cancel a running direct pipe; its ``on_update`` then gets ``Closed("aborted")``."""
        call = self._direct.get(pipe_id.value)
        if call is not None:
            call.cancel()

    # -- built-ins -----------------------------------------------------------------------------

    def close_server(self) -> None:
        """Make the worker server refuse new connections; existing ones go on."""
        self._check_open()
        with self._errors:
            self._control.CloseServer(control_pb2.CloseServerRequest(worker_id=self.handle.worker_id),
                                      metadata=self._md, timeout=remaining())

    def logs(self, level: int = logging.INFO) -> Pipe[LogRecord]:
        """The worker's ``logging`` records at ``level`` or above, from now on (no backlog): a pipe
        (OCaml's ``async_log``). Every subscriber gets every record; ``close()`` unsubscribes. A
        subscriber too slow to keep up loses records, and gets a WARNING record saying how many."""
        self._check_open()
        call = self._control.Logs(control_pb2.LogsRequest(worker_id=self.handle.worker_id, level=level),
                                  metadata=self._md, timeout=remaining())
        return Pipe(call, _log_records, self._errors).wait_started()

    def worker_settings(self) -> RpcSettings:
        """The settings the worker's server really uses."""
        self._check_open()
        with self._errors:
            reply = self._control.Settings(control_pb2.SettingsRequest(worker_id=self.handle.worker_id),
                                           metadata=self._md, timeout=remaining())
        return RpcSettings.from_json(reply.settings_json)

    # -- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent): pending one-way calls are flushed (for at most the
        handshake timeout in all), streams cancelled."""
        if not self._begin_close():
            return
        with self._room:
            pending = list(self._pending)
            self._room.notify_all()
        end = time.monotonic() + self.handle.settings.handshake_timeout
        for fut in pending:  # grpc futures are not concurrent.futures ones: wait one by one
            try:
                fut.result(timeout=max(0.0, end - time.monotonic()))
            except Exception:
                pass
        for call in list(self._direct.values()):
            call.cancel()
        with self._pipeline_lock:
            pipe, self._pipeline = self._pipeline, None
        if pipe is not None:
            pipe.close()
        self._calls.close()
        self._session.cancel()  # the worker sees the connection end now
        # grpcio's close of a channel that carried a stream waits ~200 ms for its polling thread;
        # nothing needs to wait for that, so it happens aside
        threading.Thread(target=self._channel.close, name="rpc_parallel-channel-close", daemon=True).start()
        self._mark_closed()

    def _abandon(self) -> None:
        """At interpreter exit: end the connection and close its channel now, waiting for nothing."""
        if self._begin_close():
            self._session.cancel()
            self._channel.close()
            self._mark_closed()

    def _begin_close(self) -> bool:
        """Mark the connection closing by its caller; False if it already was."""
        if self._closing:
            return False
        if self._close_reason is None:
            self._close_reason = "closed by close()"
        self._closing = True
        return True

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<rpc_parallel.Connection to {self._label} at {self.handle.address} ({state})>"


# Connections still open when the interpreter exits are closed first: a gRPC channel left to be
# closed by its finalizer, after its threads have stopped, can hang the exit.
_OPEN: weakref.WeakSet[Connection] = weakref.WeakSet()
_OPEN_LOCK = threading.Lock()
_hooked: list[bool] = []


def _track(conn: Connection) -> None:
    with _OPEN_LOCK:
        if not _hooked:
            _hooked.append(True)
            at_thread_exit(_close_open)
        _OPEN.add(conn)


def _close_open() -> None:
    with _OPEN_LOCK:
        conns = list(_OPEN)
    for conn in conns:
        conn._abandon()


def _log_records(batch: control_pb2.LogRecords) -> list[LogRecord]:
    records = [LogRecord(time=r.time, level=r.level, logger=r.logger, message=r.message, worker_id=r.worker_id,
                         worker_name=r.worker_name or None) for r in batch.records]
    if batch.dropped and records:
        first = records[0]
        records.insert(0, LogRecord(time=first.time, level=logging.WARNING, logger="rpc_parallel",
                                    message=f"{batch.dropped} log records were dropped: this subscriber read too "
                                            "slowly", worker_id=first.worker_id, worker_name=first.worker_name))
    return records


_NOT_GIVEN: Any = object()


def update_failed(call: Any, exc: Exception, pipe_id: DirectPipeId, label: str) -> tuple[str, Exception]:
    """A direct pipe whose ``on_update`` (or ``map`` function) raised ``exc``: cancel its call, log
    it; the ``Closed`` reason and error it ends with."""
    call.cancel()
    _LOG.error("on_update of direct pipe %s of %s raised; the pipe was aborted", pipe_id.value, label, exc_info=exc)
    return f"on_update raised {type(exc).__name__}: {exc}", exc


def deliver_closed(on_update: Callable[[Any], object], closed: Closed, pipe_id: DirectPipeId, label: str) -> None:
    """The last call of a direct pipe's ``on_update``; an exception it raises is logged."""
    try:
        on_update(closed)
    except Exception as exc:
        _LOG.error("on_update of direct pipe %s of %s raised on Closed", pipe_id.value, label, exc_info=exc)


@overload
def connect(handle: WorkerHandle, connection_arg: Any = None, /) -> Connection: ...
@overload
def connect(cls: type, handle: WorkerHandle, connection_arg: Any = None, /) -> Connection: ...
def connect(first: Any, second: Any = _NOT_GIVEN, third: Any = None, /) -> Connection:
    """Open a connection to the worker server ``handle``: ``connect(handle, connection_arg)``
    finds its worker type among those this process declared (by the handle's fingerprint);
    ``connect(Worker, handle, connection_arg)`` names it."""
    if isinstance(first, WorkerHandle):
        return Connection(worker_type_of(first), first, None if second is _NOT_GIVEN else second)
    return Connection(first, second, third)


def worker_type_of(handle: WorkerHandle) -> type:
    """The worker type of ``handle`` among those declared in this process (the latest declared of
    that fingerprint); ``TypeError`` naming the handle if none is."""
    for cls in declared_workers():
        try:
            if service_spec(cls).fingerprint == handle.fingerprint:
                return cls
        except RpcParallelError:
            continue
    raise TypeError(f"no worker type declared in this process has the fingerprint of worker {worker_label(handle)} "
                    f"({handle.fingerprint or 'none: the handle carries no fingerprint'}): import the module that "
                    "declares it, or name it: connect(Worker, handle, arg)")
