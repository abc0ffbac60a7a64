"""``Threads``: the threads that run plain (``def``) functions for the server's event loop.

A call of a plain function leaves the loop for a thread and comes back: two thread wake-ups,
which on a small machine cost more than the rest of the call. ``loop.run_in_executor`` with a
``ThreadPoolExecutor`` adds a ``concurrent.futures.Future``, a work item and a second hop through
the loop to copy the outcome (about 60 µs a call more here, measured); this pool hands a job over
in one queue and answers the loop's future directly. Each job runs in a copy of the context it was
submitted from, as a task would: context variables a function sets do not reach the next job. As in ``ThreadPoolExecutor``, a job goes to
an idle thread if there is one, else to a new thread, up to a bound (then it waits its turn).
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ._loop import resolve

__all__ = ("Threads",)

_T = TypeVar("_T")
_Job = tuple["asyncio.Future[Any] | None", contextvars.Context, Callable[..., Any], tuple[Any, ...]]


class Threads:
    """Up to ``max_threads`` threads named ``name``, started as needed, running jobs for ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_threads: int, name: str) -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads free to take a job (each job put takes one)
        self._count = 0
        self._max = max_threads
        self._name = name
        self._closed = False

    def run(self, fn: Callable[..., _T], /, *args: Any) -> asyncio.Future[_T]:
        """Run ``fn(*args)`` on a thread; a future of the loop (call from the loop) gets its
        outcome. ``RuntimeError`` after ``shutdown``."""
        future: asyncio.Future[_T] = self._loop.create_future()
        self._put((future, contextvars.copy_context(), fn, args))
        return future

    def submit(self, fn: Callable[..., object], /, *args: Any) -> None:
        """Run ``fn(*args)`` on a thread, from any thread; nobody hears of its outcome (``fn``
        handles its own errors). ``RuntimeError`` after ``shutdown``."""
        self._put((None, contextvars.copy_context(), fn, args))

    def _put(self, job: _Job) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker's threads are shut down")
            if self._idle:
                self._idle -= 1
                start = False
            else:
                start = self._count < self._max
                self._count += start
        self._jobs.put(job)
        if start:
            threading.Thread(target=self._work, name=f"{self._name}-{self._count}", daemon=True).start()

    def _work(self) -> None:
        get, loop = self._jobs.get, self._loop
        while True:
            job = get()
            if job is None:
                return
            future, context, fn, args = job
            try:
                result = context.run(fn, *args)  # in a copy of the caller's context: no call sees another's
            except BaseException as exc:
                if future is not None:
                    loop.call_soon_threadsafe(_fail, future, exc)
            else:
                if future is not None:
                    loop.call_soon_threadsafe(resolve, future, result)
            del job, future, context, fn, args  # (not kept alive while idle)
            with self._lock:
                self._idle += 1

    def shutdown(self) -> None:
        """Refuse new jobs; each thread ends after the jobs queued before this."""
        with self._lock:
            self._closed = True
            count = self._count
        for _ in range(count):
            self._jobs.put(None)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
