"""A worker type that fails on purpose, at one point and in one way chosen by ``$RPCPAR_TEST_FAULT``
(``point:mode``), for the fault-injection suite. Spawn it with ``env={FAULT_ENV: "rpc:raise"}``."""

from __future__ import annotations

import enum
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import rpc_parallel as rp

FAULT_ENV = "RPCPAR_TEST_FAULT"
POINTS = ("import", "init_worker_state", "init_connection_state", "rpc", "pipe", "reverse_pipe", "background",
          "serialization")
MODES = ("raise", "exit", "_exit", "sigkill", "sigstop")


_fired = threading.Event()


def fault_at(point: str) -> None:
    """Fail here, once per process, if ``$RPCPAR_TEST_FAULT`` names ``point``."""
    where, _, mode = os.environ.get(FAULT_ENV, "").partition(":")
    if where != point or _fired.is_set():
        return
    _fired.set()
    if mode == "raise":
        raise RuntimeError(f"injected fault at {point}")
    if mode == "exit":
        sys.exit(3)
    if mode == "_exit":
        os._exit(7)
    if mode == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "sigstop":
        os.kill(os.getpid(), signal.SIGSTOP)
    time.sleep(60)  # a signal is delivered asynchronously: do not go on past the fault


fault_at("import")


class Bomb:
    """Pickling it is the fault at point ``serialization``."""

    def __reduce__(self) -> tuple[object, ...]:
        fault_at("serialization")
        return (Bomb, ())


class Faulty(rp.Worker):
    def init_worker_state(self, arg: int) -> None:
        fault_at("init_worker_state")

    def init_connection_state(self, arg: int) -> None:
        fault_at("init_connection_state")

    @rp.rpc
    def ping(self) -> str:
        return "pong"

    @rp.rpc
    def call(self) -> int:
        fault_at("rpc")
        return 1

    @rp.pipe
    def items(self) -> Iterator[int]:
        yield from (1, 2, 3)
        fault_at("pipe")
        yield 4

    @rp.reverse_pipe
    def consume(self, xs: Iterator[int]) -> int:
        total = 0
        for i, x in enumerate(xs):
            total += x
            if i == 1:
                fault_at("reverse_pipe")
        return total

    @rp.rpc
    def start_background(self) -> str:
        def later() -> None:
            time.sleep(0.2)
            fault_at("background")

        threading.Thread(target=later).start()
        return "started"

    @rp.rpc
    def result(self) -> rp.Pickled[Bomb]:
        return Bomb()


class Color(enum.Enum):
    RED = 1
    GREEN = 2


@dataclass
class Point:
    x: float
    y: float
    tags: list[str]


class Sink(rp.Worker):
    """Functions of every kind and many argument types, cheap for any input: the fuzzing target.
    No connection state, so a plain gRPC client may call it."""

    def init_worker_state(self, arg: int) -> None:
        self.calls = 0

    @rp.rpc
    def ping(self) -> int:
        return self.calls

    @rp.rpc
    def many(self, a: int, b: str, c: list[float], d: dict[str, int], e: Point | None, f: Color,
             g: bytes, h: bool | None) -> int:
        self.calls += 1
        return len(b) + len(c) + len(d) + len(g)

    @rp.rpc
    def unpickle(self, x: rp.Pickled[object]) -> str:
        self.calls += 1
        return type(x).__name__

    @rp.one_way
    def note(self, line: str, p: Point) -> None:
        self.calls += 1

    @rp.pipe
    def few(self, n: int, p: Point) -> Iterator[Point]:
        self.calls += 1
        for i in range(min(abs(n), 3)):
            yield Point(float(i), 0.0, [])

    @rp.state
    def watch(self, x: int) -> tuple[int, Iterator[str]]:
        self.calls += 1
        return x, iter(["a", "b"])

    @rp.direct_pipe
    def push(self, writer: rp.DirectWriter[int], n: int) -> None:
        self.calls += 1
        writer.write(n)
        writer.close()

    @rp.reverse_pipe
    def fold(self, xs: Iterator[Point], scale: float) -> float:
        self.calls += 1
        return scale * sum(p.x for i, p in zip(range(100), xs, strict=False))
