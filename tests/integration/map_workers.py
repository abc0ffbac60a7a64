"""Map functions for tests/integration/test_map_reduce.py (importable, so spawned workers find them)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import rpc_parallel as rp


class Inc(rp.MapFunction):
    def map(self, x: int) -> int:
        return x + 1


@dataclass
class Scale:
    factor: int
    label: str


class Scaled(rp.MapFunction):
    """Per-worker init: each output carries its worker's index and the param."""

    def init(self, param: Scale, worker_index: int) -> None:
        self.scale = param
        self.pid = os.getpid()

    def map(self, x: int) -> tuple[int, int, str, int]:
        return x * self.scale.factor, self.worker_index, self.scale.label, self.pid


class Slow(rp.MapFunction):
    """Sleeps ``x`` milliseconds, then says which worker ran it."""

    def map(self, x: float) -> int:
        time.sleep(x / 1000)
        return self.worker_index


class Delayed(rp.MapFunction):
    """Sleeps ``x`` milliseconds, then returns it."""

    def map(self, x: int) -> int:
        time.sleep(x / 1000)
        return x


class Fails(rp.MapFunction):
    def map(self, x: int) -> int:
        if x == 37:
            raise ValueError(f"no {x}")
        return x


class Multiple(rp.MapFunction):
    """The item if it is a multiple of the param (a find_map), else None."""

    def init(self, param: int, worker_index: int) -> None:
        self.of = param

    def map(self, x: int) -> int | None:
        return x if x and x % self.of == 0 else None


class CrashOnce(rp.MapFunction):
    """The worker mapping item ``param[1]`` dies the first time (a marker file ``param[0]`` remembers)."""

    def init(self, param: tuple[str, int], worker_index: int) -> None:
        self.marker, self.item = param

    def map(self, x: int) -> int:
        if x == self.item and not os.path.exists(self.marker):
            with open(self.marker, "w"):
                pass
            os._exit(3)
        return 2 * x


class Concat(rp.MapReduceFunction):
    """Order-preserving: list concatenation is associative, not commutative."""

    def map(self, x: int) -> list[int]:
        return [x]

    def combine(self, a: list[int], b: list[int]) -> list[int]:
        return a + b


class Sum(rp.MapReduceFunction):
    def map(self, x: int) -> int:
        return x

    def combine(self, a: int, b: int) -> int:
        return a + b


class BadCombine(rp.MapReduceFunction):
    def map(self, x: int) -> int:
        return x

    def combine(self, a: int, b: int) -> int:
        raise ArithmeticError("no combining")


class BadInit(rp.MapFunction):
    def init(self, param: int, worker_index: int) -> None:
        raise LookupError(f"init of worker {worker_index} refused {param}")

    def map(self, x: int) -> int:
        return x


class Printing(rp.MapFunction):
    def map(self, x: int) -> int:
        print(f"mapped {x} in {self.worker_index} env {os.environ.get('MAP_TEST')} cwd {os.getcwd()}", flush=True)
        return x


class AsyncSquare(rp.MapReduceFunction):
    async def map(self, x: int) -> int:
        return x * x

    async def combine(self, a: int, b: int) -> int:
        return a + b


class Overlap(rp.MapFunction):
    """How many maps ran at once on this worker, at most (a map need not be thread-safe: one)."""

    def init(self, param: int, worker_index: int) -> None:
        self.running = 0
        self.most = 0

    def map(self, x: int) -> int:
        self.running += 1
        self.most = max(self.most, self.running)
        time.sleep(0.0005)
        self.running -= 1
        return self.most


class BigOut(rp.MapFunction):
    """An output of ``x`` bytes (outputs may outweigh their inputs)."""

    def map(self, x: int) -> bytes:
        return b"x" * x
