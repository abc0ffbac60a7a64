"""``Worker``: the base class of worker types (the instance is the worker state)."""

from __future__ import annotations

import subprocess
from typing import Any, Literal, TypeVar, Unpack, overload

from ._client import Connection, connect
from ._declaration import CONNECTION_STATE, WorkerMeta
from ._handle import WorkerHandle
from ._options import ForegroundOptions, ShutdownOn, SpawnOptions, check_options
from ._served import serve
from ._settings import RpcSettings
from ._spawn import spawn_worker

WorkerT = TypeVar("WorkerT", bound="Worker")

__all__ = ("Worker",)

class Worker(metaclass=WorkerMeta):
    """Base class of a worker type.

    Subclass it and decorate methods with ``rp.rpc``, ``rp.one_way``, ``rp.pipe``, ``rp.state``,
    ``rp.direct_pipe`` or ``rp.reverse_pipe``. The instance is the worker state, shared by every
    connection; ``init_worker_state(arg)`` runs once with the ``spawn``/``serve`` argument, and
    ``init_connection_state(arg)`` once per connection, its result being ``self.connection_state``
    during that connection's calls.
    """

    def init_worker_state(self, arg: Any) -> None:
        """Initialise the worker state from the ``spawn``/``serve`` argument (default: takes None)."""

    def init_connection_state(self, arg: Any) -> Any:
        """Return this connection's state from the ``connect`` argument (default: takes None)."""
        return None

    init_worker_state._rp_default = True  # type: ignore[attr-defined]
    init_connection_state._rp_default = True  # type: ignore[attr-defined]

    @property
    def connection_state(self) -> Any:
        """The state ``init_connection_state`` returned for the connection of the current call."""
        try:
            return CONNECTION_STATE.get()
        except LookupError:
            raise RuntimeError("connection_state is only available during a call on a connection") from None

    # -- master-side API -----------------------------------------------------------------------

    @overload
    @classmethod
    def spawn(cls, arg: Any = None, *,
              shutdown_on: Literal[ShutdownOn.HEARTBEATER_TIMEOUT, ShutdownOn.CALLED_SHUTDOWN_FUNCTION]
              = ShutdownOn.HEARTBEATER_TIMEOUT, **options: Unpack[SpawnOptions]) -> WorkerHandle: ...
    @overload
    @classmethod
    def spawn(cls, arg: Any = None, *, shutdown_on: Literal[ShutdownOn.CONNECTION_CLOSED], connection_arg: Any = None,
              **options: Unpack[SpawnOptions]) -> Connection: ...
    @classmethod
    def spawn(cls, arg: Any = None, *, shutdown_on: ShutdownOn = ShutdownOn.HEARTBEATER_TIMEOUT,
              connection_arg: Any = None, **options: Unpack[SpawnOptions]) -> WorkerHandle | Connection:
        """Start a worker of this type in a new process and run ``init_worker_state(arg)`` there.

        Returns its handle, or with ``shutdown_on=CONNECTION_CLOSED`` a connection opened with
        ``connection_arg``. Its keyword options, defaults in brackets:

        - ``on_failure`` [``rp.LOG_FAILURE``]: ``on_failure(exc)`` gets, once, a
          ``WorkerFailedError`` (an exception after a function returned) or a
          ``WorkerCrashedError`` (the process died); the default logs it (logger ``rpc_parallel``,
          ERROR); ``rp.IGNORE_FAILURE`` drops it; ``None`` is refused (``TypeError``);
        - ``name`` [None]: a name for messages and ``ps``;
        - ``how`` [``rp.Local()``]: how to run the worker process: ``rp.Local()`` here,
          ``rp.Ssh(host)`` on another host, ``rp.Slurm()`` as a job step (docs/remote.md);
        - ``cd`` ["/"]: the worker moves there (relative to our directory), then sends its
          stdout/stderr to ``redirect_stdout``/``redirect_stderr`` [``rp.RELAY``: to our own
          stdout/stderr, each line prefixed ``[<name or short id>] ``; or ``rp.DEV_NULL``,
          ``rp.FileAppend(path)``, ``rp.FileTruncate(path)``] (until then its stderr is relayed,
          prefixed ``[WORKER <name> STDERR]``), then registers;
        - ``env`` [None]: added to our environment for the worker (a remote worker gets it on
          its launcher's stdin, over its login's environment); ``umask`` [None: ours];
        - ``connection_timeout`` [10.0]: for the init to arrive (and, with CONNECTION_CLOSED, the
          first connection after it); ``spawn_timeout`` [2 x ``connection_timeout``] bounds the
          whole start: past it the process is killed and ``SpawnTimeoutError`` raised;
        - ``settings`` [None]: apply to this worker's server (see ``RpcSettings``);
        - ``check_code`` [True]: the worker must run the master's code (the source of its worker
          module as at this master's first spawn of it, the Python and rpc_parallel versions),
          else ``ProtocolError`` naming what differs, before ``init_worker_state`` runs.
        """
        check_options(options, SpawnOptions, f"{cls.__name__}.spawn")
        handle, _ = spawn_worker(cls, arg, shutdown_on=shutdown_on, foreground=False, **options)
        if shutdown_on is ShutdownOn.CONNECTION_CLOSED:
            return connect(cls, handle, connection_arg)
        return handle

    @classmethod
    def spawn_in_foreground(cls, arg: Any = None, *, shutdown_on: ShutdownOn = ShutdownOn.HEARTBEATER_TIMEOUT,
                            **options: Unpack[ForegroundOptions]) -> tuple[WorkerHandle, subprocess.Popen[bytes]]:
        """Like ``spawn`` (the same options but the redirects) without daemonizing: the worker's
        stdout and stderr are the returned process's pipes, and the caller must read them and reap
        the process (``wait()``)."""
        check_options(options, ForegroundOptions, f"{cls.__name__}.spawn_in_foreground")
        handle, proc = spawn_worker(cls, arg, shutdown_on=shutdown_on, foreground=True, **options)
        assert isinstance(proc, subprocess.Popen)  # a foreground worker is never forked
        return handle, proc

    @classmethod
    def serve(cls, arg: Any = None, *, settings: RpcSettings | None = None, name: str | None = None) -> WorkerHandle:
        """Start a worker server of this type inside this process; ``handle.shutdown()`` stops it."""
        return serve(cls, arg, settings=settings, name=name)

    @classmethod
    def connect(cls, handle: WorkerHandle, connection_arg: Any = None) -> Connection:
        """Open a connection to the worker server ``handle``; runs ``init_connection_state``."""
        return connect(cls, handle, connection_arg)
