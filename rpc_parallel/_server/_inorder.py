"""One-way calls of one connection run one at a time, in the order the caller made them.

A one_way is a unary call acknowledged on receipt, so two of them race between the client's
channel and the worker's thread pool. The rpc_parallel client numbers each connection's one-way
calls (``rpcpar-seq`` metadata, from 0); the worker queues each as it arrives and runs them by
number, as OCaml's single-threaded worker runs a connection's one-way messages in order. A call
that arrives but cannot run (a bad request) still takes its number, so later ones never wait on it;
when the connection ends, calls still waiting for a number that never came run anyway, in order,
and so does a call that arrives after that, last.
Calls without a number (other gRPC clients) run at once, in no particular order.

Both queues are bounded (calls and bytes): a call that finds one full waits before it is
acknowledged, so a caller that sends faster than the worker runs waits too (its client bounds what
it has in flight). The calls ready to run drain by themselves; of the calls waiting for a lower
number, the lowest number not yet received never waits for room (they need it to run, and it is in
flight: each call has its own gRPC thread). So a waiting call always gets its turn.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

__all__ = ("InOrder",)


class InOrder:
    """The one-way calls of one connection: ``put(seq, job)`` in any order; jobs run on
    ``executor`` one at a time, by ``seq`` (0, 1, 2, ...)."""

    def __init__(self, executor: Executor, max_calls: int = 64, max_bytes: int = 32 << 20) -> None:
        self._executor = executor
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # a queued call started, or the connection ended
        self._next = 0  # the lowest number not yet put
        self._early: dict[int, Callable[[], None] | None] = {}  # put, waiting for lower numbers
        self._ready: deque[Callable[[], None]] = deque()
        self._sizes: dict[Callable[[], None], int] = {}
        self._ready_bytes = 0
        self._early_bytes = 0
        self._max_calls = max_calls
        self._max_bytes = max_bytes
        self._flushed = False
        self._running = False
        self._blocked: dict[int, int] = {}  # numbers of the calls waiting for room -> how many
        self._late: list[tuple[int, int, Callable[[], None] | None, int]] = []  # put after flush, by number
        self._late_order = itertools.count()

    def put(self, seq: int, job: Callable[[], None] | None, size: int = 0, *, wait: bool = True) -> bool:
        """Queue call ``seq`` of ``size`` bytes (``job`` None: the call takes its number but runs
        nothing), first waiting while the queue is full; with ``wait=False``, return False instead
        of waiting: the call keeps its place among those waiting, and ``resume`` (on a thread that
        may wait) queues it. ``ValueError`` if ``seq`` was already put; ``RuntimeError`` if the
        executor is shut down. After ``flush`` (a call that arrived as its connection ended, or
        waited for room then), the job runs after those queued, in number order among such calls."""
        with self._lock:
            self._blocked[seq] = self._blocked.get(seq, 0) + 1
            if not wait and self._must_wait(seq, size):
                return False  # still counted as blocked: resume waits on
            start = self._queue(seq, job, size)
        if start:
            self._submit()
        return True

    def resume(self, seq: int, job: Callable[[], None] | None, size: int = 0) -> None:
        """Queue call ``seq`` that ``put(..., wait=False)`` left waiting, once there is room."""
        with self._lock:
            start = self._queue(seq, job, size)
        if start:
            self._submit()

    def _must_wait(self, seq: int, size: int) -> bool:
        return not self._flushed and (self._full(self._ready, self._ready_bytes, size) or (
            seq != self._next and self._full(self._early, self._early_bytes, size)))

    def _queue(self, seq: int, job: Callable[[], None] | None, size: int) -> bool:
        """With the lock held and ``seq`` counted as blocked: wait for room, then queue the call;
        whether the caller must start a drain (``_submit``, once it released the lock)."""
        try:
            while self._must_wait(seq, size):
                self._room.wait()
        finally:
            self._blocked[seq] -= 1
            if not self._blocked[seq]:
                del self._blocked[seq]
        if self._flushed:
            heapq.heappush(self._late, (seq, next(self._late_order), job, size))
            # by number, but not past a lower number still waiting to be put (woken after us)
            while self._late and (not self._blocked or self._late[0][0] < min(self._blocked)):
                _, _, late, late_size = heapq.heappop(self._late)
                if late is not None:
                    self._ready.append(late)
                    self._sizes[late] = late_size
                    self._ready_bytes += late_size
            return self._claim()
        elif seq < self._next or seq in self._early:
            raise ValueError(f"one-way call number {seq} was already received on this connection")
        else:
            self._early[seq] = job
            if job is not None:
                self._sizes[job] = size
                self._early_bytes += size
            while self._next in self._early:
                ready = self._early.pop(self._next)
                self._next += 1
                if ready is not None:
                    self._ready.append(ready)
                    moved = self._sizes.get(ready, 0)
                    self._early_bytes -= moved
                    self._ready_bytes += moved
                self._room.notify_all()  # a waiting call may be the next one now
            return self._claim()

    def _full(self, queue: deque[Any] | dict[int, Any], queued_bytes: int, size: int) -> bool:
        """Whether a call of ``size`` bytes finds ``queue`` full (an empty one takes any call)."""
        return bool(queue) and (len(queue) >= self._max_calls or queued_bytes + size > self._max_bytes)

    def flush(self) -> None:
        """The connection ended: no lower number will come, so run every call still waiting, in order."""
        with self._lock:
            self._flushed = True
            self._room.notify_all()
            for seq in sorted(self._early):
                job = self._early.pop(seq)
                if job is not None:
                    self._ready.append(job)
                    moved = self._sizes.get(job, 0)
                    self._early_bytes -= moved
                    self._ready_bytes += moved
                self._next = seq + 1
            start = self._claim()
        if start:
            self._submit()

    def _claim(self) -> bool:
        """With the lock held: whether the caller must start a drain (there is work and none runs)."""
        if self._ready and not self._running:
            self._running = True
            return True
        return False

    def _submit(self) -> None:
        try:
            self._executor.submit(self._drain)
        except BaseException:
            with self._lock:
                self._running = False
            raise

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._ready:
                    self._running = False
                    return
                job = self._ready.popleft()
                self._ready_bytes -= self._sizes.pop(job, 0)
                self._room.notify_all()
            try:
                job()
            except BaseException:
                self._submit()  # still claimed: the rest runs on another thread
                raise
