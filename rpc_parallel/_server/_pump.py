"""``Pump``: hands stream items from a producer thread to a gRPC message generator in batches.

The producer (a thread running the user's iterator, or a direct writer) appends items one by one;
the consumer takes everything queued so far as one batch. Items produced faster than messages go
out are therefore batched, and a lone item leaves at once. The queue is bounded: a producer that
runs ahead waits (or, from an event loop, is told to back off).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

__all__ = ("Pump",)


class Pump:
    """A bounded, batching hand-off of items from one producer (``shared``: several producer
    threads) to one consumer."""

    def __init__(self, high_water: int = 65536, max_batch: int = 8192, *, shared: bool = False) -> None:
        self._shared = shared  # several producer threads (a direct pipe's writer)
        self._items: deque[Any] = deque()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)  # items arrived, or finished
        self._space = threading.Condition(self._lock)  # the consumer made room, or stopped
        self._high = high_water
        self._max_batch = max_batch
        self._finished = False
        self._stopped = False
        self.error: BaseException | None = None

    @property
    def finished(self) -> bool:
        """True once no more items will be queued (finished, or the consumer stopped)."""
        return self._finished

    @property
    def stopped(self) -> bool:
        """True once the consumer gave up (the call was cancelled): producers should stop."""
        return self._stopped

    def put(self, item: Any, *, block: bool = True) -> bool:
        """Queue ``item``; False if the consumer stopped (or, with ``block=False``, if full)."""
        if self._stopped:
            return False
        items = self._items
        if self._shared:
            with self._lock:
                items.append(item)
                self._ready.notify()
        else:
            items.append(item)
            if len(items) == 1:
                # the consumer waits only on an empty queue, so with one producer only the first
                # item needs a wake-up (two producers could both see 2 and neither wake it)
                with self._lock:
                    self._ready.notify()
        if len(items) > self._high:
            if not block:
                return False
            with self._lock:
                while len(items) > self._high // 2 and not self._stopped:
                    self._space.wait()
        return not self._stopped

    def full(self) -> bool:
        return len(self._items) > self._high

    def finish(self, error: BaseException | None = None) -> None:
        """No more items (``error``: the producer failed); the consumer drains then stops."""
        with self._lock:
            if not self._finished:
                self._finished = True
                self.error = error
            self._ready.notify_all()

    def stop(self) -> None:
        """The consumer is gone: release a waiting producer and refuse further items."""
        with self._lock:
            self._stopped = True
            self._finished = True
            self._ready.notify_all()
            self._space.notify_all()

    def batches(self) -> Iterator[list[Any]]:
        """Batches of queued items until finished; raises the producer's error after the last one."""
        items = self._items
        while True:
            with self._lock:
                while not items and not self._finished:
                    self._ready.wait()
                if not items:
                    break
                n = min(len(items), self._max_batch)
                batch = [items.popleft() for _ in range(n)]
                if len(items) <= self._high // 2:
                    self._space.notify_all()
            yield batch
        if self.error is not None and not self._stopped:
            raise self.error
