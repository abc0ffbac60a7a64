"""Worker types for tests/integration/test_flow_control.py (importable, so spawned workers find them)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator

import psutil

import rpc_parallel as rp


def _rss_mib() -> float:
    return psutil.Process(os.getpid()).memory_info().rss / (1 << 20)


class Flow(rp.Worker):
    def init_worker_state(self) -> None:
        self.produced = 0
        self.ran = 0
        self.gate = threading.Event()
        self.peak_mib = _rss_mib()
        self.shut = asyncio.Event()  # set by open_gate: the gated calls (on the worker's event loop) go on
        self.notes: list[int] = []
        self.echoes: list[list[int]] = []

    @rp.pipe
    def blobs(self, size: int, count: int) -> Iterator[bytes]:
        """``count`` items of ``size`` bytes, as fast as the caller lets it."""
        for _ in range(count):
            self.produced += 1
            yield bytes(size)

    @rp.direct_pipe
    def many_before_return(self, writer: rp.DirectWriter[int], n: int) -> None:
        """Writes every item before it returns (OCaml queued these until the return)."""
        for i in range(n):
            writer.write(i)
        writer.close()

    @rp.one_way
    def slow_note(self, payload: bytes, delay: float) -> None:
        time.sleep(delay)
        self.ran += 1
        self.peak_mib = max(self.peak_mib, _rss_mib())

    @rp.rpc
    def slow_echo(self, payload: bytes, delay: float) -> int:
        time.sleep(delay)
        self.peak_mib = max(self.peak_mib, _rss_mib())
        return len(payload)

    @rp.rpc
    def counts(self) -> list[int]:
        return [self.produced, self.ran]

    @rp.rpc
    def rss_mib(self) -> float:
        self.peak_mib = max(self.peak_mib, _rss_mib())
        return self.peak_mib

    @rp.one_way
    async def gated_note(self, i: int) -> None:
        await self.shut.wait()
        self.notes.append(i)

    @rp.rpc
    async def open_gate(self) -> list[int]:
        """Let the gated calls go on; the gated notes that ran before."""
        self.shut.set()
        await asyncio.sleep(0)
        return self.notes

    @rp.rpc
    def echo_ints(self, xs: list[int]) -> list[int]:
        self.echoes.append(xs)
        return xs

    @rp.rpc
    def echoed(self) -> list[list[int]]:
        return self.echoes
