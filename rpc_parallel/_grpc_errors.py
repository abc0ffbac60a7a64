"""The one place where gRPC errors become rpc_parallel errors, and where worker-side failures
become gRPC status plus an ``rpcpar-error-bin`` trailer (``rpc_parallel.v1.ErrorInfo``).

On the caller's side, ``map_rpc_error`` picks the rpc_parallel error for a failed call (the
trailer's ErrorInfo when there is one, else by status code) and chains the gRPC error as its
cause; ``ErrorBoundary`` applies it to every call site that raises (futures and reader threads
that hand the error on call ``map_rpc_error`` themselves).
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any, NoReturn

import grpc
import grpc.aio

from ._errors import (
    AuthenticationError,
    ConnectionClosedError,
    MessageTooLargeError,
    ProtocolError,
    RemoteError,
    RpcParallelError,
    WorkerConnectionError,
)
from ._proto import errors_pb2
from ._protocol import ERROR_KEY

__all__ = ("CallFailed", "ErrorBoundary", "abort", "error_info", "map_error_info", "map_rpc_error", "truncate_middle")

Kind = errors_pb2.ErrorInfo.Kind
# gRPC caps metadata near 8 KiB (soft) / 16 KiB (hard): keep the whole trailer well under that.
_MAX_TEXT = 3000
_TOO_LARGE = re.compile(r"larger than max \((\d+) vs\. (\d+)\)")


def truncate_middle(text: str, limit: int = _MAX_TEXT) -> str:
    """``text`` shortened to about ``limit`` characters by cutting its middle, never its ends."""
    if len(text) <= limit:
        return text
    keep = (limit - 40) // 2
    return f"{text[:keep]}\n... [{len(text) - 2 * keep} characters truncated] ...\n{text[-keep:]}"


def error_info(exc: BaseException, *, kind: int = Kind.REMOTE, worker_id: str = "",
               worker_name: str | None = None, size: int = 0, limit: int = 0) -> errors_pb2.ErrorInfo:
    """Describe ``exc`` (its type, message and traceback) for the caller; an exception that cannot
    be turned into text (its ``__str__`` raises) is described as such."""
    try:
        message = str(exc)
    except Exception as e:
        message = f"<{_type_name(exc)} whose str() raised {type(e).__name__}>"
    try:
        tb = "".join(traceback.format_exception(exc))
    except Exception:
        tb = "".join(traceback.format_tb(exc.__traceback__)) + message
    return errors_pb2.ErrorInfo(
        kind=kind, type=_type_name(exc), message=truncate_middle(message), traceback=truncate_middle(tb),  # type: ignore[arg-type]
        worker_id=worker_id, worker_name=worker_name or "", size=size, limit=limit)


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


_STATUS = {
    Kind.REMOTE: grpc.StatusCode.UNKNOWN,
    Kind.PROTOCOL: grpc.StatusCode.FAILED_PRECONDITION,
    Kind.TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Kind.CONNECTION_CLOSED: grpc.StatusCode.FAILED_PRECONDITION,
    Kind.BAD_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    Kind.NOT_HOSTED: grpc.StatusCode.NOT_FOUND,
}


class CallFailed(Exception):
    """A call that failed on the worker, described for its caller: ``abort`` it with ``info``, or
    (a pipelined call) send ``info`` as its result."""

    def __init__(self, info: errors_pb2.ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


async def abort(context: grpc.aio.ServicerContext[Any, Any], info: errors_pb2.ErrorInfo) -> NoReturn:
    """End the current call (of a ``grpc.aio`` server) with ``info`` as status and trailer."""
    context.set_trailing_metadata(((ERROR_KEY, info.SerializeToString()),))
    await context.abort(_STATUS[info.kind], truncate_middle(f"{info.type}: {info.message}", 1000))
    raise AssertionError("unreachable")  # context.abort raises


class ErrorBoundary:
    """The caller's error boundary: ``with ErrorBoundary("worker w"): call()`` raises, for a
    ``grpc.RpcError`` leaving the block, the error ``map_rpc_error`` makes of it (chained: the gRPC
    error is its ``__cause__``). Stateless, so one instance serves every call to a peer, on any thread.
    """

    __slots__ = ("closing", "reaching", "timeout", "worker")

    def __init__(self, worker: str = "worker", *, reaching: str | None = None,
                 timeout: Callable[[], RpcParallelError] | None = None,
                 closing: Callable[[], bool] | None = None) -> None:
        self.worker = worker
        self.reaching = reaching
        self.timeout = timeout
        self.closing = closing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if isinstance(exc, grpc.RpcError):
            raise map_rpc_error(exc, worker=self.worker, reaching=self.reaching, timeout=self.timeout,
                                closing=self.closing) from exc


def map_rpc_error(exc: grpc.RpcError, *, worker: str = "worker", reaching: str | None = None,
                  timeout: Callable[[], RpcParallelError] | None = None,
                  closing: Callable[[], bool] | None = None) -> RpcParallelError:
    """The rpc_parallel error for a failed gRPC call, its ``__cause__`` set to ``exc``.

    ``reaching`` (the peer's address): the call was the first contact with the peer, so
    ``UNAVAILABLE`` means it could not be reached there. ``timeout`` makes the error for
    ``DEADLINE_EXCEEDED`` (by default a ``WorkerConnectionError``). ``closing()`` true: the caller
    has closed the connection, so a call it cut off gets ``ConnectionClosedError``.
    """
    code = exc.code() if hasattr(exc, "code") else None
    error: RpcParallelError
    if closing is not None and code in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE) and closing():
        error = ConnectionClosedError(f"the connection to {worker} was closed while this call was in flight")
    else:
        error = _mapped(exc, worker, reaching, timeout)
    error.__cause__ = exc
    return error


def _mapped(exc: grpc.RpcError, worker: str, reaching: str | None,
            timeout: Callable[[], RpcParallelError] | None) -> RpcParallelError:
    code: grpc.StatusCode | None = exc.code() if hasattr(exc, "code") else None
    details: str = (exc.details() if hasattr(exc, "details") else "") or ""
    info = _trailer(exc)
    if info is not None:
        return map_error_info(info, worker=worker)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        m = _TOO_LARGE.search(details)
        size, limit = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        side = "sending" if "Sent" in details else "receiving"
        return MessageTooLargeError(f"message of {size} bytes exceeds max_message_size {limit} ({side}; {details})",
                                    size=size, limit=limit)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return AuthenticationError(f"{worker} rejected our credentials: {details}")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return ProtocolError(f"{worker} does not implement this function ({details}); "
                             "is it running the same worker type?")
    if code == grpc.StatusCode.UNAVAILABLE and reaching is not None:
        return WorkerConnectionError(f"could not reach {worker} at {reaching}: {details}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED and timeout is not None:
        return timeout()
    return WorkerConnectionError(f"lost the connection to {worker}: {code.name if code else 'error'}: {details}")


def map_error_info(info: errors_pb2.ErrorInfo, *, worker: str = "worker") -> RpcParallelError:
    """The rpc_parallel error for a worker-side failure described by ``info``."""
    where: dict[str, Any] = {"worker_id": info.worker_id, "worker_name": info.worker_name or None}
    if info.kind == Kind.TOO_LARGE:
        return MessageTooLargeError(f"{info.message} (at {worker})", size=info.size, limit=info.limit)
    if info.kind == Kind.PROTOCOL:
        return ProtocolError(info.message)
    if info.kind == Kind.CONNECTION_CLOSED:  # the worker's side ended it (the caller's own close is not asked)
        return WorkerConnectionError(f"{worker}: {info.message}")
    if info.kind == Kind.NOT_HOSTED:
        return WorkerConnectionError(f"{worker}: {info.message}")
    return RemoteError(info.type, info.message, info.traceback, **where)  # REMOTE, BAD_REQUEST


def _trailer(exc: grpc.RpcError) -> errors_pb2.ErrorInfo | None:
    trailing: Any = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == ERROR_KEY:
            info = errors_pb2.ErrorInfo()
            try:
                info.ParseFromString(value)
            except Exception:
                return None
            return info
    return None
