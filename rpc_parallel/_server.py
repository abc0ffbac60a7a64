"""``WorkerServer``: one worker instance behind one gRPC server (the OCaml "worker server").

It serves the worker type's own service through a generic handler (raw bytes, decoded by the
codec) and the built-in ``rpc_parallel.v1.Control`` service. Both a spawned worker process
(``_worker_main``) and ``Worker.serve`` host their worker through this class.
"""

from __future__ import annotations

import functools
import inspect
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import grpc
from google.protobuf.message import DecodeError

from . import _pipeline as pipeline
from ._codec import MethodCodec, codec_for, joined, wire_size
from ._errors import ProtocolError
from ._function import Kind
from ._grpc_errors import CallFailed, Kind as ErrKind, abort, error_info
from ._handle import WorkerHandle
from ._inorder import SEQ_KEY, InOrder
from ._loop import run_coroutine, worker_loop
from ._pipes import DirectWriter
from ._proto import control_pb2, control_pb2_grpc
from ._pump import Pump
from ._schema import MethodSpec, ServiceSpec, differing_functions, file_descriptor, file_spec, service_spec
from ._settings import RpcSettings, grpc_options
from ._worker import _CONNECTION_STATE

__all__ = ("CONN_KEY", "SPLICED_CALL", "SPLICED_HEADER_MAX", "SPLICED_KEY", "SPLICED_ONE", "TOKEN_KEY", "WorkerServer",
           "fingerprint_messages", "token_interceptor")

TOKEN_KEY = "rpcpar-token"
CONN_KEY = "rpcpar-conn"
SPLICED_SERVICE = "rpc_parallel.v1.Spliced"
SPLICED_CALL = f"/{SPLICED_SERVICE}/Call"
SPLICED_ONE = f"/{SPLICED_SERVICE}/One"
SPLICED_KEY = "rpcpar-spliced-bin"
SPLICED_HEADER_MAX = 4096  # a header that travels in metadata (Spliced/One) stays this small
_MAX_THREADS = 512
if TYPE_CHECKING:  # generic only in the type stubs
    _HandlerBase = grpc.RpcMethodHandler[Any, Any]
    _InterceptorBase = grpc.ServerInterceptor[Any, Any]
else:
    _HandlerBase = grpc.RpcMethodHandler
    _InterceptorBase = grpc.ServerInterceptor  # every open stream (connection, pipe) holds a thread of a sync gRPC server


class _Reject(_HandlerBase):
    """The handler for calls without the right token: rejected before any decoding."""

    def __init__(self) -> None:
        self.request_streaming = False
        self.response_streaming = False
        self.request_deserializer = None
        self.response_serializer = None
        self.unary_unary = self._reject
        self.unary_stream = None
        self.stream_unary = None
        self.stream_stream = None

    @staticmethod
    def _reject(request: Any, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong rpcpar-token")


class _TokenCheck(_InterceptorBase):
    def __init__(self, token: str) -> None:
        self._token = token
        self._reject = _Reject()

    def intercept_service(self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails) -> Any:
        for key, value in details.invocation_metadata or ():
            if key == TOKEN_KEY:
                if value == self._token:
                    return continuation(details)
                break
        return self._reject


def token_interceptor(token: str) -> grpc.ServerInterceptor[Any, Any]:
    """The interceptor that rejects (``UNAUTHENTICATED``) calls without ``token``."""
    return _TokenCheck(token)


def fingerprint_messages(spec: ServiceSpec) -> list[control_pb2.FunctionFingerprint]:
    """The per-function fingerprints of ``spec``, as sent on Register and OpenConnection."""
    return [control_pb2.FunctionFingerprint(name=n, fingerprint=f) for n, f in spec.function_fingerprints]


def _conn_id(context: grpc.ServicerContext) -> str:
    for key, value in context.invocation_metadata():
        if key == CONN_KEY:
            return str(value)
    return ""


def _seq(context: grpc.ServicerContext) -> int | None:
    """The call's one-way number (``rpcpar-seq``), if it has one (``ValueError`` if malformed)."""
    for key, value in context.invocation_metadata():
        if key == SEQ_KEY:
            if not (isinstance(value, str) and value.isdecimal() and value.isascii()):
                raise ValueError(f"{SEQ_KEY} metadata must be a number from 0, got {value!r}")
            return int(value)
    return None


_MISSING: Any = object()
_D = TypeVar("_D")
_E = TypeVar("_E")


def _parts_size(parts: tuple[bytes, list[tuple[int, bytes]]]) -> int:
    return wire_size(*parts)


class _Writer(DirectWriter[Any]):
    def __init__(self, pump: Pump) -> None:
        self._pump = pump

    def write(self, item: Any) -> bool:
        return self._pump.put(item)

    def close(self) -> None:
        self._pump.finish()

    @property
    def closed(self) -> bool:
        return self._pump.finished


class WorkerServer:
    """Hosts one worker instance of ``cls`` on a gRPC server listening on loopback (an OS-chosen
    port), or with ``unix_socket`` on a unix socket in a fresh 0700 directory (removed on ``stop``).

    ``on_background_failure`` gets exceptions raised after a function returned (one_way bodies);
    ``on_shutdown`` is called when a client asks for shutdown. Hooks a spawned worker sets:
    ``on_init(request)`` when ``InitWorker`` arrives, ``on_initialized()`` once its init succeeded,
    ``on_init_failed()`` after a failed init was reported, ``on_connection_opened()``, and
    ``on_connection_closed(first)`` after each connection closes (``first``: it was the first
    connection of this server).
    """

    def __init__(self, cls: type, *, worker_id: str, name: str | None, settings: RpcSettings, token: str,
                 unix_socket: bool = False,
                 on_background_failure: Callable[[BaseException], None] | None = None,
                 on_shutdown: Callable[[], None] | None = None) -> None:
        self.cls = cls
        self.spec = service_spec(cls)
        self.codec = codec_for(cls)
        self.worker_id = worker_id
        self.name = name
        self.settings = settings
        self.token = token
        self.instance: Any = object.__new__(cls)
        self.initialized = threading.Event()
        self.connections: dict[str, Any] = {}
        self._one_ways: dict[str, InOrder] = {}  # by connection, for numbered one_way calls
        self.connection_count = 0
        self.on_init: Callable[[control_pb2.InitWorkerRequest], None] | None = None
        self.on_initialized: Callable[[], None] | None = None
        self.on_init_failed: Callable[[], None] | None = None
        self.on_connection_closed: Callable[[bool], None] | None = None
        self.on_connection_opened: Callable[[], None] | None = None
        from ._worker import Worker

        # a worker type without init_connection_state also serves plain gRPC clients (no connection)
        self._needs_connection = cls.init_connection_state is not Worker.init_connection_state  # type: ignore[attr-defined]
        self._on_failure = on_background_failure
        self._on_shutdown = on_shutdown
        self._closed_server = False
        self._lock = threading.Lock()
        self._held: set[threading.Event] = set()
        self._stopping = False
        self._executor = ThreadPoolExecutor(max_workers=_MAX_THREADS, thread_name_prefix="rpc_parallel-worker")
        self._one_way_executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="rpc_parallel-one_way")
        self.server = grpc.server(self._executor, options=grpc_options(settings, server=True),
                                  interceptors=[_TokenCheck(token)])
        handlers = {self.spec.method_path(m): self._handler(m) for m in self.spec.methods}
        self._rpcs: dict[str, tuple[MethodCodec, Callable[..., Any]]] = {  # by method name, for calls that name it
            m.rpc_name: (self.codec.method(m.name), getattr(cls, m.name).impl)
            for m in self.spec.methods if m.kind is Kind.RPC}
        service = grpc.method_handlers_generic_handler(self.spec.full_name, {
            m.rpc_name: handlers[self.spec.method_path(m)] for m in self.spec.methods})
        spliced = grpc.method_handlers_generic_handler(SPLICED_SERVICE, {
            "Call": grpc.stream_stream_rpc_method_handler(self._spliced),
            "One": grpc.unary_unary_rpc_method_handler(self._spliced_one)})
        self.server.add_generic_rpc_handlers((service, spliced))
        control_pb2_grpc.add_ControlServicer_to_server(_Control(self), self.server)
        self._socket_dir = tempfile.mkdtemp(prefix="rpcpar-") if unix_socket else None  # mkdtemp: mode 0700
        if self._socket_dir is not None:
            self.address = f"unix:{self._socket_dir}/worker.sock"
            self.server.add_insecure_port(self.address)
        else:
            port = self.server.add_insecure_port("127.0.0.1:0")
            if port == 0:
                raise OSError("could not bind a port on 127.0.0.1")
            self.address = f"127.0.0.1:{port}"

    def start(self) -> None:
        self.server.start()

    def stop(self, grace: float | None = 0.5) -> None:
        """Stop serving (existing calls get ``grace`` seconds) and release the threads. Held
        streams (connections, Watch) end first, normally, so they need no grace."""
        with self._lock:
            held, self._held = self._held, set()
            self._stopping = True
        for event in held:
            event.set()
        self.server.stop(grace).wait()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._one_way_executor.shutdown(wait=False, cancel_futures=True)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    def handle(self) -> WorkerHandle:
        return WorkerHandle(worker_id=self.worker_id, address=self.address, name=self.name, settings=self.settings,
                            token=self.token, fingerprint=self.spec.fingerprint, pid=os.getpid())

    def init_worker_state(self, arg: Any) -> None:
        """Run ``init_worker_state(arg)`` (in-process; exceptions propagate)."""
        result = self.instance.init_worker_state(arg)
        if inspect.isawaitable(result):
            run_coroutine(_await(result))
        self.initialized.set()

    # -- failures ------------------------------------------------------------------------------

    def info(self, exc: BaseException, kind: int = ErrKind.REMOTE, *, size: int = 0, limit: int = 0) -> Any:
        """``exc`` as the ErrorInfo the caller gets."""
        return error_info(exc, kind=kind, worker_id=self.worker_id, worker_name=self.name, size=size, limit=limit)

    def background_failure(self, exc: BaseException) -> None:
        if self._on_failure is not None:
            self._on_failure(exc)
        else:
            import sys
            import traceback

            print(f"rpc_parallel: worker {self.name or self.worker_id} background failure:", file=sys.stderr)
            traceback.print_exception(exc, file=sys.stderr)

    def exit_on_system_exit(self, exc: BaseException) -> None:
        """``SystemExit`` from user code in a spawned worker exits the process with its code (the
        caller sees the worker gone): hand it on and never return. Anything else: return."""
        if isinstance(exc, SystemExit) and self._on_failure is not None:
            self._on_failure(exc)
            threading.Event().wait()  # the process is exiting: never answer

    def _raised(self, exc: BaseException, context: grpc.ServicerContext) -> NoReturn:
        """End the call for ``exc`` from user code: the caller's ``RemoteError`` (or the process
        exits, for ``SystemExit``)."""
        self.exit_on_system_exit(exc)
        abort(context, self.info(exc))

    @staticmethod
    def connection_id(context: grpc.ServicerContext) -> str:
        return _conn_id(context)

    def submit_call(self, fn: Callable[..., Any], /, *args: Any) -> None:
        """Run ``fn(*args)`` on the thread pool that runs calls."""
        self._executor.submit(fn, *args)

    def state_for(self, context: grpc.ServicerContext) -> Any:
        """The connection state of the call's connection; no (or a closed) connection ends the call."""
        try:
            return self.state_of(_conn_id(context))
        except CallFailed as failed:
            abort(context, failed.info)

    def state_of(self, conn: str) -> Any:
        """The state of connection ``conn`` (``CallFailed`` if it is closed or, where the worker
        type has connection state, missing)."""
        try:
            return self.connections[conn]
        except KeyError:
            if not conn and not self._needs_connection:
                return None  # a plain gRPC client: no connection state to give
            msg = ("this connection is closed" if conn else
                   "no rpcpar-conn metadata: open a connection first (rpc_parallel.v1.Control/OpenConnection)")
            raise CallFailed(self.info(ConnectionError(msg), ErrKind.CONNECTION_CLOSED)) from None

    def rpc(self, method: str) -> tuple[MethodCodec, Callable[..., Any]]:
        """The codec and implementation of the ``rpc`` function with gRPC method name ``method``."""
        try:
            return self._rpcs[method]
        except KeyError:
            raise CallFailed(self.info(LookupError(f"no rpc function with method {method!r}"),
                                       ErrKind.BAD_REQUEST)) from None

    def run_rpc(self, impl: Callable[..., Any], state: Any, decode: Callable[[_D], list[Any]], data: _D,
                encode: Callable[[Any], _E], size: Callable[[_E], int]) -> _E:
        """One call of an ``rpc`` (or reverse pipe) function, however it arrived: ``decode(data)``
        (failing: ``BAD_REQUEST``), run it, ``encode`` its result (a failure of either: the
        caller's ``RemoteError``, or the process exits, for ``SystemExit``), no larger than
        max_message_size by ``size``. Raises ``CallFailed`` for the caller."""
        try:
            args = decode(data)
        except Exception as exc:
            raise CallFailed(self.info(exc, ErrKind.BAD_REQUEST)) from None
        try:
            out = encode(self.call(impl, state, args))
        except (Exception, SystemExit) as exc:
            self.exit_on_system_exit(exc)
            raise CallFailed(self.info(exc)) from None
        n, limit = size(out), self.settings.max_message_size
        if n > limit:
            raise CallFailed(self.info(ValueError(f"result of {n} bytes exceeds max_message_size {limit}"),
                                       ErrKind.TOO_LARGE, size=n, limit=limit))
        return out

    # -- handlers ------------------------------------------------------------------------------

    def _handler(self, m: MethodSpec) -> grpc.RpcMethodHandler[Any, Any]:
        codec = self.codec.method(m.name)
        impl = getattr(self.cls, m.name).impl
        if m.kind in (Kind.RPC, Kind.ONE_WAY):
            fn = self._unary(m, codec, impl)
            return grpc.unary_unary_rpc_method_handler(fn)
        if m.kind is Kind.REVERSE_PIPE:
            return grpc.stream_unary_rpc_method_handler(self._reverse(m, codec, impl))
        return grpc.unary_stream_rpc_method_handler(self._stream(m, codec, impl))

    def _decode(self, codec: MethodCodec, data: bytes, context: grpc.ServicerContext) -> list[Any]:
        try:
            return codec.decode_request(data)
        except Exception as exc:
            abort(context, self.info(exc, ErrKind.BAD_REQUEST))

    def call(self, impl: Callable[..., Any], state: Any, args: list[Any]) -> Any:
        """Run ``impl`` with the connection state set; ``async def`` ones on the worker loop."""
        _CONNECTION_STATE.set(state)
        result = impl(self.instance, *args)
        if inspect.isawaitable(result):
            return run_coroutine(_with_state(result, state))
        return result

    def _unary(self, m: MethodSpec, codec: MethodCodec, impl: Callable[..., Any]) -> Callable[..., bytes]:
        one_way = m.kind is Kind.ONE_WAY
        empty = b""

        decode, encode = codec.decode_request, codec.encode_result

        def behavior(request: bytes, context: grpc.ServicerContext) -> bytes:
            state = self.state_for(context)
            if one_way:
                self._one_way(codec, impl, state, request, context)
                return empty
            try:
                return self.run_rpc(impl, state, decode, request, encode, len)
            except CallFailed as failed:
                abort(context, failed.info)

        return behavior

    def _spliced(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        """``Spliced/Call``: an rpc whose large ``bytes`` values travel unframed (control.proto,
        SplicedHeader), so neither side copies them; otherwise the unary call of its method."""
        try:
            header = control_pb2.SplicedHeader.FromString(next(requests))
            found = {number: next(requests) for number in header.fields}
        except (StopIteration, DecodeError) as exc:
            abort(context, self.info(ProtocolError(f"malformed spliced call: {exc!r}"), ErrKind.BAD_REQUEST))
        rest, taken = self._run_spliced(header, found, context)
        yield control_pb2.SplicedHeader(message=rest, fields=[number for number, _ in taken]).SerializeToString()
        for _, value in taken:
            yield value

    def _spliced_one(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """``Spliced/One``: ``Spliced/Call`` for one large value, as a unary call: the value is the
        request, the header is in ``rpcpar-spliced-bin`` metadata; the reply is the result's large
        value or message, its header in the same trailer."""
        raw = next((v for k, v in context.invocation_metadata() if k == SPLICED_KEY), b"")
        try:
            header = control_pb2.SplicedHeader.FromString(raw if isinstance(raw, bytes) else b"")
            if len(header.fields) != 1:
                raise ValueError(f"{len(header.fields)} large values for Spliced/One")
        except (DecodeError, ValueError) as exc:
            abort(context, self.info(ProtocolError(f"malformed spliced call: {exc!r}"), ErrKind.BAD_REQUEST))
        rest, taken = self._run_spliced(header, {header.fields[0]: request}, context)
        if len(taken) == 1:
            reply = control_pb2.SplicedHeader(message=rest, fields=[taken[0][0]]).SerializeToString()
            if len(reply) <= SPLICED_HEADER_MAX:
                context.set_trailing_metadata(((SPLICED_KEY, reply),))
                return taken[0][1]
        context.set_trailing_metadata(((SPLICED_KEY, b""),))
        return joined(rest, taken)

    def _run_spliced(self, header: control_pb2.SplicedHeader, found: dict[int, bytes],
                     context: grpc.ServicerContext) -> tuple[bytes, list[tuple[int, bytes]]]:
        """Run the rpc of a spliced call; its result as a message and large values."""
        try:
            codec, impl = self.rpc(header.method)
            state = self.state_of(_conn_id(context))
            size, limit = wire_size(header.message, list(found.items())), self.settings.max_message_size
            if size > limit:  # what gRPC refuses for a unary request (rpc_parallel's clients check first)
                raise CallFailed(self.info(ValueError(f"request of {size} bytes exceeds max_message_size {limit}"),
                                           ErrKind.TOO_LARGE, size=size, limit=limit))
            return self.run_rpc(impl, state, functools.partial(codec.decode_request_parts, header.message), found,
                                codec.encode_result_parts, _parts_size)
        except CallFailed as failed:
            abort(context, failed.info)

    def _one_way(self, codec: MethodCodec, impl: Callable[..., Any], state: Any, request: bytes,
                 context: grpc.ServicerContext) -> None:
        """Queue a one_way call: in its connection's order if numbered (``_inorder``), else at once."""
        try:
            seq = _seq(context)
        except ValueError as exc:
            abort(context, self.info(exc, ErrKind.BAD_REQUEST))
        order = self._one_ways.get(_conn_id(context)) if seq is not None else None
        try:
            job = functools.partial(self._run_one_way, impl, state, codec.decode_request(request))
            bad = None
        except Exception as exc:
            job, bad = None, exc
        try:
            if order is not None and seq is not None:
                order.put(seq, job)  # a call that cannot run still takes its number
            elif job is not None:
                self._one_way_executor.submit(job)
        except ValueError as exc:
            abort(context, self.info(exc, ErrKind.BAD_REQUEST))
        except RuntimeError:  # the executor is shut down
            abort(context, self.info(ConnectionError("the worker is shutting down"), ErrKind.CONNECTION_CLOSED))
        if bad is not None:
            abort(context, self.info(bad, ErrKind.BAD_REQUEST))

    def _run_one_way(self, impl: Callable[..., Any], state: Any, args: list[Any]) -> None:
        try:
            self.call(impl, state, args)
        except BaseException as exc:  # whatever it is, the caller is gone: on_failure hears of it
            self.background_failure(exc)

    def _stream(self, m: MethodSpec, codec: MethodCodec, impl: Callable[..., Any]) -> Callable[..., Iterator[bytes]]:
        limit = self.settings.max_message_size
        kind = m.kind
        encode = codec.encode_updates_batch if kind is Kind.STATE else codec.encode_items

        def behavior(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
            state = self.state_for(context)
            args = self._decode(codec, request, context)
            pump = Pump(shared=kind is Kind.DIRECT_PIPE)  # a writer may be used from any thread
            context.add_callback(pump.stop)
            if kind is Kind.DIRECT_PIPE:
                writer = _Writer(pump)
                try:
                    self.call(impl, state, [writer, *args])
                except (Exception, SystemExit) as exc:
                    self._raised(exc, context)
            else:
                try:
                    produced = self.call(impl, state, args)
                    if kind is Kind.STATE:
                        initial, produced = produced
                        first = codec.encode_state(initial)
                except (Exception, SystemExit) as exc:
                    self._raised(exc, context)
                if kind is Kind.STATE:
                    yield first
                self._start_producer(produced, pump, state)
            try:
                for batch in pump.batches():
                    yield from _split(encode, batch, limit)
            except (Exception, SystemExit) as exc:
                self._raised(exc, context)

        return behavior

    def _start_producer(self, produced: Any, pump: Pump, state: Any) -> None:
        if hasattr(produced, "__aiter__"):
            worker_loop().call_soon_threadsafe(_start_async_producer, produced, pump, state)
        else:
            self._executor.submit(_produce, iter(produced), pump)

    def _reverse(self, m: MethodSpec, codec: MethodCodec, impl: Callable[..., Any]) -> Callable[..., bytes]:
        index = [p.name for p in m.params].index(m.updates_param or "")
        is_async = m.is_async

        def decode(requests: Iterator[bytes]) -> list[Any]:
            """The first message's arguments, the updates parameter streaming the rest."""
            try:
                first = next(requests)
            except StopIteration:
                raise ValueError("empty request stream") from None
            args = codec.decode_request(first)
            updates: Iterator[Any] = _updates(args[index], requests, codec)
            args[index] = _async_updates(updates) if is_async else updates
            return args

        def behavior(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
            state = self.state_for(context)
            try:
                return self.run_rpc(impl, state, decode, requests, codec.encode_result, len)
            except CallFailed as failed:
                abort(context, failed.info)

        return behavior

    # -- control -------------------------------------------------------------------------------

    def check_hosted(self, worker_id: str, context: grpc.ServicerContext, *, required: bool) -> None:
        """Refuse (``NOT_HOSTED``) a call naming another worker: its handle is stale, the port reused."""
        if worker_id == self.worker_id or (not worker_id and not required):
            return
        abort(context, self.info(LookupError(
            f"this server hosts worker {self.worker_id}, not {worker_id or '<no worker id>'}: the handle is stale "
            "(that worker is gone and its port was reused)"), ErrKind.NOT_HOSTED))

    def hold(self, context: grpc.ServicerContext) -> threading.Event:
        """An event set when the caller cancels the call or this server stops: a held stream
        returns (ending normally) once it is set."""
        done = threading.Event()
        context.add_callback(done.set)
        with self._lock:
            if self._stopping:
                done.set()
            else:
                self._held.add(done)
        return done

    def release(self, done: threading.Event) -> None:
        with self._lock:
            self._held.discard(done)

    def open_connection(self, request: control_pb2.OpenConnectionRequest, context: grpc.ServicerContext
                        ) -> Iterator[control_pb2.ConnectionEvent]:
        if self._closed_server:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the worker server is closed (close_server)")
        self.check_hosted(request.worker_id, context, required=True)
        if request.fingerprint != self.spec.fingerprint:
            abort(context, self.info(ProtocolError(self.mismatch(request.fingerprint, request.functions)),
                                      ErrKind.PROTOCOL))
        if not self.initialized.wait(self.settings.handshake_timeout):
            abort(context, self.info(RuntimeError("the worker is not initialized")))
        try:
            state = self.call(self.instance.init_connection_state.__func__, None,
                               [self.codec.decode_connection_init(request.arg)])
        except (Exception, SystemExit) as exc:
            self._raised(exc, context)
        conn = uuid.uuid4().hex
        with self._lock:
            self.connections[conn] = state
            self._one_ways[conn] = InOrder(self._one_way_executor)
            self.connection_count += 1
            first = self.connection_count == 1
        if self.on_connection_opened is not None:
            self.on_connection_opened()
        done = self.hold(context)

        def ended() -> None:
            self.release(done)
            with self._lock:
                order = self._one_ways.pop(conn, None)
                if self.connections.pop(conn, _MISSING) is _MISSING:
                    return  # already ended
            if order is not None:
                try:
                    order.flush()  # they were acknowledged: they run, even past a number that never came
                except RuntimeError:
                    pass  # the worker is stopping: its one-way pool is shut down
            if self.on_connection_closed is not None:
                self.on_connection_closed(first)

        # gRPC may drop a cancelled stream's generator without resuming or closing it, so the end
        # of the call (a callback) ends the connection too; whichever comes first counts
        if not context.add_callback(ended):
            ended()
        try:
            yield control_pb2.ConnectionEvent(connection_id=conn)
            done.wait()
        finally:
            ended()

    def mismatch(self, fingerprint: str, functions: Any) -> str:
        differ = differing_functions(dict(self.spec.function_fingerprints),
                                     {f.name: f.fingerprint for f in functions})
        which = ", ".join(differ) or "init_worker_state/init_connection_state arguments"
        return (f"worker type {self.spec.name} differs between this worker and its caller "
                f"(fingerprint {self.spec.fingerprint} here, {fingerprint} there); functions that differ: {which}")

    def close_server(self) -> None:
        self._closed_server = True

    def shutdown_requested(self) -> None:
        if self._on_shutdown is not None:
            self._on_shutdown()

    def describe(self) -> control_pb2.DescribeReply:
        fdp = file_descriptor(file_spec(self.cls.__module__))
        return control_pb2.DescribeReply(
            file_descriptor=fdp.SerializeToString(), service=self.spec.full_name,
            functions=[self._function_kind(m) for m in self.spec.methods])

    def _function_kind(self, m: MethodSpec) -> control_pb2.FunctionKind:
        defaulted, defaults = self.codec.method(m.name).encode_defaults()
        return control_pb2.FunctionKind(name=m.name, method=m.rpc_name, kind=m.kind.value,
                                        updates_param=m.updates_param or "", defaulted=defaulted, defaults=defaults)


class _Control(control_pb2_grpc.ControlServicer):
    def __init__(self, server: WorkerServer) -> None:
        self._s = server

    def InitWorker(self, request: control_pb2.InitWorkerRequest, context: grpc.ServicerContext
                   ) -> control_pb2.InitWorkerReply:
        s = self._s
        s.check_hosted(request.worker_id, context, required=True)
        if s.on_init is not None:
            s.on_init(request)
        try:
            s.init_worker_state(s.codec.decode_init(request.arg))
        except (Exception, SystemExit) as exc:
            if s.on_init_failed is not None and not isinstance(exc, SystemExit):
                context.add_callback(s.on_init_failed)
            s._raised(exc, context)
        if s.on_initialized is not None:
            s.on_initialized()
        return control_pb2.InitWorkerReply()

    def OpenConnection(self, request: control_pb2.OpenConnectionRequest, context: grpc.ServicerContext
                       ) -> Iterator[control_pb2.ConnectionEvent]:
        return self._s.open_connection(request, context)

    def Shutdown(self, request: control_pb2.ShutdownRequest, context: grpc.ServicerContext
                 ) -> control_pb2.ShutdownReply:
        self._s.check_hosted(request.worker_id, context, required=True)
        context.add_callback(self._s.shutdown_requested)
        return control_pb2.ShutdownReply()

    def CloseServer(self, request: control_pb2.CloseServerRequest, context: grpc.ServicerContext
                    ) -> control_pb2.CloseServerReply:
        self._s.check_hosted(request.worker_id, context, required=True)
        self._s.close_server()
        return control_pb2.CloseServerReply()

    def Settings(self, request: control_pb2.SettingsRequest, context: grpc.ServicerContext
                 ) -> control_pb2.SettingsReply:
        self._s.check_hosted(request.worker_id, context, required=False)
        return control_pb2.SettingsReply(settings_json=self._s.settings.to_json())

    def Describe(self, request: control_pb2.DescribeRequest, context: grpc.ServicerContext
                 ) -> control_pb2.DescribeReply:
        self._s.check_hosted(request.worker_id, context, required=False)
        return self._s.describe()

    def Pipeline(self, request_iterator: Iterator[control_pb2.PipelineRequests], context: grpc.ServicerContext
                 ) -> Iterator[control_pb2.PipelineReplies]:
        return pipeline.serve(self._s, request_iterator, context)

    def Watch(self, request: control_pb2.WatchRequest, context: grpc.ServicerContext
              ) -> Iterator[control_pb2.WatchEvent]:
        self._s.check_hosted(request.worker_id, context, required=True)
        done = self._s.hold(context)
        try:
            yield control_pb2.WatchEvent()
            done.wait()
        finally:
            self._s.release(done)


def _split(encode: Callable[[list[Any]], bytes], batch: list[Any], limit: int) -> Iterator[bytes]:
    """Encode ``batch`` as one message, or as several if one would exceed ``limit`` bytes."""
    data = encode(batch)
    if len(data) <= limit or len(batch) == 1:
        yield data  # a single oversized item fails in gRPC with RESOURCE_EXHAUSTED, naming the sizes
        return
    half = len(batch) // 2
    yield from _split(encode, batch[:half], limit)
    yield from _split(encode, batch[half:], limit)


def _produce(items: Iterator[Any], pump: Pump) -> None:
    """Run the user's iterator into ``pump``; close it (GeneratorExit) when the caller stops."""
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


def _start_async_producer(items: Any, pump: Pump, state: Any) -> None:
    import asyncio

    async def produce() -> None:
        _CONNECTION_STATE.set(state)
        try:
            async for item in items:
                while pump.full() and not pump.stopped:
                    await asyncio.sleep(0.001)
                if not pump.put(item, block=False) and pump.stopped:
                    aclose = getattr(items, "aclose", None)
                    if aclose is not None:
                        await aclose()
                    return
        except BaseException as exc:
            pump.finish(exc)
            return
        pump.finish()

    asyncio.ensure_future(produce())


def _updates(first: list[Any], requests: Iterator[bytes], codec: MethodCodec) -> Iterator[Any]:
    yield from first
    for data in requests:
        yield from codec.decode_updates(data)


async def _async_updates(updates: Iterator[Any]) -> AsyncIterator[Any]:
    import asyncio

    sentinel = object()
    loop = asyncio.get_running_loop()
    while True:
        item = await loop.run_in_executor(None, next, updates, sentinel)
        if item is sentinel:
            return
        yield item


async def _await(awaitable: Any) -> Any:
    return await awaitable


async def _with_state(awaitable: Any, state: Any) -> Any:
    _CONNECTION_STATE.set(state)
    return await awaitable
