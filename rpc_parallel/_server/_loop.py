"""The worker's event loop: one lazily started thread where ``async def`` functions run."""

from __future__ import annotations

import asyncio
import sys
import threading
import traceback
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

__all__ = ("on_loop", "on_loop_exception", "resolve", "run_coroutine", "worker_loop")

T = TypeVar("T")
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_exception_hook: Callable[[BaseException], None] | None = None


def on_loop_exception(hook: Callable[[BaseException], None]) -> None:
    """Report exceptions nobody awaited (background tasks) to ``hook``."""
    global _exception_hook
    _exception_hook = hook


def _handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    exc = context.get("exception")
    if exc is not None and _exception_hook is not None:
        _exception_hook(exc)
    else:
        loop.default_exception_handler(context)


def worker_loop() -> asyncio.AbstractEventLoop:
    """The process's worker event loop, started on first use in a daemon thread."""
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            loop.set_exception_handler(_handle)
            threading.Thread(target=_run, args=(loop,), name="rpc_parallel-loop", daemon=True).start()
            _loop = loop
        return _loop


def _run(loop: asyncio.AbstractEventLoop) -> None:
    """Run ``loop`` for good. asyncio lets ``SystemExit`` (``sys.exit()`` in a task) out of
    ``run_forever``: it goes to the hook (a worker exits with its code) and the loop goes on, so
    the server on it, and every other worker served in this process, keeps answering meanwhile."""
    while True:
        try:
            loop.run_forever()
            return
        except (SystemExit, KeyboardInterrupt) as exc:
            if _exception_hook is not None:
                _exception_hook(exc)
            else:
                traceback.print_exception(exc, file=sys.stderr)


def run_coroutine(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the worker loop and wait for its result from this (non-loop) thread; what
    it raises, ``SystemExit`` included, is raised here (and does not reach the loop).
    ``concurrent.futures.TimeoutError`` if it has not ended within ``timeout`` seconds."""
    ok, value = asyncio.run_coroutine_threadsafe(_contained(coro), worker_loop()).result(timeout)
    if not ok:
        raise value
    return cast(T, value)


async def _contained(coro: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
    try:
        return True, await coro
    except BaseException as exc:  # handed to the waiting thread, which raises it
        return False, exc


def on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether this thread runs ``loop``."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def resolve(future: asyncio.Future[Any], result: Any = None) -> None:
    """Set ``future``'s result unless it is done already (cancelled: its waiter is gone)."""
    if not future.done():
        future.set_result(result)
