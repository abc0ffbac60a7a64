"""The exception hierarchy: every error rpc_parallel raises on purpose.

::

    RpcParallelError
    ├── DeclarationError            a worker declaration is invalid (names file, line, class, function)
    │   └── UnsupportedTypeError    a type hint has no proto mapping
    ├── ProtocError                 protoc rejected a generated ``.proto`` file (``rpcpar gen``)
    ├── ProtocolError               master, worker and stub disagree on a worker type's schema
    ├── RemoteError                 a worker function raised; carries the remote type, message, traceback
    ├── WorkerConnectionError       the worker cannot be reached, or the connection dropped
    │   └── ConnectionClosedError   the connection was closed on this side
    ├── WorkerFailedError           background failure reported to ``on_failure``
    ├── WorkerCrashedError          the worker process died (exit code or signal, stderr tail)
    ├── SpawnError                  a worker could not be started
    │   └── SpawnTimeoutError       no registration within ``spawn_timeout``
    ├── DeadlineExceededError       a call did not finish by its ``rp.deadline`` (a ``TimeoutError``)
    ├── MessageTooLargeError        a message exceeded ``max_message_size``
    ├── AuthenticationError         the peer rejected our credentials
    ├── SettingsError               invalid settings, or a bad ``RPC_PARALLEL_RPC_SETTINGS``
    └── DynamicCallError            a function name or JSON argument does not fit the schema (``rpcpar call``)

``KeyboardInterrupt``, ``SystemExit`` and ``asyncio.CancelledError`` are never wrapped.
"""

from __future__ import annotations

__all__ = (
    "AuthenticationError",
    "ConnectionClosedError",
    "DeadlineExceededError",
    "DeclarationError",
    "DynamicCallError",
    "MessageTooLargeError",
    "ProtocError",
    "ProtocolError",
    "RemoteError",
    "RpcParallelError",
    "SettingsError",
    "SpawnError",
    "SpawnTimeoutError",
    "UnsupportedTypeError",
    "WorkerConnectionError",
    "WorkerCrashedError",
    "WorkerFailedError",
)


class RpcParallelError(Exception):
    """Root of every error rpc_parallel raises on purpose."""


class DeclarationError(RpcParallelError, TypeError):
    """Raised when a worker declaration is invalid; the message starts with ``file:line``."""


class UnsupportedTypeError(DeclarationError):
    """Raised when a parameter or result type has no proto mapping."""


class ProtocError(RpcParallelError):
    """Raised when protoc rejects a ``.proto`` file; ``stderr`` holds protoc's report."""

    def __init__(self, message: str, *, stderr: str = "", returncode: int = 1) -> None:
        super().__init__(f"{message}\n{stderr.rstrip()}" if stderr.strip() else message)
        self.stderr = stderr
        self.returncode = returncode


class ProtocolError(RpcParallelError):
    """Raised when master, worker and stubs disagree on a worker type's schema."""


class RemoteError(RpcParallelError):
    """Raised when a worker function raised before its result was ready.

    The worker lives on. ``remote_type``, ``remote_message`` and ``remote_traceback`` describe the
    original exception; ``worker_id`` and ``worker_name`` say where it ran.
    """

    def __init__(
        self,
        remote_type: str,
        remote_message: str,
        remote_traceback: str = "",
        *,
        worker_id: str = "",
        worker_name: str | None = None,
    ) -> None:
        where = worker_name or worker_id or "worker"
        super().__init__(f"{remote_type}: {remote_message} (raised in {where})")
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback
        self.worker_id = worker_id
        self.worker_name = worker_name

    def __str__(self) -> str:
        base = super().__str__()
        if self.remote_traceback:
            return f"{base}\n\nRemote traceback:\n{self.remote_traceback.rstrip()}"
        return base


class WorkerConnectionError(RpcParallelError, ConnectionError):
    """Raised when a worker cannot be reached or the connection to it dropped mid-call."""


class ConnectionClosedError(WorkerConnectionError):
    """Raised when a connection is used after it was closed."""


class WorkerFailedError(RpcParallelError):
    """Passed to ``on_failure`` when a worker failed after a function returned (then it exits 254)."""

    def __init__(self, message: str, *, worker_id: str = "", worker_name: str | None = None,
                 remote_traceback: str = "") -> None:
        super().__init__(message)
        self.worker_id = worker_id
        self.worker_name = worker_name
        self.remote_traceback = remote_traceback


class WorkerCrashedError(RpcParallelError):
    """Passed to ``on_failure`` when a worker process died; says how (exit code or signal)."""

    def __init__(self, message: str, *, worker_id: str = "", worker_name: str | None = None,
                 exit_code: int | None = None, signal: int | None = None,
                 stderr_tail: str = "") -> None:
        super().__init__(message)
        self.worker_id = worker_id
        self.worker_name = worker_name
        self.exit_code = exit_code
        self.signal = signal
        self.stderr_tail = stderr_tail


class SpawnError(RpcParallelError):
    """Raised when a worker process could not be started or registered."""


class SpawnTimeoutError(SpawnError, TimeoutError):
    """Raised when a worker did not register within ``spawn_timeout``; the process is killed."""


class DeadlineExceededError(RpcParallelError, TimeoutError):
    """Raised when a call did not finish by its ``rp.deadline``; the worker's side was cancelled."""


class MessageTooLargeError(RpcParallelError):
    """Raised when a message exceeds ``max_message_size``; both sides live on."""

    def __init__(self, message: str, *, size: int | None = None, limit: int | None = None) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class AuthenticationError(RpcParallelError):
    """Raised when the peer rejected this process's credentials (``UNAUTHENTICATED``)."""


class SettingsError(RpcParallelError, ValueError):
    """Raised for invalid settings or an unparsable ``RPC_PARALLEL_RPC_SETTINGS``."""


class DynamicCallError(RpcParallelError, ValueError):
    """Raised when a function name or JSON argument does not fit the worker type's schema."""
