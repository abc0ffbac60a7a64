"""The fork server: a helper process that has imported what a worker needs except gRPC, and forks
workers from that state instead of starting each interpreter from scratch.

A worker started by ``python -m rpc_parallel._worker_main`` spends most of its start-up importing
(the interpreter, asyncio, ssl, logging, protobuf, ...: about 75 % of its CPU here). The fork server
pays that once; each worker it forks then imports only gRPC, rpc_parallel and the user's module.
gRPC must never be imported before a fork (its threads and polling state do not survive one), so
the server imports no module that imports gRPC, and it runs no thread.

This file is both sides: run as a script it is the server (stdlib imports only, so that running it
does not import the ``rpc_parallel`` package, which imports gRPC); imported, ``ForkServer`` is the
master's client. One server per master process, started on first use; it exits when the master's end
of its socket closes. A forked worker is the server's child: the server reaps it and reports its
exit status, which ``ForkedProcess`` (the master's view, shaped like ``subprocess.Popen``) returns.

A fork server cannot apply what only takes effect when an interpreter starts (``PYTHON*``
variables, the locale, ``LD_PRELOAD``, allocator tunables, ...): a spawn whose environment differs
from the server's in such a variable starts a fresh interpreter instead. Workers forked from one
server share its string hash seed.
"""

from __future__ import annotations

import importlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import IO, Any

__all__ = ("ForkServer", "ForkedProcess", "fork_server", "server_pid", "stop")

_MAX_REQUEST = 1 << 20  # a spawn request carries the environment
_MAX_REPLY = 1 << 12
_REPLY_TIMEOUT = 30.0
_STOP_WAIT = 5.0
# Environment variables read when an interpreter (or a library the server preloads) starts.
_STARTUP_PREFIXES = ("PYTHON", "LD_", "MALLOC_", "GLIBC_", "LC_", "LANG", "TZ", "PROTOCOL_BUFFERS_", "OPENSSL_")
# What the server imports before it forks: everything a worker imports, except gRPC and what
# imports it (rpc_parallel itself, the user's module). Missing ones are skipped.
_PRELOAD = (
    "asyncio", "asyncio.base_events", "asyncio.unix_events", "collections", "concurrent.futures",
    "concurrent.futures.thread", "contextlib", "contextvars", "copy", "dataclasses", "enum", "faulthandler",
    "functools", "hashlib", "hmac", "importlib", "importlib.util", "inspect", "itertools", "json", "logging",
    "operator", "pathlib", "pickle", "platform", "queue", "runpy", "secrets", "selectors", "shutil", "signal",
    "socket", "ssl", "struct", "subprocess", "tempfile", "textwrap", "threading", "traceback", "types",
    "typing", "typing_extensions", "uuid", "weakref", "__future__", "importlib.metadata", "pkgutil", "shlex",
    "zipfile",
    "google.protobuf.descriptor", "google.protobuf.descriptor_pb2", "google.protobuf.descriptor_pool",
    "google.protobuf.json_format", "google.protobuf.message", "google.protobuf.message_factory",
    "google.protobuf.reflection", "google.protobuf.symbol_database", "google.protobuf.text_format",
    "google.protobuf.internal.builder", "google.protobuf.internal.containers",
    "google.protobuf.internal.enum_type_wrapper", "google.protobuf.internal.python_message",
)


def supported() -> bool:
    """Fork servers need Linux's pidfds and fd passing over unix sockets."""
    return sys.platform == "linux" and hasattr(os, "pidfd_open") and hasattr(socket, "send_fds")


def startup_env(env: Mapping[str, str]) -> dict[str, str]:
    """The part of ``env`` that only takes effect when an interpreter starts."""
    return {k: v for k, v in env.items() if k.startswith(_STARTUP_PREFIXES)}


# -- the master's side ---------------------------------------------------------------------------


def _umask() -> int | None:
    """This process's umask, read without changing it (os.umask would, for every thread)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return None


class ForkedProcess:
    """A worker process forked by the fork server, with the part of ``subprocess.Popen``'s interface
    that spawning uses. Signals go through the pidfd the fork server opened when it forked the
    process, so they reach that process or none, never a reused pid."""

    def __init__(self, pid: int, pidfd: int, stdin: IO[bytes], stdout: IO[bytes], stderr: IO[bytes]) -> None:
        self.pid = pid
        self.stdin: IO[bytes] | None = stdin
        self.stdout: IO[bytes] | None = stdout
        self.stderr: IO[bytes] | None = stderr
        self.returncode: int | None = None
        self.status_lost = False  # the fork server died first: returncode is a stand-in (255)
        self._exited = threading.Event()
        self._pidfd: int | None = pidfd
        self._pidfd_lock = threading.Lock()

    def _set_exit(self, code: int) -> None:
        with self._pidfd_lock:
            self.returncode = code
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
        self._exited.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        with self._pidfd_lock:
            if self.returncode is None and self._pidfd is not None:
                try:
                    signal.pidfd_send_signal(self._pidfd, sig)
                except ProcessLookupError:
                    pass  # exited; its report is on the way

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """The master's connection to its fork server process."""

    def __init__(self) -> None:
        self._env = dict(os.environ)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = ours
        self._lock = threading.Lock()  # one request at a time
        self._seq = 0
        self._replies: dict[int, tuple[dict[str, Any], list[int]]] = {}
        self._abandoned: set[int] = set()  # requests whose reply came too late for them
        self._reply = threading.Condition()
        self._procs: dict[int, ForkedProcess] = {}
        self._early: dict[int, int] = {}  # exits read before the spawn that made them was handled
        self._procs_lock = threading.Lock()
        self._dead = False  # no more exit reports will come (under _procs_lock)
        self.alive = True  # takes spawn requests
        try:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), str(theirs.fileno()), f"child-of-{os.getpid()}",
                 "rpc_parallel-fork-server"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
                close_fds=True, start_new_session=True, env=self._env)
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self._reader = threading.Thread(target=self._read, name="rpc_parallel-fork-server", daemon=True)
        self._reader.start()
        ready, _ = self._await_reply(0, _REPLY_TIMEOUT)
        if ready.get("op") != "ready":
            self._close()
            raise OSError(f"the fork server did not start: {ready!r}")

    def _read(self) -> None:
        try:
            while True:
                data, fds, _, _ = socket.recv_fds(self._sock, _MAX_REPLY, 1)
                if not data:
                    break
                msg = json.loads(data)
                if msg["op"] == "exited":
                    self._pair(msg["pid"], code=msg["code"])
                    continue
                with self._reply:
                    seq = msg.get("seq", 0)
                    if seq in self._abandoned:
                        self._abandoned.discard(seq)
                        for fd in fds:
                            os.close(fd)
                        continue
                    self._replies[seq] = (msg, fds)
                    self._reply.notify_all()
        except OSError:
            pass
        finally:
            self._lost()

    def _await_reply(self, seq: int, timeout: float) -> tuple[dict[str, Any], list[int]]:
        """The reply to request ``seq`` (0: the server's "ready"); an empty one if none came."""
        with self._reply:
            self._reply.wait_for(lambda: seq in self._replies or self._dead, timeout)
            if seq not in self._replies:
                self._abandoned.add(seq)
            return self._replies.pop(seq, ({}, []))

    def _pair(self, pid: int, *, proc: ForkedProcess | None = None, code: int | None = None) -> None:
        """Match a forked process with its exit report, whichever of the two comes first (the report
        can be read before the spawn that made the process has finished)."""
        with self._procs_lock:
            if proc is None:
                proc = self._procs.pop(pid, None)
                if proc is None:
                    assert code is not None
                    self._early[pid] = code
                    return
            else:
                code = self._early.pop(pid, None)
                if code is None:
                    if self._dead:  # no report will come
                        threading.Thread(target=_await_pidfd, args=(proc,), daemon=True).start()
                    else:
                        self._procs[pid] = proc
                    return
        assert code is not None
        proc._set_exit(code)

    def _lost(self) -> None:
        """The server is gone (stopped, or killed): the exit statuses of the workers it still had
        are lost with it; each gets returncode 255 and ``status_lost`` once it exits (its pidfd
        turns readable)."""
        self.alive = False
        self._sock.close()
        with self._procs_lock:
            self._dead = True
            procs, self._procs = list(self._procs.values()), {}
        with self._reply:
            for _, fds in self._replies.values():  # replies nobody waits for any more
                for fd in fds:
                    os.close(fd)
            self._reply.notify_all()
        for proc in procs:
            threading.Thread(target=_await_pidfd, args=(proc,), daemon=True).start()
        try:  # it exits on its own once our end is closed or its last worker is gone
            self.proc.wait(_STOP_WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def compatible(self, env: Mapping[str, str]) -> bool:
        """Whether a worker with environment ``env`` may be forked from this server."""
        return self.alive and startup_env(env) == startup_env(self._env)

    def spawn(self, argv: Sequence[str], env: Mapping[str, str]) -> ForkedProcess:
        """Fork a worker that runs ``python -m rpc_parallel._worker_main`` with ``argv`` after it,
        in its own session and environment ``env``, with our umask; its stdin, stdout and stderr are
        pipes to us."""
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        try:
            with self._lock:
                self._seq += 1
                seq = self._seq
                request = json.dumps({"op": "spawn", "seq": seq, "argv": list(argv), "env": dict(env),
                                      "umask": _umask()})
                socket.send_fds(self._sock, [request.encode()], [stdin_r, stdout_w, stderr_w])
                for fd in (stdin_r, stdout_w, stderr_w):
                    os.close(fd)
                stdin_r = stdout_w = stderr_w = -1
                reply, fds = self._await_reply(seq, _REPLY_TIMEOUT)
                if reply.get("op") != "spawned" or len(fds) != 1:
                    for fd in fds:
                        os.close(fd)
                    raise OSError(f"the fork server could not start a worker: {reply or 'no reply'}")
                pid: int = reply["pid"]
                proc = ForkedProcess(pid, fds[0], os.fdopen(stdin_w, "wb"), os.fdopen(stdout_r, "rb"),
                                     os.fdopen(stderr_r, "rb"))
                stdin_w = stdout_r = stderr_r = -1
                self._pair(pid, proc=proc)
                return proc
        finally:
            for fd in (stdin_r, stdin_w, stdout_r, stdout_w, stderr_r, stderr_w):
                if fd >= 0:
                    os.close(fd)

    def stop(self) -> None:
        """Take no more spawns. The server exits once its last worker has (reporting each exit),
        or at once with none; wait for that in the second case."""
        self.alive = False
        try:
            self._sock.send(json.dumps({"op": "stop"}).encode())
        except OSError:
            return  # already gone
        with self._procs_lock:
            idle = not self._procs
        if idle:
            self._reader.join(_STOP_WAIT)

    def _close(self) -> None:
        """Drop the server at once (a failed start)."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._reader.join(_STOP_WAIT)


def _await_pidfd(proc: ForkedProcess) -> None:
    proc.status_lost = True
    with proc._pidfd_lock:
        pidfd = proc._pidfd
    if pidfd is not None:
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(pidfd, selectors.EVENT_READ)
                sel.select()
        except (OSError, ValueError):
            pass
    proc._set_exit(255)


_server: ForkServer | None = None
_server_lock = threading.Lock()
_failed = False


def fork_server() -> ForkServer | None:
    """This process's fork server, started on first use; None where there can be none (not Linux,
    or it failed to start once)."""
    global _server, _failed
    with _server_lock:
        if _server is not None and _server.alive:
            return _server
        if _failed or not supported():
            return None
        try:
            _server = ForkServer()
        except OSError:
            _failed = True
            return None
        return _server


def stop() -> None:
    """Stop this process's fork server, if it runs; the next spawn starts a new one. Workers it
    started go on (it reports their exits until the last one is gone); otherwise it exits with us."""
    global _server
    with _server_lock:
        server, _server = _server, None
    if server is not None:
        server.stop()


def server_pid() -> int | None:
    """The pid of this process's fork server, if one runs."""
    server = _server
    return server.proc.pid if server is not None and server.alive else None


# -- the server ----------------------------------------------------------------------------------


def _preload() -> None:
    for name in _PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # an optional module: a worker that needs it imports it
            pass


def _send(sock: socket.socket, msg: dict[str, Any], fds: Sequence[int] = ()) -> None:
    socket.send_fds(sock, [json.dumps(msg).encode()], list(fds))


def _unsafe() -> str:
    """Why forking this process would be unsafe ("" if it is not): something (a .pth hook,
    sitecustomize) started a thread or imported gRPC."""
    if threading.active_count() != 1:
        return f"{threading.active_count()} threads run"
    if "grpc" in sys.modules:
        return "grpc is imported"
    return ""


def _serve(fd: int) -> dict[str, Any] | None:
    """Serve spawn requests until the master's end closes, or until a stop request and the exit of
    the last child (returns None); in a forked child, return its request once its process state is
    set up."""
    sock = socket.socket(fileno=fd)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _MAX_REQUEST)
    why = _unsafe()
    if why:
        _send(sock, {"op": "unsafe", "why": why})
        return None
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    children: dict[int, int] = {}  # pidfd -> pid
    stopping = False
    _send(sock, {"op": "ready", "pid": os.getpid()})
    while not (stopping and not children):
        for key, _ in sel.select():
            if key.fileobj is not sock:  # a child exited
                pidfd = key.fd
                pid = children.pop(pidfd)
                sel.unregister(pidfd)
                os.close(pidfd)
                _, status = os.waitpid(pid, 0)
                try:
                    _send(sock, {"op": "exited", "pid": pid, "code": os.waitstatus_to_exitcode(status)})
                except OSError:
                    return None  # the master is gone
                continue
            try:
                data, fds, _, _ = socket.recv_fds(sock, _MAX_REQUEST, 3)
            except OSError:
                data, fds = b"", []
            if not data:
                return None  # the master is gone
            request: dict[str, Any] = json.loads(data)
            if request["op"] == "stop":
                stopping = True
                continue
            pid = os.fork()
            if pid == 0:
                sel.close()
                _child(request, fds, sock)
                return request
            for received in fds:
                os.close(received)
            pidfd = os.pidfd_open(pid)  # before the child can be reaped: it names this process
            children[pidfd] = pid
            sel.register(pidfd, selectors.EVENT_READ)
            try:
                _send(sock, {"op": "spawned", "seq": request["seq"], "pid": pid}, [pidfd])
            except OSError:
                return None
    return None


def _child(request: dict[str, Any], fds: list[int], sock: socket.socket) -> None:
    """Make this forked process look like a freshly started worker: its own session, its pipes as
    stdin, stdout and stderr, no other descriptors, the master's umask, the requested environment
    and argv."""
    os.setsid()
    if request.get("umask") is not None:
        os.umask(request["umask"])
    sock.detach()  # closed below with the rest; the object must not close that number again later
    stdin_fd, stdout_fd, stderr_fd = fds
    os.dup2(stdin_fd, 0)
    os.dup2(stdout_fd, 1)
    os.dup2(stderr_fd, 2)
    for name in os.listdir("/proc/self/fd"):  # close everything else (the server's socket above all)
        fd = int(name)
        if fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["-m", *request["argv"]]


if __name__ == "__main__":
    del sys.path[0]  # this file's directory: not a place to import from
    _preload()
    if _serve(int(sys.argv[1])) is not None:
        # a forked worker: run the worker's main module as `python -m` would; the interpreter then
        # exits as any other would (atexit handlers, flushing, the exit status of SystemExit)
        import runpy

        runpy.run_module("rpc_parallel._worker_main", run_name="__main__", alter_sys=True)
