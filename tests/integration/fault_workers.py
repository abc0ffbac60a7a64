"""A worker type that fails on purpose, at one point and in one way chosen by ``$RPCPAR_TEST_FAULT``
(``point:mode``), for the fault-injection suite. Spawn it with ``env={FAULT_ENV: "rpc:raise"}``."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

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
