"""Master state: the process-wide token, app settings, the lazily started master server
(registration, failure reports, heartbeats), the records of the workers this process spawned and,
for remote workers, the servers on outward interfaces and the certificates of mutual TLS.
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

from ._errors import SpawnError, WorkerFailedError
from ._options import Tls
from ._pki import Authority, Identity, name_in_cert, read_pem
from ._proto import master_pb2, master_pb2_grpc
from ._protocol import code_differences
from ._schema import differing_functions
from ._settings import RpcSettings, resolve
from ._transport import at_thread_exit, hold, listen, new_server, split_host_port

__all__ = ("Master", "WorkerRecord", "master")

TOKEN_ENV = "RPC_PARALLEL_TOKEN"
LISTEN_ENV = "RPC_PARALLEL_LISTEN"


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
    remote: bool = False  # started by a remote launcher: its pid is not one of this machine's
    host: str = ""

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
        self.listen: str | None = os.environ.get(LISTEN_ENV) or None  # start_app(listen=) sets it too
        self._outward: dict[tuple[str, int], tuple[grpc.Server, str, str]] = {}  # (host, port) -> server, address, CA
        self._exit_hooked = False
        self._authority: Authority | None = None
        self._identities: dict[object, Identity] = {}  # True (the ephemeral CA) or an rp.Tls -> the master's
        self._lock = threading.Lock()
        self.stopping = threading.Event()  # set when the master server stops (the process exits)
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
                server = self._new_server()
                self.address = listen(server).address
                server.start()
                self._hook_exit()
                self._server = server
            return self.address

    def ports(self) -> set[int]:
        """The ports the master's servers listen on (loopback, and outward for remote workers)."""
        with self._lock:
            addresses = [self.address, *(a for _, a, _ in self._outward.values())]
        return {int(a.rsplit(":", 1)[1]) for a in addresses if a}

    def _hook_exit(self) -> None:
        if not self._exit_hooked:
            self._exit_hooked = True
            at_thread_exit(self.stop_server)

    def _new_server(self) -> grpc.Server:
        server = new_server(self.settings, ThreadPoolExecutor(max_workers=256, thread_name_prefix="rpc_parallel-master"),
                            token=self.token)
        master_pb2_grpc.add_MasterServicer_to_server(_MasterServicer(self), server)
        return server

    def outward_address(self, route: Callable[[], str], identity: Identity | None) -> str:
        """The address of a master server that workers on another machine reach: on ``self.listen``
        (``HOST[:PORT]``) if set, else on ``route()`` (our interface that reaches their host),
        serving mutual TLS with ``identity`` or, with None, plaintext. Started on first use. A
        wildcard ``listen`` (``0.0.0.0``, ``::``) binds every interface and advertises ``route()``."""
        try:
            host, port = split_host_port(self.listen) if self.listen else (route(), 0)
        except ValueError:
            raise SpawnError(f"the master's listen address {self.listen!r} ({LISTEN_ENV} or rp.start_app(listen=)) "
                             "is not HOST, HOST:PORT or [V6]:PORT") from None
        advertised = route() if host in ("0.0.0.0", "::") else host
        ca = identity.ca_id if identity is not None else ""
        with self._lock:
            for (h, p), (_, address, served_ca) in self._outward.items():
                if h == host and (p == port or not port) and served_ca == ca and address.startswith(advertised):
                    return address
            if port and (host, port) in self._outward:
                raise SpawnError(f"the master already listens on {host}:{port} (rp.start_app(listen=) or "
                                 f"{LISTEN_ENV}) for workers of {'another' if ca else 'a'} TLS set-up: spawn every "
                                 "remote worker with the same tls=, or leave the port out")
            server = self._new_server()
            try:
                bound = listen(server, host=host, port=port, identity=identity).address
            except (OSError, RuntimeError) as exc:
                raise SpawnError(f"the master could not listen on {host}:{port or '(any port)'} for remote workers: "
                                 f"{exc}") from exc
            server.start()
            got = int(bound.rsplit(":", 1)[1])
            address = f"[{advertised}]:{got}" if ":" in advertised else f"{advertised}:{got}"
            self._outward[(host, port or got)] = (server, address, ca)
            self._hook_exit()
            return address

    def identity(self, tls: Tls | bool) -> Identity | None:
        """The master's own identity for ``tls`` (a launcher's): from its ephemeral CA (made on
        first use) for True, read from the files of an ``rp.Tls``; None for False. It is held for
        this process's channels too."""
        if tls is False:
            return None
        with self._lock:
            found = self._identities.get(tls)
            if found is None:
                if isinstance(tls, Tls):
                    cert = read_pem(tls.cert, "cert")
                    found = Identity(ca=read_pem(tls.ca, "ca"), cert=cert, key=read_pem(tls.key, "key"),
                                     server_name=tls.server_name or name_in_cert(cert))
                else:
                    if self._authority is None:
                        self._authority = Authority()
                    found = self._authority.issue("rpc_parallel master")
                self._identities[tls] = found
                hold(found)
            return found

    def issue(self, tls: Tls | bool, worker_id: str) -> Identity | None:
        """A worker's identity for ``tls``: a certificate of its own from the ephemeral CA, or the
        ``rp.Tls`` identity shared by the master and its workers; None for False."""
        own = self.identity(tls)
        if own is None or isinstance(tls, Tls):
            return own
        assert self._authority is not None
        return self._authority.issue(f"rpc_parallel worker {worker_id}")

    def identity_of(self, ca: str, worker_id: str) -> Identity | None:
        """A worker's identity from the CA whose id is ``ca``, if this master uses that CA."""
        with self._lock:
            kinds = [tls for tls, own in self._identities.items() if own.ca_id == ca]
        return self.issue(kinds[0], worker_id) if kinds else None  # type: ignore[arg-type]

    def worker_identities(self, worker_id: str) -> list[Identity]:
        """An identity from each CA this master uses, for a worker (local or remote) to reach the
        TLS servers of the others."""
        with self._lock:
            kinds = list(self._identities)
        found = [self.issue(tls, worker_id) for tls in kinds]  # type: ignore[arg-type]
        return [i for i in found if i is not None]

    def stop_server(self) -> None:
        """Stop the master server: open heartbeat streams end, so HEARTBEATER_TIMEOUT workers exit.

        Workers that must not outlive this master are also sent SIGCONT: a stopped one could not
        notice the master is gone until continued.
        """
        self.stopping.set()
        with self._lock:
            servers = [s for s in (self._server,) if s is not None] + [s for s, _, _ in self._outward.values()]
            self._server = None
            self._outward.clear()
        for server in servers:
            server.stop(0).wait()
        for record in list(self.workers.values()):
            if record.pid and not record.outlives_master and not record.remote:
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
        record.host = request.host
        record.registered.set()
        return master_pb2.RegisterReply(proceed=True)

    def ReportFailure(self, request: master_pb2.FailureReport, context: grpc.ServicerContext) -> master_pb2.FailureAck:
        record = self._m.workers.get(request.worker_id)
        if record is not None:
            text = f"worker {record.label} failed after a function returned: {request.type}: {request.message}"
            self._m.report_failure(record, WorkerFailedError(
                text, worker_id=record.worker_id, worker_name=record.name, remote_traceback=request.traceback))
        return master_pb2.FailureAck()

    def Identity(self, request: master_pb2.IdentityRequest, context: grpc.ServicerContext) -> master_pb2.IdentityReply:
        found = self._m.identity_of(request.ca, request.worker_id) if request.worker_id in self._m.workers else None
        if found is None:
            return master_pb2.IdentityReply(found=False)
        return master_pb2.IdentityReply(found=True, **found.to_json())

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
