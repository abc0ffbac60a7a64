"""Pump: the batching hand-off between a stream's producers and its gRPC message generator."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from rpc_parallel._server._pump import Pump


class _SlowAppend(deque[Any]):
    """A queue whose ``append`` lets other threads run right after it: the interleaving in which
    two producers both append before either checks the queue's length."""

    def append(self, item: Any) -> None:
        super().append(item)
        time.sleep(0.05)


def test_items_two_threads_put_at_once_wake_a_waiting_consumer() -> None:
    """A direct pipe's writer may be used from any thread. With two producers appending together,
    each saw a queue of 2 and neither woke the consumer: the items waited for a later put."""
    pump = Pump(shared=True)
    pump._items = _SlowAppend()
    batches = pump.batches()
    got: list[list[int]] = []
    consumer = threading.Thread(target=lambda: got.append(next(batches)), daemon=True)
    consumer.start()
    time.sleep(0.1)  # the consumer waits on the empty queue
    producers = [threading.Thread(target=pump.put, args=(k,)) for k in range(2)]
    for t in producers:
        t.start()
    for t in producers:
        t.join()
    consumer.join(5)
    woke = bool(got)
    pump.finish()  # (if it still waits: let it go)
    consumer.join(5)
    assert woke, "two items were queued, and the consumer still waited"
    assert sorted(got[0] + [item for batch in batches for item in batch]) == [0, 1]


def test_one_producer_items_arrive_in_order_in_batches() -> None:
    pump = Pump(max_batch=100)

    def produce() -> None:
        for i in range(1000):
            pump.put(i)
        pump.finish()

    producer = threading.Thread(target=produce)
    producer.start()
    batches = list(pump.batches())
    producer.join()
    assert [i for b in batches for i in b] == list(range(1000))
    assert max(len(b) for b in batches) <= 100
