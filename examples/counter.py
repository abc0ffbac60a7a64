"""A worker type using every function kind (imported by examples/demo.py and the tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import rpc_parallel as rp


@dataclass
class Point:
    x: float
    y: float


class Counter(rp.Worker):
    """A counter shared by all connections; each connection has its client's name."""

    def init_worker_state(self, start: int) -> None:
        self.total = start
        self.lock = threading.Lock()
        self.log_lines: list[str] = []

    def init_connection_state(self, client: str) -> str:
        return client

    @rp.rpc
    def incr(self, by: int) -> int:
        """Add ``by`` to the counter and return the new total."""
        with self.lock:
            self.total += by
            return self.total

    @rp.rpc
    def whoami(self) -> str:
        return str(self.connection_state)

    @rp.one_way
    def log(self, line: str) -> None:
        self.log_lines.append(line)

    @rp.rpc
    def logged(self) -> list[str]:
        return list(self.log_lines)

    @rp.pipe
    def count_to(self, n: int) -> Iterator[int]:
        yield from range(1, n + 1)

    @rp.state
    def watch(self, n: int) -> tuple[int, Iterator[int]]:
        return self.total, iter(range(self.total + 1, self.total + n + 1))

    @rp.direct_pipe
    def ticks(self, writer: rp.DirectWriter[Point], n: int, every: float) -> None:
        def run() -> None:
            for i in range(n):
                if not writer.write(Point(float(i), float(i * i))):
                    return
                time.sleep(every)
            writer.close()

        threading.Thread(target=run, daemon=True).start()

    @rp.reverse_pipe
    def total_of(self, updates: Iterator[int], scale: int) -> int:
        return scale * sum(updates)

    @rp.rpc
    def boom(self, message: str) -> None:
        """Raise ValueError(message): the caller gets rp.RemoteError and the worker lives on."""
        raise ValueError(message)

    @rp.rpc
    async def slow_double(self, x: int, delay: float = 0.0) -> int:
        import asyncio

        await asyncio.sleep(delay)
        return 2 * x
