"""``Pump``: hands stream items from producers to a gRPC message generator in batches.

The producer (a thread running the user's iterator, a task on the event loop, or a direct writer)
appends items one by one; the consumer, an async generator on the server's event loop, takes what
is queued so far as one batch. Items produced faster than messages go out
are therefore batched, and a lone item leaves at once. The queue is bounded by items and by bytes
(``len`` of bytes and str items, ``sys.getsizeof`` of others): a producer that runs ahead waits
(a producer on the event loop is never blocked: it is told the queue is full), so a caller that stops reading stops the worker
from filling its memory. A batch is bounded the same way, so one message never gathers more than
``max_batch_bytes`` (but for one larger item).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from ._loop import on_loop, resolve

__all__ = ("Pump", "item_size")

HIGH_ITEMS = 65536
HIGH_BYTES = 8 << 20  # unsent bytes a stream may hold in the worker (DESIGN.md section 10)
BATCH_ITEMS = 8192
BATCH_BYTES = 1 << 20
OTHER_WEIGHT = 64

_SIZED = frozenset({bytes, str, bytearray})


def item_size(item: Any) -> int:
    """What an item weighs in the queue, cheaply: the length of a bytes or str item, else a fixed
    weight (a structured item holding large values counts as small: the item bound limits those)."""
    return len(item) + 48 if type(item) in _SIZED else OTHER_WEIGHT


class Pump:
    """A bounded, batching hand-off of items from one producer (``shared``: several producer
    threads) to one consumer on ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, high_water: int = HIGH_ITEMS, max_batch: int = BATCH_ITEMS,
                 *, high_bytes: int = HIGH_BYTES, max_batch_bytes: int = BATCH_BYTES, shared: bool = False) -> None:
        self._loop = loop
        self._waiter: asyncio.Future[None] | None = None  # the consumer waits on an empty queue
        self._room: asyncio.Future[None] | None = None  # a producer on the loop waits for room (``room``)
        self._shared = shared  # several producer threads (a direct pipe's writer)
        self._items: deque[Any] = deque()
        # bytes queued = put - taken; each counter has one writer (the producer, the consumer), so
        # the single producer needs no lock for it
        self._put_bytes = 0
        self._taken_bytes = 0
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)  # the consumer made room, or stopped
        self._high = high_water
        self._high_bytes = high_bytes
        self._max_batch = max_batch
        self._max_batch_bytes = max_batch_bytes
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

    def _wake(self) -> None:
        """With the lock held: wake the consumer if it waits."""
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._loop.call_soon_threadsafe(resolve, waiter)

    def put(self, item: Any, *, block: bool = True) -> bool:
        """Queue ``item``; False if the consumer stopped (or, with ``block=False`` or on the
        consumer's event loop, if full: a wait there would stop the consumer too)."""
        if self._stopped:
            return False
        size = len(item) + 48 if type(item) in _SIZED else OTHER_WEIGHT  # item_size, inlined
        items = self._items
        if self._shared:
            with self._lock:
                items.append(item)
                self._put_bytes += size
                self._wake()
        else:
            items.append(item)
            self._put_bytes += size
            if len(items) == 1:
                # the consumer waits only on an empty queue, so with one producer only the first
                # item needs a wake-up (two producers could both see 2 and neither wake it)
                with self._lock:
                    self._wake()
        if len(items) > self._high or self._put_bytes - self._taken_bytes > self._high_bytes:  # full()
            if not block or on_loop(self._loop):
                return False
            with self._lock:
                while self._above(2) and not self._stopped:
                    self._space.wait()
        return not self._stopped

    def _above(self, fraction: int) -> bool:
        """Whether the queue holds more than ``1/fraction`` of its bounds (items or bytes)."""
        return (len(self._items) > self._high // fraction
                or self._put_bytes - self._taken_bytes > self._high_bytes // fraction)

    def full(self) -> bool:
        return self._above(1)

    def finish(self, error: BaseException | None = None) -> None:
        """No more items (``error``: the producer failed); the consumer drains then stops."""
        with self._lock:
            if not self._finished:
                self._finished = True
                self.error = error
            self._wake()

    def stop(self) -> None:
        """The consumer is gone: release a waiting producer and refuse further items."""
        with self._lock:
            self._stopped = True
            self._finished = True
            self._wake()
            self._space.notify_all()
            room, self._room = self._room, None
        if room is not None:
            self._loop.call_soon_threadsafe(resolve, room)

    async def room(self) -> None:
        """For a producer on the loop, what a producer thread's ``put`` does: if the queue is full,
        wait until the consumer took it down to half its bounds (or stopped)."""
        if not self.full():
            return
        while True:
            with self._lock:
                if self._stopped or not self._above(2):
                    return
                room = self._room = self._room or self._loop.create_future()
            await room

    async def batches(self) -> AsyncIterator[list[Any]]:
        """Batches of queued items until finished; raises the producer's error after the last one."""
        items = self._items
        while True:
            with self._lock:
                if not items and not self._finished:
                    waiter = self._waiter = self._loop.create_future()
                else:
                    waiter = None
            if waiter is not None:
                await waiter
                continue
            with self._lock:
                if not items:
                    break
                popleft = items.popleft
                batch = [popleft() for _ in range(min(len(items), self._max_batch))]
                taken = sum(map(item_size, batch))
                while taken > self._max_batch_bytes and len(batch) > 1:  # large items: fewer per message
                    last = batch.pop()
                    items.appendleft(last)
                    taken -= item_size(last)
                self._taken_bytes += taken
                if not self._above(2):
                    self._space.notify_all()
                    room, self._room = self._room, None
                    if room is not None:
                        resolve(room)  # (the consumer runs on the loop)
            yield batch
        if self.error is not None and not self._stopped:
            raise self.error
