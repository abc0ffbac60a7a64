"""``rp.deadline``: a time by which every call started inside the block must finish.

The deadline is a context variable, so it follows the code that sets it, thread by thread and task
by task (``asyncio.to_thread`` and tasks copy it). Nested deadlines: the earliest wins.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

from ._errors import DeadlineExceededError

__all__ = ("deadline", "expired", "remaining")

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("rpc_parallel_deadline", default=None)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every call started in the block (``run``, ``submit``, pipes, ``connect``, ``spawn``, in
    ``rp.aio`` too) must finish within ``seconds``, or raises ``rp.DeadlineExceededError``; the
    worker's side of the call is cancelled, and the worker lives on."""
    if not seconds >= 0:
        raise ValueError(f"a deadline is a number of seconds from now, >= 0, not {seconds!r}")
    at = time.monotonic() + seconds
    current = _DEADLINE.get()
    token = _DEADLINE.set(at if current is None else min(current, at))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining() -> float | None:
    """Seconds left before the current deadline (None: no deadline); ``DeadlineExceededError`` if
    it has passed already."""
    at = _DEADLINE.get()
    if at is None:
        return None
    left = at - time.monotonic()
    if left <= 0:
        raise expired()
    return left


def expired() -> DeadlineExceededError:
    """The error of a call that did not finish by its deadline."""
    return DeadlineExceededError("the call did not finish by its rp.deadline; the worker's side of it was cancelled")
