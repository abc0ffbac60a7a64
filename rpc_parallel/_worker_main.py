"""The worker process: read the config from stdin, load the worker class, serve it, redirect output,
register with the master, and exit by the shutdown policy (0 orderly, 254 on error paths).

Run as ``python -m rpc_parallel._worker_main`` or, under ``start_app``/the expert API, by the user's
own program re-executed with ``RPC_PARALLEL_WORKER`` set.
"""

from __future__ import annotations

import faulthandler
import importlib
import json
import os
import sys
import threading
import traceback
import types
from collections.abc import Iterator
from typing import Any, NoReturn

import grpc

from ._loop import on_loop_exception
from ._master import master
from ._options import ShutdownOn
from ._proto import control_pb2, master_pb2, master_pb2_grpc
from ._server import TOKEN_KEY, WorkerServer, fingerprint_messages
from ._settings import RpcSettings, grpc_options, merge
from ._spawn import WORKER_ENV, set_worker_argv

__all__ = ("main",)

EXIT_ERROR = 254


def _load_class(config: dict[str, Any]) -> type:
    main_path = config.get("main_path")
    if main_path:
        current = sys.modules.get("__main__")
        if current is not None and os.path.abspath(getattr(current, "__file__", "") or "") == main_path:
            module = current  # start_app: this program is the script itself
        else:
            # like multiprocessing's spawn: run the script as __mp_main__, so its `if __name__ ==
            # "__main__":` block does not run, and alias it as __main__ for pickle
            module = types.ModuleType("__mp_main__")
            module.__file__ = main_path
            sys.modules["__mp_main__"] = module
            sys.modules["__main__"] = module
            with open(main_path, "rb") as f:
                code = compile(f.read(), main_path, "exec")
            exec(code, module.__dict__)
    else:
        module = importlib.import_module(config["module"])
    obj: Any = module
    for part in config["class"].split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def _redirect(target: dict[str, str], fd: int, cd: str) -> None:
    mode = target.get("mode")
    if mode == "dev_null":
        new = os.open(os.devnull, os.O_WRONLY)
    else:
        path = os.path.join(cd, target["path"])
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "append" else os.O_TRUNC)
        new = os.open(path, flags, 0o644)
    os.dup2(new, fd)
    os.close(new)


def main() -> NoReturn:
    """Entry point of a spawned worker process."""
    config: dict[str, Any] = json.loads(sys.stdin.buffer.readline() or b"{}")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.environ.pop(WORKER_ENV, None)
    faulthandler.enable()
    if not config:
        print("rpc_parallel worker: no config on stdin (this command is started by rpc_parallel)", file=sys.stderr)
        os._exit(2)
    for path in reversed(config["sys_path"]):
        if path not in sys.path:
            sys.path.insert(0, path)
    set_worker_argv(config.get("worker_argv"))
    cls = _load_class(config)
    settings = merge(RpcSettings(), config["settings"])
    master_settings = merge(RpcSettings(), config["master_settings"])
    m = master()
    m.token = config["token"]
    m.app_settings = settings  # sub-workers inherit this worker's settings
    name = config.get("name")
    label = name or config["worker_id"]

    done = threading.Event()
    exit_code = [0]
    lock = threading.Lock()

    def finish(code: int) -> None:
        with lock:
            if not done.is_set():
                exit_code[0] = code
                done.set()

    channel = grpc.insecure_channel(config["master_address"], options=grpc_options(master_settings, server=False))
    master_stub = master_pb2_grpc.MasterStub(channel)
    metadata = ((TOKEN_KEY, config["token"]),)

    def fail(exc: BaseException) -> None:
        if isinstance(exc, SystemExit):  # sys.exit(n) anywhere in worker code exits the worker with n
            code = _exit_code(exc)
            print(f"rpc_parallel: worker {label}: sys.exit({exc.code!r}) called; exiting with code {code}",
                  file=sys.stderr)
            finish(code)
            return
        print(f"rpc_parallel: worker {label} failed after a function returned; shutting down (exit 254):",
              file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)
        try:
            master_stub.ReportFailure(master_pb2.FailureReport(
                worker_id=config["worker_id"], worker_name=name or "", type=type(exc).__qualname__,
                message=str(exc), traceback="".join(traceback.format_exception(exc))), metadata=metadata, timeout=5)
        except grpc.RpcError:
            pass
        finish(EXIT_ERROR)

    server = WorkerServer(cls, worker_id=config["worker_id"], name=name, settings=settings, token=config["token"],
                          unix_socket=bool(config.get("unix_socket")), on_background_failure=fail,
                          on_shutdown=lambda: finish(0))
    threading.excepthook = lambda args: fail(args.exc_value) if args.exc_value is not None else None
    on_loop_exception(fail)
    server.start()
    cd = config["cd"]
    os.chdir(cd)  # first: a bad cd fails while stderr is still relayed
    if config["redirect"]:
        sys.stdout.flush()
        sys.stderr.flush()
        _redirect(config["redirect_stdout"], 1, cd)
        _redirect(config["redirect_stderr"], 2, cd)
    if config["umask"] is not None:
        os.umask(config["umask"])

    connection_timeout = float(config["connection_timeout"])
    opened = threading.Event()
    init_arrived = threading.Event()

    def no_init() -> None:
        if not init_arrived.is_set():  # an init that arrived may take as long as it takes
            print(f"rpc_parallel: worker {label}: no init within {connection_timeout}s; shutting down",
                  file=sys.stderr)
            finish(EXIT_ERROR)

    def heartbeat(policy: ShutdownOn, call: Iterator[master_pb2.HeartbeatReply]) -> None:
        try:
            for _ in call:
                pass
        except grpc.RpcError:
            pass
        if policy is ShutdownOn.CONNECTION_CLOSED and opened.is_set():
            return  # from now on the first connection decides
        if policy is ShutdownOn.CALLED_SHUTDOWN_FUNCTION and server.initialized.is_set():
            return  # initialized: it outlives its master from now on
        print(f"rpc_parallel: worker {label}: lost the heartbeat connection to the master; shutting down",
              file=sys.stderr)
        finish(EXIT_ERROR)

    def on_init(request: control_pb2.InitWorkerRequest) -> None:
        init_arrived.set()
        policy = ShutdownOn(request.shutdown_on)
        call = master_stub.Heartbeat(master_pb2.HeartbeatRequest(worker_id=config["worker_id"]), metadata=metadata)
        if policy is ShutdownOn.CALLED_SHUTDOWN_FUNCTION:
            # only until init returns: a master that dies during init never got a handle to this worker
            server.on_initialized = call.cancel
        threading.Thread(target=heartbeat, args=(policy, call), name="rpc_parallel-heartbeat", daemon=True).start()
        if policy is ShutdownOn.CONNECTION_CLOSED:
            server.on_connection_opened = opened.set
            server.on_connection_closed = lambda first: finish(0) if first else None
            wait = request.connection_timeout or connection_timeout

            def no_connection() -> None:
                if not opened.is_set():
                    print(f"rpc_parallel: worker {label}: no connection within {wait}s; shutting down",
                          file=sys.stderr)
                    finish(EXIT_ERROR)

            # counted from the end of init: the spawner connects only after init returned
            server.on_initialized = lambda: _timer(wait, no_connection)

    server.on_init = on_init
    server.on_init_failed = lambda: finish(EXIT_ERROR)
    # register last: the master sends InitWorker as soon as it has the registration, so the
    # redirects, cd, umask and the on_init hook (which starts the heartbeat) must be in place
    spec = server.spec
    reply = master_stub.Register(master_pb2.RegisterRequest(
        worker_id=config["worker_id"], address=server.address, pid=os.getpid(), fingerprint=spec.fingerprint,
        functions=fingerprint_messages(spec)),
        metadata=metadata, timeout=config["connection_timeout"], wait_for_ready=True)
    if not reply.proceed:
        print(f"rpc_parallel: worker {label}: the master refused the registration: {reply.reason}", file=sys.stderr)
        os._exit(1)

    _timer(connection_timeout, no_init)
    done.wait()
    server.stop(0.2)
    channel.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code[0])


def _exit_code(exc: SystemExit) -> int:
    """The process exit code ``sys.exit(exc.code)`` gives (None: 0; a message: printed, 1)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _timer(seconds: float, fn: Any) -> None:
    t = threading.Timer(seconds, fn)
    t.daemon = True
    t.start()


if __name__ == "__main__":
    main()
