"""``Worker.serve``: worker servers hosted inside this process."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from ._handle import WorkerHandle
from ._master import master
from ._server import ServerHooks, WorkerServer
from ._settings import RpcSettings, resolve
from ._transport import at_thread_exit

__all__ = ("serve", "served_ids", "stop_all")

_SERVED: dict[str, WorkerServer] = {}
_LOCK = threading.Lock()
_hooked: list[bool] = []


class _Served(ServerHooks):
    """A served worker stops (in the background) when a client asks it to shut down."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id

    def shutdown_requested(self) -> None:
        with _LOCK:
            server = _SERVED.pop(self.worker_id, None)
        if server is not None:
            threading.Thread(target=server.stop, name="rpc_parallel-serve-stop", daemon=True).start()


def serve(cls: type, arg: Any, *, settings: RpcSettings | None, name: str | None) -> WorkerHandle:
    """Host a new worker of ``cls`` in this process and run ``init_worker_state(arg)``."""
    m = master()
    worker_id = uuid.uuid4().hex
    server = WorkerServer(cls, worker_id=worker_id, name=name, settings=resolve(settings, m.app_settings),
                          token=m.token, hooks=_Served(worker_id))
    core = server.core
    try:
        core.init_worker_state(core.codec.decode_init(core.codec.encode_init(arg)))
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


def served_ids() -> set[str]:
    """The worker ids of the workers served in this process now."""
    with _LOCK:
        return set(_SERVED)


def stop_all(keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Stop every served worker of this process but those of ``keep`` (tests and interpreter exit)."""
    with _LOCK:
        servers = [s for worker_id, s in _SERVED.items() if worker_id not in keep]
        for worker_id in [w for w in _SERVED if w not in keep]:
            del _SERVED[worker_id]
    for s in servers:
        s.stop(0)
