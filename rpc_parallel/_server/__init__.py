"""The server side: ``WorkerServer`` hosts one worker instance behind one gRPC server (the OCaml
"worker server"); a spawned worker process and ``Worker.serve`` both host their worker with it.

Modules import downward in this order: ``__init__`` (assembly) -> ``_control`` -> ``_pipeline``;
``_dispatch`` (the worker type's service, per kind), ``_spliced`` (large values) -> ``_core``
(the worker and its connections) -> ``_inorder``, ``_pump``, ``_threads`` -> ``_loop`` (the event loop the
``grpc.aio`` server and ``async def`` functions run on). Nothing here imports the client side.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import grpc.aio

from .._handle import WorkerHandle
from .._pki import Identity
from .._proto import control_pb2_grpc
from .._protocol import host_name
from .._schema import ServiceSpec
from .._settings import RpcSettings
from .._transport import Listener, listen, new_aio_server
from ._control import Control
from ._core import ServerHooks, WorkerCore
from ._dispatch import foreign_handlers, service_handler
from ._introspection import add_introspection
from ._loop import on_loop, on_loop_exception as on_loop_exception, run_coroutine
from ._spliced import spliced_handler

__all__ = ("ServerHooks", "WorkerServer", "on_loop_exception")

_T = TypeVar("_T")
_STOP_WAIT = 5.0  # seconds the loop may take to stop the server beyond its grace


class WorkerServer:
    """One worker instance of ``cls`` behind a gRPC server that listens on loopback (an OS-chosen
    port) or, with ``unix_socket``, on a unix socket in a fresh 0700 directory (removed on
    ``stop``), or (a remote worker) on an OS-chosen port of the interface ``host``, with mutual TLS
    when it has an ``identity``. It serves the worker type's service, ``Spliced``, ``Control``,
    gRPC health checking and server reflection;
    ``hooks`` hears of its life (init, connections, shutdown requests, background failures).

    The server is a ``grpc.aio`` server on the worker's event loop; its methods are called from
    other threads (they wait for the loop)."""

    def __init__(self, cls: type, *, worker_id: str, name: str | None, settings: RpcSettings, token: str,
                 unix_socket: bool = False, hooks: ServerHooks | None = None, host: str | None = None,
                 identity: Identity | None = None) -> None:
        self.core = core = WorkerCore(cls, worker_id=worker_id, name=name, settings=settings, token=token,
                                      hooks=hooks or ServerHooks())

        async def build() -> tuple[grpc.aio.Server, Listener]:
            server = new_aio_server(settings, token=token)
            server.add_generic_rpc_handlers((service_handler(core), spliced_handler(core), *foreign_handlers(core)))
            control_pb2_grpc.add_ControlServicer_to_server(Control(core), server)
            await add_introspection(server, core)
            return server, listen(server, unix_socket=unix_socket, host=host, identity=identity)

        self._server, self._listener = self._on_loop(build())
        self.address = self._listener.address
        self._ca = identity.ca_id if identity is not None else ""

    def _on_loop(self, coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        if on_loop(self.core.loop):
            coro.close()
            raise RuntimeError("a worker server cannot be started or stopped from its own event loop")
        return run_coroutine(coro, timeout)

    @property
    def spec(self) -> ServiceSpec:
        return self.core.spec

    def handle(self) -> WorkerHandle:
        """The handle of the worker this server hosts."""
        return dataclasses.replace(self.core.handle(self.address), ca=self._ca, host=host_name())

    def start(self) -> None:
        self._on_loop(self._server.start())

    def stop(self, grace: float | None = 0.5) -> None:
        """Stop serving (calls in progress get ``grace`` seconds) and release the threads. Held
        streams (connections, Watch) end first, normally, so they need no grace. An ``async def``
        function that holds the event loop (a blocking call in it) cannot hold up the stop for
        more than a few seconds: the server is then left to the process's exit."""
        self.core.stopping()
        try:
            self._on_loop(self._server.stop(grace), (grace or 0) + _STOP_WAIT)
        except concurrent.futures.TimeoutError:
            print(f"rpc_parallel: worker {self.core.name or self.core.worker_id}: its event loop did not answer "
                  f"within {(grace or 0) + _STOP_WAIT:.1f}s (an async def function blocking it?); stopping anyway",
                  file=sys.stderr)
        self.core.release_threads()
        self._listener.close()
