"""``Worker``: the base class of worker types (the instance is the worker state)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, overload

from ._client import Connection, connect
from ._declaration import CONNECTION_STATE, WorkerMeta
from ._handle import WorkerHandle
from ._options import DEV_NULL, LOCAL, Local, Redirect, ShutdownOn
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
    def spawn(cls, arg: Any = None, *, on_failure: Callable[[BaseException], None] | None = None,
              shutdown_on: Literal[ShutdownOn.HEARTBEATER_TIMEOUT, ShutdownOn.CALLED_SHUTDOWN_FUNCTION]
              = ShutdownOn.HEARTBEATER_TIMEOUT, name: str | None = None, how: Local = LOCAL,
              redirect_stdout: Redirect = DEV_NULL, redirect_stderr: Redirect = DEV_NULL, cd: str = "/",
              env: Mapping[str, str] | None = None, umask: int | None = None, connection_timeout: float = 10.0,
              spawn_timeout: float | None = None, settings: RpcSettings | None = None) -> WorkerHandle: ...
    @overload
    @classmethod
    def spawn(cls, arg: Any = None, *, on_failure: Callable[[BaseException], None] | None = None,
              shutdown_on: Literal[ShutdownOn.CONNECTION_CLOSED], connection_arg: Any = None,
              name: str | None = None, how: Local = LOCAL, redirect_stdout: Redirect = DEV_NULL,
              redirect_stderr: Redirect = DEV_NULL, cd: str = "/", env: Mapping[str, str] | None = None,
              umask: int | None = None, connection_timeout: float = 10.0, spawn_timeout: float | None = None,
              settings: RpcSettings | None = None) -> Connection: ...
    @classmethod
    def spawn(cls, arg: Any = None, *, on_failure: Callable[[BaseException], None] | None = None,
              shutdown_on: ShutdownOn = ShutdownOn.HEARTBEATER_TIMEOUT, connection_arg: Any = None,
              name: str | None = None, how: Local = LOCAL, redirect_stdout: Redirect = DEV_NULL,
              redirect_stderr: Redirect = DEV_NULL, cd: str = "/", env: Mapping[str, str] | None = None,
              umask: int | None = None, connection_timeout: float = 10.0, spawn_timeout: float | None = None,
              settings: RpcSettings | None = None) -> WorkerHandle | Connection:
        """Start a worker of this type in a new process and run ``init_worker_state(arg)`` there.

        Returns its handle, or with ``shutdown_on=CONNECTION_CLOSED`` a connection opened with
        ``connection_arg``. ``on_failure(exc)`` gets, once, a ``WorkerFailedError`` (an exception
        after a function returned) or a ``WorkerCrashedError`` (the process died). The worker
        moves to ``cd`` (relative to our directory), then sends its stdout/stderr to
        ``redirect_stdout``/``redirect_stderr`` (until then its stderr is relayed to ours, prefixed
        ``[WORKER <name> STDERR]``), then registers; it runs with ``env`` added to our
        environment. ``spawn_timeout`` (default 2 x ``connection_timeout``) bounds the whole start;
        past it the process is killed and ``SpawnTimeoutError`` raised. ``settings`` apply to this worker's server (see RpcSettings).
        """
        handle, _ = spawn_worker(cls, arg, on_failure=on_failure, shutdown_on=shutdown_on, name=name, how=how,
                                 redirect_stdout=redirect_stdout, redirect_stderr=redirect_stderr, cd=cd, env=env,
                                 umask=umask, connection_timeout=connection_timeout, spawn_timeout=spawn_timeout,
                                 settings=settings, foreground=False)
        if shutdown_on is ShutdownOn.CONNECTION_CLOSED:
            return connect(cls, handle, connection_arg)
        return handle

    @classmethod
    def spawn_in_foreground(cls, arg: Any = None, *, on_failure: Callable[[BaseException], None] | None = None,
                            shutdown_on: ShutdownOn = ShutdownOn.HEARTBEATER_TIMEOUT, name: str | None = None,
                            how: Local = LOCAL, cd: str = "/", env: Mapping[str, str] | None = None,
                            umask: int | None = None, connection_timeout: float = 10.0,
                            spawn_timeout: float | None = None, settings: RpcSettings | None = None
                            ) -> tuple[WorkerHandle, subprocess.Popen[bytes]]:
        """Like ``spawn`` but without daemonizing: the worker's stdout and stderr are the returned
        process's pipes, and the caller must read them and reap the process (``wait()``)."""
        handle, proc = spawn_worker(cls, arg, on_failure=on_failure, shutdown_on=shutdown_on, name=name, how=how,
                                    redirect_stdout=DEV_NULL, redirect_stderr=DEV_NULL, cd=cd, env=env, umask=umask,
                                    connection_timeout=connection_timeout, spawn_timeout=spawn_timeout,
                                    settings=settings, foreground=True)
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
