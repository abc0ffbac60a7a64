"""The worker type every rpc_parallel workload of the benchmark runs."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator

import rpc_parallel as rp

from ._mp import inc, spin_timed


class Bench(rp.Worker):
    """Trivial functions: the benchmark measures the call machinery, not the work."""

    @rp.rpc
    def noop(self) -> None:
        return None

    @rp.rpc
    async def anoop(self) -> None:
        """``noop`` as an ``async def``: it runs on the worker's event loop, with no thread hop."""
        return None

    @rp.rpc
    def incr(self, x: int) -> int:
        return x + 1

    @rp.rpc
    def size(self, data: bytes) -> int:
        return len(data)

    @rp.pipe
    def ints(self, n: int) -> Iterator[int]:
        yield from range(n)

    @rp.rpc
    def chatter(self, lines_per_s: float) -> None:
        """Print ``lines_per_s`` lines a second to stderr (relayed to the master) until called with 0."""
        previous = getattr(self, "_chatter", None)
        if previous is not None:
            previous.set()
            self._chatter = None
        if lines_per_s > 0:
            stop = self._chatter = threading.Event()

            def talk() -> None:
                n, start = 0, time.monotonic()
                while not stop.is_set():
                    print(f"chatter line {n} from a busy worker", file=sys.stderr)
                    n += 1
                    stop.wait(max(0.0, start + n / lines_per_s - time.monotonic()))

            threading.Thread(target=talk, daemon=True).start()

    @rp.pipe
    def blobs(self, size: int, count: int) -> Iterator[bytes]:
        """``count`` items of ``size`` bytes, as fast as the caller reads them."""
        for _ in range(count):
            yield bytes(size)

    @rp.one_way
    def slow_note(self, payload: bytes, delay: float) -> None:
        time.sleep(delay)

    @rp.rpc
    def rss_mib(self) -> float:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


class BenchInc(rp.MapFunction):
    """x -> x + 1: the map_reduce workload's trivial items."""

    def map(self, x: int) -> int:
        return inc(x)


class BenchSpin(rp.MapFunction):
    """``loops`` iterations of pure Python: the map_reduce workload's CPU-bound items; the seconds
    each took."""

    def map(self, loops: int) -> float:
        return spin_timed(loops)
