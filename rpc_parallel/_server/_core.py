"""``WorkerCore``: one worker instance and everything its calls share, whichever way they arrive.

It holds the worker state (the instance), the connections and their states, the thread pools
that run calls, and the rules every call follows: how a function runs (``call``, ``run_rpc``),
how a failure is described to the caller (``info``, ``fail_call``) and what a connection is
(``open_connection``). The gRPC handlers of ``_dispatch``, ``_spliced``, ``_pipeline`` and
``_control`` are thin adapters over it; ``ServerHooks`` is how its host hears of its life.

The server is a ``grpc.aio`` server on the worker's event loop (``_loop``): handlers are
coroutines, so an open stream (a connection, a pipe) costs a task, not a thread. ``async def``
functions run on that loop; plain ones on its threads (``threads``), one hop per call.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import sys
import threading
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn, TypeVar, cast

import grpc
import grpc.aio

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
from ._loop import on_loop, resolve, run_coroutine, worker_loop
from ._threads import Threads

__all__ = ("Context", "ServerHooks", "WorkerCore", "cancelled_here", "connection_id", "is_coroutine_function",
           "when_done")

Context = grpc.aio.ServicerContext[Any, Any]
_MAX_THREADS = 512  # calls of plain functions running at once (the rest wait for a thread)
_D = TypeVar("_D")
_T = TypeVar("_T")
_E = TypeVar("_E")


class ServerHooks:
    """What the host of a worker server (a spawned worker process, or ``Worker.serve``) hears of
    the server's life. Each method does nothing by default; it may run on the server's event
    loop, so it must not block for long."""

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
        self.loop = worker_loop()
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
        self._held: set[asyncio.Future[None]] = set()
        self._stopping = False
        self.threads = Threads(self.loop, _MAX_THREADS, "rpc_parallel-worker")
        self._tasks: set[asyncio.Task[Any]] = set()  # background tasks (held: the loop keeps weak references)
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
        for done in held:
            self.loop.call_soon_threadsafe(resolve, done)

    def release_threads(self) -> None:
        self.threads.shutdown()
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

    async def call_async(self, impl: Callable[..., Any], state: Any, args: list[Any]) -> Any:
        """``call`` from the event loop: ``async def`` functions run here, plain ones on the pool."""
        if is_coroutine_function(impl) or inspect.isasyncgenfunction(impl):
            CONNECTION_STATE.set(state)
            result = impl(self.instance, *args)
            return await result if inspect.isawaitable(result) else result
        return await self.threads.run(self.call, impl, state, args)

    def background(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task of the event loop (from the loop)."""
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

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
        except BaseException as exc:  # (on a thread: even a CancelledError is the function's own)
            self.exit_on_system_exit(exc)
            raise CallFailed(self.info(exc)) from None
        return self._checked(out, size)

    def _checked(self, out: _E, size: Callable[[_E], int]) -> _E:
        n, limit = size(out), self.settings.max_message_size
        if n > limit:
            raise CallFailed(self.info(ValueError(f"result of {n} bytes exceeds max_message_size {limit}"),
                                       ErrKind.TOO_LARGE, size=n, limit=limit))
        return out

    async def run_rpc_async(self, impl: Callable[..., Any], state: Any, decode: Callable[[_D], list[Any]], data: _D,
                            encode: Callable[[Any], _E], size: Callable[[_E], int]) -> _E:
        """``run_rpc`` from the event loop: an ``async def`` function runs here (decoding and
        encoding too), a plain one on the thread pool."""
        if not is_coroutine_function(impl):
            return await self.threads.run(self.run_rpc, impl, state, decode, data, encode, size)
        try:
            args = decode(data)
        except Exception as exc:
            raise CallFailed(self.info(exc, ErrKind.BAD_REQUEST)) from None
        try:
            CONNECTION_STATE.set(state)
            out = encode(await impl(self.instance, *args))
        except BaseException as exc:
            if cancelled_here(exc):
                raise
            await self.exit_on_system_exit_async(exc)
            raise CallFailed(self.info(exc)) from None
        return self._checked(out, size)

    # -- failures ------------------------------------------------------------------------------

    def info(self, exc: BaseException, kind: int = ErrKind.REMOTE, *, size: int = 0,
             limit: int = 0) -> errors_pb2.ErrorInfo:
        """``exc`` as the ErrorInfo the caller gets."""
        return error_info(exc, kind=kind, worker_id=self.worker_id, worker_name=self.name, size=size, limit=limit)

    def background_failure(self, exc: BaseException) -> None:
        """Hand an exception nobody awaits to the host (on a thread: the host may block)."""
        if on_loop(self.loop):
            self.threads.submit(self.hooks.background_failure, exc, self.name or self.worker_id)
        else:
            self.hooks.background_failure(exc, self.name or self.worker_id)

    def exit_on_system_exit(self, exc: BaseException) -> None:
        """``SystemExit`` from user code, where the host exits the process for it: never return (the
        caller sees the worker gone). Anything else: return."""
        if isinstance(exc, SystemExit) and self.hooks.system_exit(exc):
            threading.Event().wait()  # the process is exiting: never answer

    async def exit_on_system_exit_async(self, exc: BaseException) -> None:
        """``exit_on_system_exit`` on the event loop: the call waits (unanswered) for the end."""
        if isinstance(exc, SystemExit) and self.hooks.system_exit(exc):
            await asyncio.Event().wait()

    async def fail_call(self, exc: BaseException, context: Context) -> NoReturn:
        """End the call for ``exc`` from user code: the caller's ``RemoteError`` (or the process
        exits, for ``SystemExit``)."""
        await self.exit_on_system_exit_async(exc)
        await abort(context, self.info(exc))

    async def decode_request(self, codec: MethodCodec, data: bytes, context: Context) -> list[Any]:
        """The arguments of a request; a malformed one ends the call (``BAD_REQUEST``)."""
        try:
            return codec.decode_request(data)
        except Exception as exc:
            await abort(context, self.info(exc, ErrKind.BAD_REQUEST))

    # -- connections ---------------------------------------------------------------------------

    async def state_for(self, context: Context) -> Any:
        """The connection state of the call's connection; no (or a closed) connection ends the call."""
        try:
            return self.state_of(connection_id(context))
        except CallFailed as failed:
            await abort(context, failed.info)

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

    async def check_hosted(self, worker_id: str, context: Context, *, required: bool) -> None:
        """Refuse (``NOT_HOSTED``) a call naming another worker: its handle is stale, the port reused."""
        if worker_id == self.worker_id or (not worker_id and not required):
            return
        await abort(context, self.info(LookupError(
            f"this server hosts worker {self.worker_id}, not {worker_id or '<no worker id>'}: the handle is stale "
            "(that worker is gone and its port was reused)"), ErrKind.NOT_HOSTED))

    def hold(self) -> asyncio.Future[None]:
        """A future resolved when this server stops: a held stream returns (ending normally) then,
        or when its caller cancels it (its task is cancelled)."""
        done: asyncio.Future[None] = self.loop.create_future()
        with self._lock:
            if self._stopping:
                done.set_result(None)
            else:
                self._held.add(done)
        return done

    def release(self, done: asyncio.Future[None]) -> None:
        with self._lock:
            self._held.discard(done)

    async def open_connection(self, request: control_pb2.OpenConnectionRequest, context: Context
                              ) -> AsyncIterator[control_pb2.ConnectionEvent]:
        """``Control/OpenConnection``: check the caller's schema, run ``init_connection_state``, then
        hold the stream; the connection lasts as long as it does."""
        if self._closed_server:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the worker server is closed (close_server)")
        await self.check_hosted(request.worker_id, context, required=True)
        if request.fingerprint != self.spec.fingerprint:
            await abort(context, self.info(ProtocolError(self.mismatch(request)), ErrKind.PROTOCOL))
        if not self.initialized.is_set() and not await self.threads.run(self.initialized.wait,
                                                                      self.settings.handshake_timeout):
            await abort(context, self.info(RuntimeError("the worker is not initialized")))
        try:
            arg = self.codec.decode_connection_init(request.arg)
            state = await self.call_async(self.instance.init_connection_state.__func__, None,
                                          [arg] if self._connection_init_takes_arg else [])
        except BaseException as exc:
            if cancelled_here(exc):
                raise
            await self.fail_call(exc, context)
        conn = uuid.uuid4().hex
        with self._lock:
            self.connections[conn] = state
            self._one_ways[conn] = InOrder(self.one_way_executor, ONE_WAY_QUEUE_CALLS, ONE_WAY_QUEUE_BYTES)
            first, self._had_connection = not self._had_connection, True
        self.hooks.connection_opened()
        done = self.hold()
        try:
            yield control_pb2.ConnectionEvent(connection_id=conn)
            await done
        finally:  # it ended, the caller cancelled it, or the server stops
            self.release(done)
            with self._lock:
                order = self._one_ways.pop(conn, None)
                del self.connections[conn]
            if order is not None:
                try:
                    order.flush()  # they were acknowledged: they run, even past a number that never came
                except RuntimeError:
                    pass  # the worker is stopping: its one-way pool is shut down
            self.hooks.connection_closed(first)

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


# whether a function is ``async def``, asked of a few functions on every call: cached
is_coroutine_function: Callable[[Callable[..., Any]], bool] = functools.cache(inspect.iscoroutinefunction)


def cancelled_here(exc: BaseException) -> bool:
    """Whether ``exc`` is the running task being cancelled (its caller gone, or the server
    stopping) or the handler's generator being closed, not a failure of user code, which may
    raise ``CancelledError`` too (awaiting a task something else cancelled): that one is the
    caller's error like any other."""
    if isinstance(exc, GeneratorExit):
        return True
    if not isinstance(exc, asyncio.CancelledError):
        return False
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def when_done(context: Context, fn: Callable[[], object]) -> None:
    """Call ``fn()`` once the call ended (answered, failed or cancelled), on the event loop."""
    def callback(_: object) -> None:
        fn()

    context.add_done_callback(cast(Any, callback))  # (the stubs type the callback as a class)


def connection_id(context: Context) -> str:
    """The call's connection (``rpcpar-conn`` metadata; "" if it has none)."""
    for key, value in context.invocation_metadata() or ():
        if key == CONN_KEY:
            return str(value)
    return ""


async def _await(awaitable: Any) -> Any:
    return await awaitable


async def _with_state(awaitable: Any, state: Any) -> Any:
    CONNECTION_STATE.set(state)
    return await awaitable
