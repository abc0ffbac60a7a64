"""Starting worker processes: command line, config on stdin, stderr relay until registration,
the registration and init handshake under ``spawn_timeout``, and the reaper that reports crashes.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

from ._codec import codec_for
from ._deadline import expired, remaining
from ._declaration import interactive_declaration, main_script, main_source
from ._errors import (
    DeclarationError,
    ProtocolError,
    SpawnError,
    SpawnTimeoutError,
    WorkerConnectionError,
    WorkerCrashedError,
)
from ._forkserver import ForkedProcess, fork_server
from ._handle import WorkerHandle
from ._launch import launch, launcher_name, reach_host, seal, stop_remote
from ._master import Master, WorkerRecord, master
from ._options import (
    DEV_NULL,
    LOCAL,
    LOG_FAILURE,
    RELAY,
    FileAppend,
    FileTruncate,
    How,
    Local,
    Redirect,
    Remote,
    ShutdownOn,
    Slurm,
    Ssh,
    check_on_failure,
    redirect_to_json,
)
from ._protocol import SPAWN_ERROR_MARKER, code_facts
from ._schema import MAIN_MODULES, service_spec
from ._settings import RpcSettings, resolve
from ._supervision import GONE, init_worker, probe, watch
from ._transport import route_source, socket_dir_of

__all__ = ("WORKER_ENV", "spawn_worker")

WORKER_ENV = "RPC_PARALLEL_WORKER"
_TERM_GRACE = 2.0
_DEATH_GRACE = 5.0  # for a worker whose init failed to exit (it is then reported as crashed)

Process = subprocess.Popen[bytes] | ForkedProcess

# How spawned workers start: None = `python -m rpc_parallel._worker_main`; start_app and the expert
# API set the argv that re-executes this program in worker mode instead.
_worker_argv: list[str] | None = None


def set_worker_argv(argv: list[str] | None) -> None:
    global _worker_argv
    _worker_argv = argv


# What this process, a worker, is importing to find its worker type, while it does: a spawn reached
# then comes from code that runs on import (a script without its `if __name__ == "__main__":`
# guard), and would start a worker that imports the same code and spawns again, without end.
_importing: str | None = None


@contextlib.contextmanager
def importing(what: str) -> Iterator[None]:
    """Mark the block as this worker process importing ``what`` (spawns are refused meanwhile)."""
    global _importing
    _importing = what
    try:
        yield
    finally:
        _importing = None


def _refuse_spawn_on_import(cls: type) -> None:
    what = _importing or ("its program" if os.environ.get(WORKER_ENV) else None)
    if what is not None:
        raise SpawnError(
            f"{cls.__qualname__}.spawn() was reached while this worker process was importing {what} to find its "
            "worker type: code that spawns workers must not run on import, or each worker would spawn the next. "
            "Put it under `if __name__ == \"__main__\":` (or in the main() that rp.start_app runs)")


def _class_location(cls: type) -> dict[str, Any]:
    """How the worker process finds ``cls``: the module to import (``__main__``: the master's main
    module, which the worker loads as multiprocessing's spawn does), and how to load that main
    module (``main_path``: run a script; ``main_name``: run a module, as ``python -m``)."""
    name, path = main_source()
    location: dict[str, Any] = {"module": cls.__module__, "main_path": path, "main_name": None}
    source = main_script(path) if path is not None else None
    if source is not None:  # as it was when we started: the file may have changed or gone since
        location["main_code"] = base64.b64encode(source).decode()
    # run as python -m NAME; like multiprocessing, not a package's __main__ (its code is all main)
    if name and name not in MAIN_MODULES and not name.endswith(".__main__") and not name.startswith("rpc_parallel."):
        location["main_name"] = name
    if cls.__module__ in MAIN_MODULES:
        if location["main_path"] is None and location["main_name"] is None:
            raise DeclarationError(interactive_declaration(cls))
        location["module"] = "__main__"
    return location


_CODE: dict[str, dict[str, str]] = {}  # module -> its code facts, taken at its first spawn


def _master_code(cls: type) -> dict[str, str]:
    """The code a worker of ``cls`` must run (``code_facts``): its module's source as it was at
    this master's first spawn of it (the main script is sent to the worker as it is, so only the
    versions are compared for it)."""
    module = cls.__module__
    if module not in _CODE:
        mod = sys.modules.get(module)
        path = getattr(mod, "__file__", None) if module not in MAIN_MODULES else None
        _CODE[module] = code_facts(module if path else None, os.path.abspath(path) if path else None)
    return _CODE[module]


def _sys_path(remote: bool) -> list[str]:
    """This process's ``sys.path``, absolute; for a remote worker without the interpreter's own
    directories (the remote interpreter has its own)."""
    paths = [os.path.abspath(p) if p else os.getcwd() for p in sys.path]
    if remote:
        own = {os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
        paths = [p for p in paths if not any(p == o or p.startswith(o + os.sep) for o in own)]
    return paths


def _outward(m: Master, how: Remote, worker_id: str) -> dict[str, Any]:
    """What a remote worker's config adds: the master's address it can reach, the CA the master's
    server there is known by, and the worker's own identity."""
    own = m.identity(how.tls)

    def route() -> str:
        try:
            return route_source(reach_host(how))
        except OSError as exc:
            raise SpawnError(f"could not find the address at which workers started by {how!r} would reach this "
                             f"master ({exc}); set it with rp.start_app(listen=) or RPC_PARALLEL_LISTEN") from exc

    worker = m.issue(how.tls, worker_id)
    return {"master_address": m.outward_address(route, own), "master_ca": own.ca_id if own else "",
            "tls": worker.to_json() if worker else None, "bind": "route"}


def spawn_worker(cls: type, arg: Any, *, shutdown_on: ShutdownOn, foreground: bool,
                 on_failure: Callable[[BaseException], None] = LOG_FAILURE, name: str | None = None,
                 how: How = LOCAL, redirect_stdout: Redirect = RELAY, redirect_stderr: Redirect = RELAY,
                 cd: str = "/", env: Mapping[str, str] | None = None, umask: int | None = None,
                 connection_timeout: float = 10.0, spawn_timeout: float | None = None,
                 settings: RpcSettings | None = None, check_code: bool = True) -> tuple[WorkerHandle, Process]:
    """Start a worker of ``cls`` and initialise it; see ``Worker.spawn`` for the semantics (the
    defaults of its options are these)."""
    _refuse_spawn_on_import(cls)
    check_on_failure(on_failure)
    if not isinstance(how, Local | Ssh | Slurm):
        raise TypeError(f"how must be rp.Local(), rp.Ssh(host) or rp.Slurm(), not {how!r}")
    remote = not isinstance(how, Local)
    if env and WORKER_ENV in env:
        raise SpawnError(f"{WORKER_ENV} is reserved for rpc_parallel and cannot be set through env")
    spec = service_spec(cls)
    codec = codec_for(cls)
    init_arg = codec.encode_init(arg)  # a TypeError here, before any process starts
    cd = os.path.abspath(cd)  # relative to this process's directory now (a forked worker starts elsewhere)
    m = master()
    m.ensure_server()
    worker_settings = resolve(settings, m.app_settings)
    worker_id = uuid.uuid4().hex
    budget = spawn_timeout if spawn_timeout is not None else 2 * connection_timeout
    left = remaining()  # an rp.deadline shorter than the spawn's own budget bounds it instead
    by_deadline = left is not None and left < budget
    deadline = time.monotonic() + (left if by_deadline and left is not None else budget)
    record = WorkerRecord(worker_id=worker_id, name=name, expected_fingerprint=spec.fingerprint,
                          expected_functions=dict(spec.function_fingerprints), on_failure=on_failure,
                          outlives_master=shutdown_on is ShutdownOn.CALLED_SHUTDOWN_FUNCTION,
                          expected_code=_master_code(cls) if check_code else None, remote=remote)
    outward = _outward(m, how, worker_id) if isinstance(how, Ssh | Slurm) else {}
    m.workers[worker_id] = record
    config = {
        "worker_id": worker_id, "name": name, "class": cls.__qualname__, **_class_location(cls),
        "sys_path": _sys_path(remote), "master_address": m.address, "token": m.token,
        "settings": json.loads(worker_settings.to_json()), "master_settings": json.loads(m.settings.to_json()),
        "redirect_stdout": redirect_to_json(redirect_stdout if not foreground else DEV_NULL),
        "redirect_stderr": redirect_to_json(redirect_stderr if not foreground else DEV_NULL),
        "redirect": not foreground, "cd": os.fspath(cd), "umask": umask, "connection_timeout": connection_timeout,
        "worker_argv": _worker_argv, "unix_socket": isinstance(how, Local) and how.unix_socket,
        "identities": [i.to_json() for i in m.worker_identities(worker_id)], **outward,
    }
    # GRPC_VERBOSITY: gRPC core's own log lines (at a worker's shutdown, say) are not the user's output
    full_env = {"GRPC_VERBOSITY": "ERROR", **os.environ, **(env or {}), WORKER_ENV: "1"}
    if remote:  # the spawn's env travels on stdin, with the config
        config["env"] = dict(env or {})
        full_env = {"GRPC_VERBOSITY": "ERROR", **os.environ, WORKER_ENV: "1"}
    # the worker id on a remote worker's command line: stop_remote checks it before it kills a pid there
    tail_argv = [f"child-of-{os.getpid()}", *([name] if name else []), *([worker_id] if remote else [])]
    proc: Process | None = None
    if isinstance(how, Local) and how.fork_server and not how.prefix and not foreground and _worker_argv is None:
        proc = _fork(tail_argv, full_env)
    if proc is None:
        # a remote worker never re-executes this program (start_app's), whose path may not exist
        # there or be relative to our directory: it gets the main script's source in its config
        local_argv = _worker_argv if isinstance(how, Local) else None
        command = [*(local_argv or [sys.executable, "-m", "rpc_parallel._worker_main"]), *tail_argv]
        try:
            if isinstance(how, Ssh | Slurm):
                proc = launch(how, command, full_env)
            else:
                proc = subprocess.Popen([*how.prefix, *command], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=full_env, close_fds=True,
                                        start_new_session=not foreground)
        except OSError as exc:
            m.workers.pop(worker_id, None)
            what = f" ({launcher_name(how)} is not installed here?)" if isinstance(how, Ssh | Slurm) else ""
            raise SpawnError(f"could not start worker {name or worker_id}{what}: {exc}") from exc
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    tail: collections.deque[str] = collections.deque(maxlen=40)
    label = name or worker_id
    if remote:  # its redirect files are on its own host: only relayed lines explain its end
        redirect_stderr = RELAY
    relays: list[threading.Thread] = []  # stderr's first
    if not foreground:
        for stream, tail_of in ((proc.stderr, tail), (proc.stdout, None)):
            relays.append(threading.Thread(target=_relay, args=(stream, record, tail_of),
                                           name=f"rpc_parallel-relay-{label}", daemon=True))
            relays[-1].start()
    try:
        line = json.dumps(config).encode() + b"\n"
        proc.stdin.write(seal(how, line) if isinstance(how, Ssh | Slurm) else line)
        proc.stdin.flush()
    except OSError:
        pass  # the worker died at once; reported below with its exit status
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    try:
        _await_registration(proc, record, deadline, functools.partial(_stderr_tail, tail, redirect_stderr, cd),
                            relays[0] if relays else None, how)
        handle = WorkerHandle(worker_id=worker_id, address=record.address, name=name, settings=worker_settings,
                              token=m.token, fingerprint=spec.fingerprint, pid=record.pid if remote else proc.pid,
                              ca=outward.get("master_ca", ""), host=record.host)
        init_worker(handle, init_arg, shutdown_on, connection_timeout, deadline)
    except BaseException as exc:
        record.gave_up = True
        record.expected_exit = True
        if isinstance(exc, WorkerConnectionError):  # did it die during init? then say how
            try:
                code = proc.wait(_DEATH_GRACE)
            except subprocess.TimeoutExpired:
                pass
            else:
                raise _crashed(record, code, _stderr_tail(tail, redirect_stderr, cd),
                               "during init_worker_state") from exc
        _kill(proc)
        if isinstance(how, Ssh | Slurm) and record.pid:
            stop_remote(how, record.pid, worker_id)
        if foreground and proc.stderr:
            proc.stderr.close()
        if foreground and proc.stdout:
            proc.stdout.close()
        m.workers.pop(worker_id, None)
        if by_deadline and isinstance(exc, SpawnTimeoutError):
            raise expired() from exc
        raise
    if not foreground:
        stderr_tail = functools.partial(_stderr_tail, tail, redirect_stderr, cd)
        threading.Thread(target=_reap, args=(m, record, proc, stderr_tail, relays, how, handle),
                         name=f"rpc_parallel-reaper-{label}", daemon=True).start()
        threading.Thread(target=_watch, args=(m, record, proc, handle, how), name=f"rpc_parallel-watch-{label}",
                         daemon=True).start()
    return handle, proc


def _fork(argv: list[str], env: Mapping[str, str]) -> ForkedProcess | None:
    """The worker forked from this process's fork server, or None where it cannot be (then it
    starts as a fresh interpreter)."""
    server = fork_server()
    if server is None or not server.compatible(env):
        return None
    try:
        return server.spawn(argv, env)
    except OSError:
        return None


_OUTPUT = threading.Lock()  # one relayed line at a time: lines of two workers never mix


def _relay(stream: IO[bytes], record: WorkerRecord, tail: collections.deque[str] | None) -> None:
    """Copy the worker's stderr (``tail`` keeps its last lines) or stdout to ours, line by line,
    until it ends (the worker exits, or redirects it elsewhere). Before the worker registers, stderr
    lines are prefixed ``[WORKER <name> STDERR] ``; after, a line is prefixed ``[<name or short
    id>] ``, for ``rp.RELAY``. A line that cannot be written here is dropped, and the copy goes on,
    so that the worker never blocks on a full pipe."""
    which = "stderr" if tail is not None else "stdout"
    early = f"[WORKER {record.label} STDERR] " if tail is not None else f"[{record.short_label}] "
    late = f"[{record.short_label}] "
    try:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\r\n")
            if tail is not None:
                tail.append(line)
            if line.startswith(SPAWN_ERROR_MARKER):  # for the spawn to raise, not to show
                continue
            text = (late if record.registered.is_set() else early) + line + "\n"
            with _OUTPUT:
                try:
                    out = getattr(sys, which)
                    out.write(text)
                    out.flush()
                except (OSError, ValueError, AttributeError):
                    pass
    except (OSError, ValueError):
        pass
    finally:
        stream.close()


def _await_registration(proc: Process, record: WorkerRecord, deadline: float, stderr_tail: Callable[[], str],
                        relay: threading.Thread | None, how: How) -> None:
    """Wait for the worker's registration; its stderr tail (relayed, then its redirect file: it
    redirects before registering) explains a death or a timeout."""
    while not record.registered.wait(0.02):
        code = proc.poll()
        if code is not None:
            if relay is not None:
                relay.join(5.0)  # it exited: its stderr ends now, unless a child of its holds it
            text = stderr_tail()
            failed = [line for line in text.splitlines() if line.startswith(SPAWN_ERROR_MARKER)]
            if failed:  # it could not start, and said why
                raise SpawnError(f"worker {record.label} could not start: "
                                 f"{json.loads(failed[-1].removeprefix(SPAWN_ERROR_MARKER))}")
            if _launcher_failed(how, code, text):
                raise SpawnError(f"worker {record.label} could not start: {launcher_name(how)} failed "  # type: ignore[arg-type]
                                 f"({_status(code)}{_LAUNCHER_CODES.get((launcher_name(how), code), '')})"  # type: ignore[arg-type]
                                 f"{_tail_text(text) or ' and wrote nothing on stderr'}")
            raise _crashed(record, code, text, "before registering")
        if time.monotonic() > deadline:
            raise SpawnTimeoutError(f"timed out spawning worker {record.label}: it did not register in time; "
                                    "the process was killed" + _tail_text(stderr_tail()))
    if record.rejected:
        raise ProtocolError(record.rejected)


_LAUNCHER_CODES = {("ssh", 255): ": ssh's own error, or the worker was killed by a signal"}


def _launcher_failed(how: How, code: int, stderr_tail: str) -> bool:
    """Whether a remote worker's launcher exited for its own reasons, not the worker's: ssh exits
    255 on its errors (no route, refused, authentication), srun says ``srun: error``."""
    if isinstance(how, Ssh):
        return code == 255
    if isinstance(how, Slurm):
        return "srun: error" in stderr_tail or "srun: fatal" in stderr_tail
    return False


def _reap(m: Master, record: WorkerRecord, proc: Process, stderr_tail: Callable[[], str],
          relays: list[threading.Thread], how: How, handle: WorkerHandle) -> None:
    code = proc.wait()
    for relay in relays:
        relay.join(1.0)
    m.workers.pop(record.worker_id, None)
    socket_dir = socket_dir_of(record.address)
    if socket_dir is not None:  # a killed worker could not remove its socket directory
        shutil.rmtree(socket_dir, ignore_errors=True)
    if m.stopping.is_set():
        return  # this master is exiting: its workers end with it
    if isinstance(how, Ssh | Slurm) and record.outlives_master and probe(handle) != GONE:
        return  # its launcher ended, not the worker, which lives on (as it was told to)
    if isinstance(how, Ssh | Slurm) and (code < 0 or code == 255) and not record.expected_exit:
        # the launcher was killed, or ssh lost its connection (or the worker died of a signal:
        # ssh says 255 then too): a worker still running must not outlive its launcher unseen
        _stop_remote_worker(how, handle)
        if not record.failed:
            why = (f"was killed ({_status(code)})" if code < 0 else
                   f"ended with exit code 255 (the worker died of a signal, or the connection to {how_host(how)} broke)")
            m.report_failure(record, WorkerCrashedError(
                f"worker {record.label}: its launcher ({launcher_name(how)}) {why}; the worker was stopped"
                f"{_tail_text(stderr_tail())}", worker_id=record.worker_id, worker_name=record.name,
                exit_code=code if code >= 0 else None, signal=-code if code < 0 else None,
                stderr_tail=stderr_tail()))
        return
    if code == 0 or record.expected_exit or record.failed:
        return
    if isinstance(proc, ForkedProcess) and proc.status_lost:
        if record.shutdown_requested:
            return  # most likely the exit it was asked for
        m.report_failure(record, WorkerCrashedError(
            f"worker {record.label} exited; how is unknown: the fork server that started it was gone",
            worker_id=record.worker_id, worker_name=record.name))
        return
    m.report_failure(record, _crashed(record, code, stderr_tail()))


def how_host(how: How) -> str:
    return how.host if isinstance(how, Ssh) else "its node"


def _stop_remote_worker(how: Remote, handle: WorkerHandle) -> None:
    """Stop a remote worker whose launcher is gone: ask it to shut down, then kill its pid there."""
    try:
        handle.shutdown()
    except Exception:
        pass
    stop_remote(how, handle.pid, handle.worker_id)


def _watch(m: Master, record: WorkerRecord, proc: Process, handle: WorkerHandle, how: How) -> None:
    """Watch the worker (``Control/Watch``); when it stops answering and does not exit within its
    heartbeat timeout, report it to ``on_failure`` as crashed and kill it (it may be stopped or
    hung). A worker that exits is left to the reaper."""
    timeout = handle.settings.heartbeat.timeout
    status = watch(handle, lambda: proc.poll() is None)
    if status is None:
        return
    try:
        proc.wait(handle.settings.handshake_timeout if status == GONE else timeout)
        return  # it exited: the reaper reports how
    except subprocess.TimeoutExpired:
        pass
    if not record.expected_exit:
        m.report_failure(record, WorkerCrashedError(
            f"worker {record.label} stopped answering (no heartbeat within {timeout}s: hung, stopped or "
            f"unreachable); killed it", worker_id=record.worker_id, worker_name=record.name))
        record.failed = True
    proc.kill()
    if isinstance(how, Ssh | Slurm):
        stop_remote(how, handle.pid, handle.worker_id)


def _crashed(record: WorkerRecord, code: int, stderr_tail: str, when: str = "") -> WorkerCrashedError:
    sig = -code if code < 0 else None
    where = f" {when}" if when else ""
    return WorkerCrashedError(f"worker {record.label} died{where}: {_status(code)}{_tail_text(stderr_tail)}",
                              worker_id=record.worker_id, worker_name=record.name,
                              exit_code=None if sig else code, signal=sig, stderr_tail=stderr_tail)


def _stderr_tail(tail: collections.deque[str], redirect: Redirect, cd: str, lines: int = 40) -> str:
    """What the worker last wrote to stderr: the relayed lines, then its redirect file's last lines."""
    out = list(tail)
    if isinstance(redirect, FileAppend | FileTruncate):
        try:
            with open(os.path.join(cd, os.fspath(redirect.path)), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 16384))
                out += f.read().decode(errors="replace").splitlines()
        except OSError:
            pass
    return "\n".join(out[-lines:])


def _status(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _tail_text(stderr_tail: str) -> str:
    return f"; its stderr ended with:\n{stderr_tail}" if stderr_tail else ""


def _kill(proc: Process) -> None:
    """TERM, then KILL after a grace period; always reaps."""
    if proc.poll() is None:
        try:
            proc.terminate()
            proc.send_signal(signal.SIGCONT)  # a stopped process handles TERM only once continued
            proc.wait(_TERM_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        except OSError:
            pass
    proc.wait()
