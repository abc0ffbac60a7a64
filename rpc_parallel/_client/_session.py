"""Opening a connection: the ``Control/OpenConnection`` handshake both clients share.

The worker checks the caller's schema, runs ``init_connection_state`` and answers with the
connection's id; the stream then stays open for as long as the connection lives, and the worker
ends the connection when it ends. Every later call of the connection names it in metadata.
"""

from __future__ import annotations

import threading
from typing import Any

import grpc

from .._deadline import expired
from .._errors import RpcParallelError, WorkerConnectionError
from .._grpc_errors import ErrorBoundary
from .._handle import WorkerHandle
from .._proto import control_pb2, control_pb2_grpc
from .._protocol import CONN_KEY, TOKEN_KEY

__all__ = ("Metadata", "WouldWait", "call_metadata", "delivering", "in_done_callback", "must_not_wait", "open_session",
           "wait_allowed", "worker_label")

# Set while this thread completes a call's future: its done-callbacks run here, on a thread (gRPC's
# channel thread, a pipeline's reader) that must go on to deliver other calls' results, so calls a
# callback makes never wait for room (or for a pipe to start): that wait could never end.
_CALLBACK = threading.local()


def in_done_callback() -> bool:
    """Whether this thread is delivering a call's result (running its future's callbacks)."""
    return bool(getattr(_CALLBACK, "active", False))


class delivering:
    """``with delivering():`` around setting a future's result or exception."""

    def __enter__(self) -> None:
        _CALLBACK.active = True

    def __exit__(self, *exc: object) -> None:
        _CALLBACK.active = False


class WouldWait(Exception):
    """Raised instead of waiting for room, under ``must_not_wait()``: nothing was sent."""


def wait_allowed() -> bool:
    """Whether a call may wait for room here; raises ``WouldWait`` on a thread that must not block
    (an event loop's, under ``must_not_wait``), which then waits elsewhere."""
    if getattr(_CALLBACK, "no_wait", False):
        raise WouldWait
    return True


class must_not_wait:
    """``with must_not_wait():`` around a call made on an event loop's thread: where it would wait
    for room it raises ``WouldWait`` instead, and the caller waits on a worker thread."""

    def __enter__(self) -> None:
        _CALLBACK.no_wait = True

    def __exit__(self, *exc: object) -> None:
        _CALLBACK.no_wait = False


Metadata = tuple[tuple[str, str], ...]


def open_session(channel: grpc.Channel, request: control_pb2.OpenConnectionRequest, token: str,
                 errors: ErrorBoundary, within: float | None = None) -> tuple[Any, str]:
    """Open a connection on ``channel``: its OpenConnection stream (cancel it to close the
    connection) and its id. With ``within`` (seconds of a caller's deadline), an opening that takes
    longer is cancelled, and ``DeadlineExceededError`` raised."""
    session: Any = control_pb2_grpc.ControlStub(channel).OpenConnection(request, metadata=((TOKEN_KEY, token),))
    lock = threading.Lock()
    late = threading.Event()  # the deadline passed first: the opening is cancelled
    opened = threading.Event()  # the opening won: the timer must not cancel the open connection
    timer = None
    if within is not None:  # the stream outlives the deadline once open: only the opening is timed
        def give_up() -> None:
            with lock:
                if opened.is_set():
                    return
                late.set()
            session.cancel()

        timer = threading.Timer(within, give_up)
        timer.daemon = True
        timer.start()
    try:
        with errors:
            event = next(session)
        with lock:
            opened.set()
        if late.is_set():  # opened as the deadline passed, and cancelled by it
            raise expired()
    except StopIteration:
        raise WorkerConnectionError(f"{errors.worker} closed the connection while opening it") from None
    except RpcParallelError as exc:
        if late.is_set():
            raise expired() from exc
        raise
    finally:
        if timer is not None:
            timer.cancel()
    return session, event.connection_id


def call_metadata(token: str, connection_id: str) -> Metadata:
    """The metadata of every call on a connection: the token and the connection's id."""
    return ((TOKEN_KEY, token), (CONN_KEY, connection_id))


def worker_label(handle: WorkerHandle) -> str:
    """How messages name the worker of ``handle``."""
    return f"worker {handle.name or handle.worker_id}"
