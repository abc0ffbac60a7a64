"""Golden declarations: every function kind, plain and async, over the types of DESIGN section 3.

Annotations here are evaluated (no ``from __future__ import annotations``).
"""

import asyncio
import enum
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import rpc_parallel as rp


class Mode(enum.Enum):
    FAST = "fast"
    SAFE = "safe"


@dataclass
class Point:
    x: float
    y: float = 0.0


class Kinds(rp.Worker):
    """One or more functions of each of the six kinds."""

    def init_worker_state(self, start: int) -> None:
        self.total = start

    def init_connection_state(self, client: str | None) -> str:
        return client or "anonymous"

    @rp.rpc
    def add(self, a: int, b: int = 1) -> int:
        """Return a + b."""
        return a + b

    @rp.rpc
    async def scale(self, p: Point, factor: float) -> Point:
        return Point(p.x * factor, p.y * factor)

    @rp.rpc
    def everything(self, i: int, f: float, flag: bool, s: str, raw: bytes, ints: list[int], names: tuple[str, ...],
                   by_name: dict[str, float], by_id: dict[int, Point], maybe: int | None, mode: Mode,
                   handle: rp.WorkerHandle, blob: rp.Pickled[set[int]]) -> None:
        """Take one parameter of every supported type."""

    @rp.one_way
    def log(self, line: str) -> None:
        print(line)

    @rp.one_way
    async def alog(self, line: str, level: int = 0) -> None:
        print(level, line)

    @rp.pipe
    def count_to(self, n: int) -> Iterator[int]:
        yield from range(n)

    @rp.pipe
    async def points(self, n: int) -> AsyncIterator[Point]:
        for i in range(n):
            yield Point(i, -i)

    @rp.state
    def watch(self) -> tuple[int, Iterator[int]]:
        return self.total, iter(())

    @rp.state
    async def awatch(self, every: float) -> tuple[Point | None, AsyncIterator[Mode]]:
        async def updates() -> AsyncIterator[Mode]:
            await asyncio.sleep(every)
            yield Mode.SAFE

        return None, updates()

    @rp.direct_pipe
    def ticks(self, writer: rp.DirectWriter[int], every: float) -> None:
        writer.write(1)

    @rp.direct_pipe
    async def aticks(self, out: rp.DirectWriter[str], *, limit: int = 10) -> None:
        for i in range(limit):
            out.write(str(i))

    @rp.reverse_pipe
    def total_of(self, updates: Iterator[int], scale: int) -> int:
        return scale * sum(updates)

    @rp.reverse_pipe
    async def concat(self, sep: str, parts: AsyncIterator[str]) -> str:
        return sep.join([p async for p in parts])
