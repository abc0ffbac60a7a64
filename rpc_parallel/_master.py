"""Master state: the process-wide token, app settings, the lazily started master server
(registration, failure reports, heartbeats) and the records of the workers this process spawned.
"""

from __future__ import annotations

import os
import queue
import secrets
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc

from ._errors import WorkerFailedError
from ._proto import master_pb2, master_pb2_grpc
from ._protocol import code_differences
from ._schema import differing_functions
from ._settings import RpcSettings, resolve
from ._transport import at_thread_exit, listen, new_server

__all__ = ("Master", "WorkerRecord", "master")

TOKEN_ENV = "RPC_PARALLEL_TOKEN"


@dataclass
class WorkerRecord:
    """What the master knows of one spawned worker."""

    worker_id: str
    name: str | None
    expected_fingerprint: str
    expected_functions: dict[str, str]
    on_failure: Callable[[BaseException], None]
    registered: threading.Event = field(default_factory=threading.Event)
    address: str = ""
    pid: int = 0
    rejected: str = ""
    expected_code: dict[str, str] | None = None  # None: check_code=False
    gave_up: bool = False
    failed: bool = False  # on_failure was called
    expected_exit: bool = False
    shutdown_requested: bool = False  # by handle.shutdown() in this process
    outlives_master: bool = False  # CALLED_SHUTDOWN_FUNCTION

    @property
    def label(self) -> str:
        return self.name or self.worker_id

    @property
    def short_label(self) -> str:
        """The prefix of relayed output: the name, or the id's first 8 characters."""
        return self.name or self.worker_id[:8]


class Master:
    """Process-global master state; ``master()`` returns the one instance."""

    def __init__(self) -> None:
        self.token = os.environ.get(TOKEN_ENV) or secrets.token_hex(16)
        os.environ.pop(TOKEN_ENV, None)
        self.app_settings: RpcSettings | None = None
        self.workers: dict[str, WorkerRecord] = {}
        self._server: grpc.Server | None = None
        self.address = ""
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._failures: queue.SimpleQueue[tuple[Callable[[BaseException], None], BaseException]] = queue.SimpleQueue()
        self._failure_thread: threading.Thread | None = None

    @property
    def settings(self) -> RpcSettings:
        """The app settings with the env override applied."""
        return resolve(None, self.app_settings)

    def ensure_server(self) -> str:
        """Start the master server on first use; return its address."""
        with self._lock:
            if self._server is None:
                server = new_server(self.settings, ThreadPoolExecutor(max_workers=256,
                                                                      thread_name_prefix="rpc_parallel-master"),
                                    token=self.token)
                master_pb2_grpc.add_MasterServicer_to_server(_MasterServicer(self), server)
                self.address = listen(server).address
                server.start()
                self._server = server
                at_thread_exit(self.stop_server)
            return self.address

    def stop_server(self) -> None:
        """Stop the master server: open heartbeat streams end, so HEARTBEATER_TIMEOUT workers exit.

        Workers that must not outlive this master are also sent SIGCONT: a stopped one could not
        notice the master is gone until continued.
        """
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.stop(0).wait()
        for record in list(self.workers.values()):
            if record.pid and not record.outlives_master:
                try:
                    os.kill(record.pid, signal.SIGCONT)
                except OSError:
                    pass

    def report_failure(self, record: WorkerRecord, exc: BaseException) -> None:
        """Call ``record.on_failure(exc)`` once per worker, on the master's failure thread."""
        with self._lock:
            if record.failed:
                return
            record.failed = True
            if self._failure_thread is None:
                self._failure_thread = threading.Thread(target=self._run_failures, name="rpc_parallel-on_failure",
                                                        daemon=True)
                self._failure_thread.start()
        self._failures.put((record.on_failure, exc))

    def _run_failures(self) -> None:
        while True:
            callback, exc = self._failures.get()
            try:
                callback(exc)
            except Exception:
                traceback.print_exc()


class _MasterServicer(master_pb2_grpc.MasterServicer):
    def __init__(self, m: Master) -> None:
        self._m = m

    def Register(self, request: master_pb2.RegisterRequest, context: grpc.ServicerContext) -> master_pb2.RegisterReply:
        record = self._m.workers.get(request.worker_id)
        if record is None or record.gave_up:
            return master_pb2.RegisterReply(proceed=False, reason="the master gave up on this worker")
        if request.fingerprint != record.expected_fingerprint:
            differ = differing_functions(record.expected_functions,
                                         {f.name: f.fingerprint for f in request.functions})
            record.rejected = (
                f"worker {record.label} runs a different version of its worker type "
                f"(fingerprint {request.fingerprint}, master expects {record.expected_fingerprint}); "
                f"functions that differ: {', '.join(differ) or 'init arguments'}")
            record.registered.set()
            return master_pb2.RegisterReply(proceed=False, reason=record.rejected)
        differ = code_differences(record.expected_code, dict(request.code)) if record.expected_code else []
        if differ:
            record.rejected = (f"worker {record.label} does not run the master's code: {'; '.join(differ)} "
                               "(spawn with check_code=False to skip this check)")
            record.registered.set()
            return master_pb2.RegisterReply(proceed=False, reason=record.rejected)
        record.address = request.address
        record.pid = request.pid
        record.registered.set()
        return master_pb2.RegisterReply(proceed=True)

    def ReportFailure(self, request: master_pb2.FailureReport, context: grpc.ServicerContext) -> master_pb2.FailureAck:
        record = self._m.workers.get(request.worker_id)
        if record is not None:
            text = f"worker {record.label} failed after a function returned: {request.type}: {request.message}"
            self._m.report_failure(record, WorkerFailedError(
                text, worker_id=record.worker_id, worker_name=record.name, remote_traceback=request.traceback))
        return master_pb2.FailureAck()

    def Heartbeat(self, request: master_pb2.HeartbeatRequest, context: grpc.ServicerContext
                  ) -> Iterator[master_pb2.HeartbeatReply]:
        done = threading.Event()
        context.add_callback(done.set)
        yield master_pb2.HeartbeatReply()
        while not done.wait(3600):
            pass


_MASTER: Master | None = None
_MASTER_LOCK = threading.Lock()


def master() -> Master:
    """The process's master state (created on first use)."""
    global _MASTER
    with _MASTER_LOCK:
        if _MASTER is None:
            _MASTER = Master()
        return _MASTER


def set_app_settings(settings: RpcSettings | None) -> None:
    master().app_settings = settings


def any_master() -> Master | None:
    """The master state if this process created one (without creating it)."""
    return _MASTER
