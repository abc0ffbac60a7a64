"""The worker process: read the config from stdin, load the worker class, serve it, redirect output,
register with the master, and exit by the shutdown policy (0 orderly, 254 on error paths).

``main`` runs as ``python -m rpc_parallel._worker_main`` (that module only calls it) or, under
``start_app``/the expert API, in the user's own program re-executed with ``RPC_PARALLEL_WORKER`` set.
"""

from __future__ import annotations

import base64
import faulthandler
import importlib
import io
import json
import os
import runpy
import sys
import threading
import traceback
import types
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc

from ._errors import SpawnError
from ._launch import unseal
from ._master import master
from ._options import ShutdownOn
from ._pki import Identity
from ._proto import control_pb2, master_pb2, master_pb2_grpc
from ._protocol import SPAWN_ERROR_MARKER, TOKEN_KEY, code_facts, fingerprint_messages, host_name
from ._server import ServerHooks, WorkerServer, on_loop_exception
from ._settings import RpcSettings, merge
from ._spawn import WORKER_ENV, importing, set_worker_argv
from ._transport import hold, install_identity_source, open_channel, route_source, split_host_port

__all__ = ("main",)

EXIT_ERROR = 254


def main() -> NoReturn:
    """Entry point of a spawned worker process."""
    try:
        config: dict[str, Any] = json.loads(unseal(sys.stdin.buffer.readline()) or b"{}")
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"rpc_parallel worker: cannot read the config on stdin: {exc}", file=sys.stderr)
        os._exit(2)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.environ.pop(WORKER_ENV, None)
    faulthandler.enable()
    if not config:
        print("rpc_parallel worker: no config on stdin (this command is started by rpc_parallel)", file=sys.stderr)
        os._exit(2)
    os.environ.update(config.get("env") or {})  # a remote worker's env= (a local one has it already)
    for identity in config.get("identities") or ():
        hold(Identity.from_json(identity))
    for path in reversed(config["sys_path"]):
        if path not in sys.path:
            sys.path.insert(0, path)
    set_worker_argv(config.get("worker_argv"))
    try:
        cls = _load_class(config)
    except SpawnError as exc:  # a spawn reached on import: say why on stderr, where the master reads it
        traceback.print_exc()
        print(SPAWN_ERROR_MARKER + json.dumps(str(exc)), file=sys.stderr, flush=True)
        os._exit(1)
    os._exit(WorkerProcess(config, cls).run())


class WorkerProcess(ServerHooks):
    """One spawned worker: its server, its master and the policy that ends it (``run`` returns
    the exit code). As its server's hooks, it hears of init, connections and failures."""

    def __init__(self, config: dict[str, Any], cls: type) -> None:
        self.config = config
        self.worker_id: str = config["worker_id"]
        self.name: str | None = config.get("name")
        self.label = self.name or self.worker_id
        self.connection_timeout = float(config["connection_timeout"])
        settings = merge(RpcSettings(), config["settings"])
        m = master()
        m.token = config["token"]
        m.app_settings = settings  # sub-workers inherit this worker's settings
        self._metadata = ((TOKEN_KEY, config["token"]),)
        identity = Identity.from_json(config["tls"]) if config.get("tls") else None
        if identity is not None:
            hold(identity)
        self._channel = open_channel(config["master_address"], merge(RpcSettings(), config["master_settings"]),
                                     ca=config.get("master_ca") or "")
        self._master = master_pb2_grpc.MasterStub(self._channel)
        install_identity_source(self._identity_from_master)
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._exit_code = 0
        self._policy = ShutdownOn.HEARTBEATER_TIMEOUT
        self._connection_wait = self.connection_timeout  # CONNECTION_CLOSED: for the first connection
        self._init_arrived = threading.Event()
        self._opened = threading.Event()
        self._heartbeat: Any = None  # the Master/Heartbeat call, once init arrived
        # a remote worker serves on the interface that reaches its master, where others reach it too
        host = route_source(split_host_port(config["master_address"])[0]) if config.get("bind") == "route" else None
        self.server = WorkerServer(cls, worker_id=self.worker_id, name=self.name, settings=settings,
                                   token=config["token"], unix_socket=bool(config.get("unix_socket")), hooks=self,
                                   host=host, identity=identity)

    def run(self) -> int:
        """Serve until the shutdown policy ends the worker; the process's exit code."""
        threading.excepthook = lambda args: self.fail(args.exc_value) if args.exc_value is not None else None
        on_loop_exception(self.fail)
        self.server.start()
        self._settle()
        # register last: the master sends InitWorker as soon as it has the registration, so the
        # redirects, cd and umask must be in place, and these hooks ready to start the heartbeat
        self._register()
        _timer(self.connection_timeout, self._no_init)
        self._done.wait()
        self.server.stop(0.2)
        self._channel.close()
        sys.stdout.flush()
        sys.stderr.flush()
        return self._exit_code

    def _settle(self) -> None:
        """Move to the spawn's ``cd``, redirect stdout/stderr, set the umask."""
        config = self.config
        cd = config["cd"]
        os.chdir(cd)  # first: a bad cd fails while stderr is still relayed
        if config["redirect"]:
            sys.stdout.flush()
            sys.stderr.flush()
            _redirect(config["redirect_stdout"], 1, cd)
            _redirect(config["redirect_stderr"], 2, cd)
        if config["umask"] is not None:
            os.umask(config["umask"])

    def _register(self) -> None:
        spec = self.server.spec
        module = self.config["module"]
        path = getattr(sys.modules.get(module), "__file__", None) if module != "__main__" else None
        code = code_facts(module if path else None, os.path.abspath(path) if path else None)
        try:
            reply = self._master.Register(master_pb2.RegisterRequest(
                worker_id=self.worker_id, address=self.server.address, pid=os.getpid(),
                fingerprint=spec.fingerprint, functions=fingerprint_messages(spec), code=code, host=host_name()),
                metadata=self._metadata, timeout=self.connection_timeout, wait_for_ready=True)
        except grpc.RpcError as exc:  # say it where the master reads it: a SpawnError there
            why = (f"could not reach the master at {self.config['master_address']} within connection_timeout "
                   f"{self.connection_timeout}s ({exc.code().name}: is a firewall in the way, or is the master's "
                   "listen address one this host cannot reach? see rp.start_app(listen=))")
            print(SPAWN_ERROR_MARKER + json.dumps(why), file=sys.stderr, flush=True)
            os._exit(1)
        if not reply.proceed:
            print(f"rpc_parallel: worker {self.label}: the master refused the registration: {reply.reason}",
                  file=sys.stderr)
            os._exit(1)

    def _identity_from_master(self, ca: str) -> Identity | None:
        """An identity from the CA ``ca``, if the master has one for this worker."""
        try:
            reply = self._master.Identity(master_pb2.IdentityRequest(worker_id=self.worker_id, ca=ca),
                                          metadata=self._metadata, timeout=self.connection_timeout)
        except grpc.RpcError:
            return None  # the master is gone or unreachable: no identity
        if not reply.found:
            return None
        return Identity(ca=reply.ca.encode(), cert=reply.cert.encode(), key=reply.key.encode(),
                        server_name=reply.server_name)

    def finish(self, code: int) -> None:
        """End the worker with exit code ``code`` (the first call wins)."""
        with self._lock:
            if not self._done.is_set():
                self._exit_code = code
                self._done.set()

    def fail(self, exc: BaseException) -> None:
        """A failure nobody awaits: tell the master and exit 254; ``sys.exit(n)`` exits with n."""
        if isinstance(exc, SystemExit):  # sys.exit(n) anywhere in worker code exits the worker with n
            code = _exit_code(exc)
            print(f"rpc_parallel: worker {self.label}: sys.exit({exc.code!r}) called; exiting with code {code}",
                  file=sys.stderr)
            self.finish(code)
            return
        print(f"rpc_parallel: worker {self.label} failed after a function returned; shutting down (exit 254):",
              file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)
        try:
            self._master.ReportFailure(master_pb2.FailureReport(
                worker_id=self.worker_id, worker_name=self.name or "", type=type(exc).__qualname__,
                message=str(exc), traceback="".join(traceback.format_exception(exc))),
                metadata=self._metadata, timeout=5)
        except grpc.RpcError:
            pass  # the master is gone: nobody to tell
        self.finish(EXIT_ERROR)

    def _shut_down(self, why: str) -> None:
        print(f"rpc_parallel: worker {self.label}: {why}; shutting down", file=sys.stderr)
        self.finish(EXIT_ERROR)

    def _no_init(self) -> None:
        if not self._init_arrived.is_set():  # an init that arrived may take as long as it takes
            self._shut_down(f"no init within {self.connection_timeout}s")

    def _watch_master(self, call: Iterator[master_pb2.HeartbeatReply]) -> None:
        try:
            for _ in call:
                pass
        except grpc.RpcError:
            pass  # the heartbeat connection dropped: the policy says what that means
        if self._policy is ShutdownOn.CONNECTION_CLOSED and self._opened.is_set():
            return  # from now on the first connection decides
        if self._policy is ShutdownOn.CALLED_SHUTDOWN_FUNCTION and self.server.core.initialized.is_set():
            return  # initialized: it outlives its master from now on
        if not self._done.is_set():  # (the worker ending for another reason closes it too)
            self._shut_down("lost the heartbeat connection to the master")

    # -- server hooks --------------------------------------------------------------------------

    def init_arrived(self, request: control_pb2.InitWorkerRequest) -> None:
        self._policy = ShutdownOn(request.shutdown_on)
        self._connection_wait = request.connection_timeout or self.connection_timeout
        self._init_arrived.set()
        self._heartbeat = self._master.Heartbeat(master_pb2.HeartbeatRequest(worker_id=self.worker_id),
                                                 metadata=self._metadata)
        threading.Thread(target=self._watch_master, args=(self._heartbeat,), name="rpc_parallel-heartbeat",
                         daemon=True).start()

    def initialized(self) -> None:
        if self._policy is ShutdownOn.CALLED_SHUTDOWN_FUNCTION:
            # only until init returns: a master that dies during init never got a handle to this worker
            self._heartbeat.cancel()
        elif self._policy is ShutdownOn.CONNECTION_CLOSED:
            wait = self._connection_wait

            def no_connection() -> None:
                if not self._opened.is_set():
                    self._shut_down(f"no connection within {wait}s")

            _timer(wait, no_connection)  # counted from the end of init: the spawner connects only then

    def init_failed(self) -> None:
        self.finish(EXIT_ERROR)

    def connection_opened(self) -> None:
        self._opened.set()

    def connection_closed(self, first: bool) -> None:
        if self._policy is ShutdownOn.CONNECTION_CLOSED and first:
            self.finish(0)

    def shutdown_requested(self) -> None:
        self.finish(0)

    def background_failure(self, exc: BaseException, worker: str) -> None:
        self.fail(exc)

    def system_exit(self, exc: SystemExit) -> bool:
        self.fail(exc)
        return True


def _load_class(config: dict[str, Any]) -> type:
    """The worker type: the master's main module first (as multiprocessing's spawn loads it, so what
    it defines unpickles here), then the module declaring the class. Spawns are refused meanwhile."""
    code = config.get("main_code")
    _load_main(config.get("main_path"), config.get("main_name"), base64.b64decode(code) if code else None)
    name = config["module"]
    with importing(f"module {name}"):
        module = sys.modules["__main__"] if name == "__main__" else importlib.import_module(name)
    obj: Any = module
    for part in config["class"].split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def _load_main(path: str | None, name: str | None, source: bytes | None = None) -> None:
    """Load the master's main module as ``__mp_main__``, aliased ``__main__`` (its ``if __name__ ==
    "__main__":`` block does not run): the script at ``path`` (its ``source`` as the master started
    from it, when given), or the module ``name`` (``python -m``)."""
    current = sys.modules.get("__main__")
    if path is not None:
        if current is not None and os.path.abspath(getattr(current, "__file__", "") or "") == path:
            return  # start_app: this program is the script itself
        module = types.ModuleType("__mp_main__")
        module.__file__ = path
        sys.modules["__mp_main__"] = module
        sys.modules["__main__"] = module
        if source is None:
            with open(path, "rb") as f:
                source = f.read()
        code = compile(source, path, "exec")
        with importing(f"the main script {path}"):
            exec(code, module.__dict__)
    elif name is not None:
        if getattr(getattr(current, "__spec__", None), "name", None) == name:
            return  # start_app under python -m: this program is that module
        module = types.ModuleType("__mp_main__")
        with importing(f"the main module {name}"):
            module.__dict__.update(runpy.run_module(name, run_name="__mp_main__", alter_sys=True))
        sys.modules["__mp_main__"] = module
        sys.modules["__main__"] = module


class _Relayed(io.RawIOBase):
    """A relayed stdout or stderr (``fd``): the pipe the master reads. Once the master has gone (a
    worker may outlive it), writes go to /dev/null instead of raising ``BrokenPipeError``."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, data: Any) -> int:
        try:
            return os.write(self._fd, data)
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._fd)
            os.close(devnull)
            return len(data)


def _redirect(target: dict[str, str], fd: int, cd: str) -> None:
    """Point ``fd`` (1 or 2) where the spawn said; a relayed one stays the pipe the master reads, line
    buffered so that each line reaches the master as it is printed."""
    mode = target.get("mode")
    if mode == "relay":
        old = sys.stdout if fd == 1 else sys.stderr
        new_stream = io.TextIOWrapper(io.BufferedWriter(_Relayed(fd)), encoding=getattr(old, "encoding", "utf-8"),
                                      errors=getattr(old, "errors", "strict"), line_buffering=True)
        if fd == 1:
            sys.stdout = new_stream
        else:
            sys.stderr = new_stream
        return
    if mode == "dev_null":
        new = os.open(os.devnull, os.O_WRONLY)
    else:
        path = os.path.join(cd, target["path"])
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "append" else os.O_TRUNC)
        new = os.open(path, flags, 0o644)
    os.dup2(new, fd)
    os.close(new)


def _exit_code(exc: SystemExit) -> int:
    """The process exit code ``sys.exit(exc.code)`` gives (None: 0; a message: printed, 1)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _timer(seconds: float, fn: Callable[[], None]) -> None:
    t = threading.Timer(seconds, fn)
    t.daemon = True
    t.start()
