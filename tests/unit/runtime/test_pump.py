"""Pump: the batching hand-off between a stream's producers and its gRPC message generator (an
async generator on the server's event loop)."""

from __future__ import annotations

import asyncio
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
    async def main() -> None:
        pump = Pump(asyncio.get_running_loop(), shared=True)
        pump._items = _SlowAppend()
        batches = pump.batches()
        first = asyncio.ensure_future(anext(batches))
        await asyncio.sleep(0.1)  # the consumer waits on the empty queue
        producers = [threading.Thread(target=pump.put, args=(k,)) for k in range(2)]
        for t in producers:
            t.start()
        await asyncio.to_thread(lambda: [t.join() for t in producers])
        done, _ = await asyncio.wait([first], timeout=5)
        pump.finish()  # (if it still waits: let it go)
        assert done, "two items were queued, and the consumer still waited"
        assert sorted(first.result() + [item async for batch in batches for item in batch]) == [0, 1]

    asyncio.run(main())


def test_one_producer_items_arrive_in_order_in_batches() -> None:
    async def main() -> None:
        pump = Pump(asyncio.get_running_loop(), max_batch=100)

        def produce() -> None:
            for i in range(1000):
                pump.put(i)
            pump.finish()

        producer = threading.Thread(target=produce)
        producer.start()
        batches = [b async for b in pump.batches()]
        producer.join()
        assert [i for b in batches for i in b] == list(range(1000))
        assert max(len(b) for b in batches) <= 100

    asyncio.run(main())


def test_a_producer_on_the_consumers_loop_is_told_it_is_full_rather_than_blocked() -> None:
    """A wait on the loop would stop the consumer too: put returns False once the bound is passed."""
    async def main() -> None:
        pump = Pump(asyncio.get_running_loop(), high_water=3)
        assert [pump.put(i) for i in range(5)] == [True, True, True, False, False]
        pump.finish()
        assert [i async for b in pump.batches() for i in b] == [0, 1, 2, 3, 4]

    asyncio.run(main())


def test_a_producer_thread_waits_for_room_until_the_consumer_takes_a_batch() -> None:
    async def main() -> None:
        pump = Pump(asyncio.get_running_loop(), high_water=4, max_batch=100)
        done = threading.Event()

        def produce() -> None:
            for i in range(10):
                pump.put(i)
            done.set()
            pump.finish()

        threading.Thread(target=produce, daemon=True).start()
        await asyncio.sleep(0.2)
        assert not done.is_set()  # above the bound: it waits
        got = [i async for b in pump.batches() for i in b]
        assert got == list(range(10)) and done.is_set()

    asyncio.run(main())
