"""``Worker.serve``: worker servers hosted inside this process."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from ._handle import WorkerHandle
from ._master import at_thread_exit, master
from ._server import WorkerServer
from ._settings import RpcSettings, resolve

__all__ = ("serve", "stop_all")

_SERVED: dict[str, WorkerServer] = {}
_LOCK = threading.Lock()
_hooked: list[bool] = []


def serve(cls: type, arg: Any, *, settings: RpcSettings | None, name: str | None) -> WorkerHandle:
    """Host a new worker of ``cls`` in this process and run ``init_worker_state(arg)``."""
    m = master()
    worker_id = uuid.uuid4().hex
    server: WorkerServer

    def stop() -> None:
        with _LOCK:
            _SERVED.pop(worker_id, None)
        threading.Thread(target=server.stop, name="rpc_parallel-serve-stop", daemon=True).start()

    server = WorkerServer(cls, worker_id=worker_id, name=name, settings=resolve(settings, m.app_settings),
                          token=m.token, on_shutdown=stop)
    try:
        server.init_worker_state(server.codec.decode_init(server.codec.encode_init(arg)))
    except BaseException:
        server.stop(0)
        raise
    server.start()
    with _LOCK:
        if not _SERVED and not _hooked:
            _hooked.append(True)
            at_thread_exit(stop_all)  # open connection streams would otherwise block interpreter exit
        _SERVED[worker_id] = server
    return server.handle()


def stop_all() -> None:
    """Stop every served worker of this process (tests and interpreter exit)."""
    with _LOCK:
        servers = list(_SERVED.values())
        _SERVED.clear()
    for s in servers:
        s.stop(0)
