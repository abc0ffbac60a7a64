"""Client-streaming calls (reverse pipes): the caller's own iterable feeds the request stream."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from .._grpc_errors import ErrorBoundary
from ._session import Metadata

__all__ = ("upload",)


def upload(call: Any, messages: Iterator[bytes], metadata: Metadata, errors: ErrorBoundary,
           timeout: float | None = None) -> bytes:
    """Send ``messages`` on the client-streaming multicallable ``call``; its reply.

    ``messages`` runs on gRPC's thread. If it raises (the caller's iterable failed, or one of its
    items has the wrong type), the call is cancelled, so the worker's side of it ends and the
    worker lives on, and that exception is raised here, as the caller's own.
    """
    failed: list[BaseException] = []
    started = threading.Event()
    holder: list[Any] = []

    def guarded() -> Iterator[bytes]:
        try:
            yield from messages
        except Exception as exc:  # raising it in gRPC's thread would only log "Exception iterating requests!"
            failed.append(exc)
            started.wait()
            holder[0].cancel()

    future = call.future(guarded(), metadata=metadata, timeout=timeout)
    holder.append(future)
    started.set()
    try:
        with errors:
            reply: bytes = future.result()
    except Exception:  # grpc.FutureCancelledError when we cancelled, or the call's own error
        if failed:
            raise failed[0] from None
        raise
    if failed:  # the worker answered without reading the rest: the caller's failure still counts
        raise failed[0]
    return reply
