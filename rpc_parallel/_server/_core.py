"""``WorkerCore``: one worker instance and everything its calls share, whichever way they arrive.

It holds the worker state (the instance), the connections and their states, the thread pools
that run calls, and the rules every call follows: how a function runs (``call``, ``run_rpc``),
how a failure is described to the caller (``info``, ``fail_call``) and what a connection is
(``open_connection``). The gRPC handlers of ``_dispatch``, ``_spliced``, ``_pipeline`` and
``_control`` are thin adapters over it; ``ServerHooks`` is how its host hears of its life.
"""

from __future__ import annotations

import inspect
import os
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn, TypeVar

import grpc

from .._codec import MethodCodec, codec_for
from .._declaration import CONNECTION_STATE, init_takes_arg
from .._errors import ProtocolError
from .._function import Kind
from .._grpc_errors import CallFailed, Kind as ErrKind, abort, error_info
from .._handle import WorkerHandle
from .._proto import control_pb2, errors_pb2
from .._protocol import CONN_KEY, ONE_WAY_QUEUE_BYTES, ONE_WAY_QUEUE_CALLS
from .._schema import MethodSpec, ServiceSpec, differing_functions, file_descriptor, file_spec, service_spec
from .._settings import RpcSettings
from ._inorder import InOrder
from ._loop import run_coroutine

__all__ = ("ServerHooks", "WorkerCore")

_MAX_THREADS = 512  # every open stream (connection, pipe) holds a thread of a sync gRPC server
_MISSING: Any = object()
_D = TypeVar("_D")
_E = TypeVar("_E")


class ServerHooks:
    """What the host of a worker server (a spawned worker process, or ``Worker.serve``) hears of
    the server's life. Each method does nothing by default and runs on a gRPC thread."""

    def init_arrived(self, request: control_pb2.InitWorkerRequest) -> None:
        """``Control/InitWorker`` arrived; ``init_worker_state`` runs next."""

    def initialized(self) -> None:
        """``init_worker_state`` returned (for ``Control/InitWorker``)."""

    def init_failed(self) -> None:
        """``init_worker_state`` raised, and the caller has been told."""

    def connection_opened(self) -> None:
        """A connection opened (``init_connection_state`` returned)."""

    def connection_closed(self, first: bool) -> None:
        """A connection ended; ``first``: it was the server's first connection."""

    def shutdown_requested(self) -> None:
        """A client asked the worker to exit (``Control/Shutdown``, after its reply)."""

    def background_failure(self, exc: BaseException, worker: str) -> None:
        """An exception nobody awaits (a one_way's, or one raised after a function returned) in
        ``worker`` (its name or id). By default it is printed to stderr."""
        print(f"rpc_parallel: worker {worker} background failure:", file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)

    def system_exit(self, exc: SystemExit) -> bool:
        """User code raised ``SystemExit``: True if the host exits the process for it (then the call
        is never answered: its caller sees the worker gone); False makes it the caller's
        ``RemoteError``."""
        return False


class WorkerCore:
    """One worker instance of ``cls`` and the state its calls share (see the module docstring)."""

    def __init__(self, cls: type, *, worker_id: str, name: str | None, settings: RpcSettings, token: str,
                 hooks: ServerHooks) -> None:
        self.cls = cls
        self.spec: ServiceSpec = service_spec(cls)
        self.codec = codec_for(cls)
        self.worker_id = worker_id
        self.name = name
        self.settings = settings
        self.token = token
        self.hooks = hooks
        self.instance: Any = object.__new__(cls)
        self.initialized = threading.Event()
        self.connections: dict[str, Any] = {}
        self._one_ways: dict[str, InOrder] = {}  # by connection, for numbered one_way calls
        self._had_connection = False  # for hooks.connection_closed(first)
        # a worker type without init_connection_state also serves plain gRPC clients (no connection)
        self._needs_connection = not getattr(cls.init_connection_state, "_rp_default", False)  # type: ignore[attr-defined]
        self._init_takes_arg = init_takes_arg(cls, "init_worker_state")
        self._connection_init_takes_arg = init_takes_arg(cls, "init_connection_state")
        self._closed_server = False
        self._lock = threading.Lock()
        self._held: set[threading.Event] = set()
        self._stopping = False
        self.executor = ThreadPoolExecutor(max_workers=_MAX_THREADS, thread_name_prefix="rpc_parallel-worker")
        self.not_serving_hooks: list[Callable[[], object]] = []  # (the health service's)
        self.one_way_executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="rpc_parallel-one_way")
        self._rpcs: dict[str, tuple[MethodCodec, Callable[..., Any]]] = {  # by method name, for calls that name it
            m.rpc_name: (self.codec.method(m.name), getattr(cls, m.name).impl)
            for m in self.spec.methods if m.kind is Kind.RPC}

    def handle(self, address: str) -> WorkerHandle:
        return WorkerHandle(worker_id=self.worker_id, address=address, name=self.name, settings=self.settings,
                            token=self.token, fingerprint=self.spec.fingerprint, pid=os.getpid())

    def not_serving(self) -> None:
        """The server takes no new connections (``close_server``) or stops: what health checks say."""
        for hook in self.not_serving_hooks:
            hook()

    def stopping(self) -> None:
        """The server is stopping: held streams (connections, Watch) end now, normally."""
        self.not_serving()
        with self._lock:
            held, self._held = self._held, set()
            self._stopping = True
        for event in held:
            event.set()

    def release_threads(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.one_way_executor.shutdown(wait=False, cancel_futures=True)

    def init_worker_state(self, arg: Any) -> None:
        """Run ``init_worker_state(arg)`` (exceptions propagate); ``arg`` is None for one taking none."""
        result = self.instance.init_worker_state(*([arg] if self._init_takes_arg else []))
        if inspect.isawaitable(result):
            run_coroutine(_await(result))
        self.initialized.set()

    # -- running calls -------------------------------------------------------------------------

    def call(self, impl: Callable[..., Any], state: Any, args: list[Any]) -> Any:
        """Run ``impl`` with the connection state set; ``async def`` ones on the worker loop."""
        CONNECTION_STATE.set(state)
        result = impl(self.instance, *args)
        if inspect.isawaitable(result):
            return run_coroutine(_with_state(result, state))
        return result

    def submit_call(self, fn: Callable[..., Any], /, *args: Any) -> None:
        """Run ``fn(*args)`` on the thread pool that runs calls."""
        self.executor.submit(fn, *args)

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

    # -- failures ------------------------------------------------------------------------------

    def info(self, exc: BaseException, kind: int = ErrKind.REMOTE, *, size: int = 0,
             limit: int = 0) -> errors_pb2.ErrorInfo:
        """``exc`` as the ErrorInfo the caller gets."""
        return error_info(exc, kind=kind, worker_id=self.worker_id, worker_name=self.name, size=size, limit=limit)

    def background_failure(self, exc: BaseException) -> None:
        """Hand an exception nobody awaits to the host."""
        self.hooks.background_failure(exc, self.name or self.worker_id)

    def exit_on_system_exit(self, exc: BaseException) -> None:
        """``SystemExit`` from user code, where the host exits the process for it: never return (the
        caller sees the worker gone). Anything else: return."""
        if isinstance(exc, SystemExit) and self.hooks.system_exit(exc):
            threading.Event().wait()  # the process is exiting: never answer

    def fail_call(self, exc: BaseException, context: grpc.ServicerContext) -> NoReturn:
        """End the call for ``exc`` from user code: the caller's ``RemoteError`` (or the process
        exits, for ``SystemExit``)."""
        self.exit_on_system_exit(exc)
        abort(context, self.info(exc))

    def decode_request(self, codec: MethodCodec, data: bytes, context: grpc.ServicerContext) -> list[Any]:
        """The arguments of a request; a malformed one ends the call (``BAD_REQUEST``)."""
        try:
            return codec.decode_request(data)
        except Exception as exc:
            abort(context, self.info(exc, ErrKind.BAD_REQUEST))

    # -- connections ---------------------------------------------------------------------------

    def state_for(self, context: grpc.ServicerContext) -> Any:
        """The connection state of the call's connection; no (or a closed) connection ends the call."""
        try:
            return self.state_of(connection_id(context))
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

    def one_way_order(self, conn: str) -> InOrder | None:
        """The in-order queue of connection ``conn``'s numbered one-way calls (None if it is closed)."""
        return self._one_ways.get(conn)

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
        """``Control/OpenConnection``: check the caller's schema, run ``init_connection_state``, then
        hold the stream; the connection lasts as long as it does."""
        if self._closed_server:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the worker server is closed (close_server)")
        self.check_hosted(request.worker_id, context, required=True)
        if request.fingerprint != self.spec.fingerprint:
            abort(context, self.info(ProtocolError(self.mismatch(request)), ErrKind.PROTOCOL))
        if not self.initialized.wait(self.settings.handshake_timeout):
            abort(context, self.info(RuntimeError("the worker is not initialized")))
        try:
            arg = self.codec.decode_connection_init(request.arg)
            state = self.call(self.instance.init_connection_state.__func__, None,
                              [arg] if self._connection_init_takes_arg else [])
        except (Exception, SystemExit) as exc:
            self.fail_call(exc, context)
        conn = uuid.uuid4().hex
        with self._lock:
            self.connections[conn] = state
            self._one_ways[conn] = InOrder(self.one_way_executor, ONE_WAY_QUEUE_CALLS, ONE_WAY_QUEUE_BYTES)
            first, self._had_connection = not self._had_connection, True
        self.hooks.connection_opened()
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
            self.hooks.connection_closed(first)

        # gRPC may drop a cancelled stream's generator without resuming or closing it, so the end
        # of the call (a callback) ends the connection too; whichever comes first counts
        if not context.add_callback(ended):
            ended()
        try:
            yield control_pb2.ConnectionEvent(connection_id=conn)
            done.wait()
        finally:
            ended()

    def mismatch(self, request: control_pb2.OpenConnectionRequest) -> str:
        """What differs between this worker's type and the one the caller connects as."""
        theirs = request.service
        if theirs and theirs != self.spec.full_name:
            package, _, name = theirs.rpartition(".")
            mine = _a(self.spec.name)
            if package != self.spec.package:  # types of two modules: say which
                mine, name = f"{mine} (of {self.spec.package})", f"{name} (of {package})"
            return f"this worker is {mine}, not {_a(name)}: connect to it as the worker type it was spawned as"
        differ = differing_functions(dict(self.spec.function_fingerprints),
                                     {f.name: f.fingerprint for f in request.functions})
        which = ", ".join(differ) or "init_worker_state/init_connection_state arguments"
        return (f"worker type {self.spec.name} differs between this worker and its caller "
                f"(fingerprint {self.spec.fingerprint} here, {request.fingerprint} there); functions that differ: "
                f"{which}")

    def close_server(self) -> None:
        self._closed_server = True
        self.not_serving()

    def describe(self) -> control_pb2.DescribeReply:
        fdp = file_descriptor(file_spec(self.cls.__module__))
        return control_pb2.DescribeReply(
            file_descriptor=fdp.SerializeToString(), service=self.spec.full_name,
            functions=[self._function_kind(m) for m in self.spec.methods],
            message_defaults=[control_pb2.MessageDefaults(message=name, defaulted=sorted(names),
                                                          defaults=message.SerializeToString())
                              for name, (names, message) in self.codec.message_defaults().items()])

    def _function_kind(self, m: MethodSpec) -> control_pb2.FunctionKind:
        defaulted, defaults = self.codec.method(m.name).encode_defaults()
        return control_pb2.FunctionKind(name=m.name, method=m.rpc_name, kind=m.kind.value,
                                        updates_param=m.updates_param or "", defaulted=defaulted, defaults=defaults)


def _a(name: str) -> str:
    """``name`` with its indefinite article, for messages (by its sound: an Adder, a User)."""
    lower = name.lower()
    vowel_sound = lower[:1] in "aeiou" and not lower.startswith(("uni", "usa", "use", "usi", "usu", "uti", "eu", "one"))
    return f"{'an' if vowel_sound else 'a'} {name}"


def connection_id(context: grpc.ServicerContext) -> str:
    """The call's connection (``rpcpar-conn`` metadata; "" if it has none)."""
    for key, value in context.invocation_metadata():
        if key == CONN_KEY:
            return str(value)
    return ""


async def _await(awaitable: Any) -> Any:
    return await awaitable


async def _with_state(awaitable: Any, state: Any) -> Any:
    CONNECTION_STATE.set(state)
    return await awaitable
