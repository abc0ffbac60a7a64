"""Worker types of the remote tests: they report where they run and how they were started."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator

import rpc_parallel as rp


class Probe(rp.Worker):
    """Counts its calls and says where it runs."""

    def init_worker_state(self, start: int = 0) -> None:
        self.total = start
        self.calls = 0

    @rp.rpc
    def incr(self, by: int) -> int:
        self.calls += 1
        self.total += by
        return self.total

    @rp.rpc
    def calls_so_far(self) -> int:
        return self.calls

    @rp.rpc
    def where(self) -> dict[str, str]:
        """Hostname, pid, cwd, umask, CPU affinity and two variables of the environment."""
        mask = os.umask(0)
        os.umask(mask)
        return {"hostname": socket.gethostname(), "pid": str(os.getpid()), "cwd": os.getcwd(), "umask": oct(mask),
                "cpus": ",".join(str(c) for c in sorted(os.sched_getaffinity(0))),
                "SPAWN_ENV": os.environ.get("SPAWN_ENV", ""), "SLURMD_NODENAME": os.environ.get("SLURMD_NODENAME", "")}

    @rp.rpc
    def say(self, line: str) -> None:
        """Print ``line`` on stdout and ``line`` + "!" on stderr (the relay carries both)."""
        print(line, flush=True)
        print(line + "!", file=sys.stderr, flush=True)

    @rp.rpc
    def call_other(self, other: rp.WorkerHandle, by: int) -> int:
        """Connect to another worker (on another host) and call its ``incr``."""
        with Probe.connect(other) as conn:
            return conn.run(Probe.incr, by)

    @rp.pipe
    def count(self, n: int) -> Iterator[int]:
        yield from range(n)

    @rp.rpc
    def echo(self, data: bytes) -> bytes:
        return data

    @rp.rpc
    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class Square(rp.MapFunction):
    def map(self, x: int) -> tuple[int, str]:
        return x * x, os.environ.get("SLURMD_NODENAME") or socket.gethostname()
