"""The worker type every rpc_parallel workload of the benchmark runs."""

from __future__ import annotations

from collections.abc import Iterator

import rpc_parallel as rp


class Bench(rp.Worker):
    """Trivial functions: the benchmark measures the call machinery, not the work."""

    @rp.rpc
    def noop(self) -> None:
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
