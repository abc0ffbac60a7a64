"""Worker types for tests/integration/test_first_day.py (importable, so spawned workers find them)."""

from __future__ import annotations

import dataclasses
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator

import rpc_parallel as rp


class Bus(rp.Worker):
    """Publish/subscribe: OCaml's subscribe-then-trigger pattern, and an init that takes no argument."""

    def init_worker_state(self) -> None:
        self.subscribers: list[queue.SimpleQueue[int]] = []
        self.generator_started = threading.Event()

    @rp.pipe
    def events(self) -> Iterator[int]:
        """A plain function: it subscribes, then returns the iterator of what is published."""
        q: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.subscribers.append(q)
        return iter(q.get, -1)

    @rp.pipe
    def events_via_generator(self) -> Iterator[int]:
        """A plain function too, returning a generator: it has started once it returned."""
        q: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.subscribers.append(q)
        return (x for x in iter(q.get, -1))

    @rp.pipe
    def generated(self) -> Iterator[int]:
        """A generator: it has started once it yields its first item."""
        self.generator_started.set()
        yield 0

    @rp.rpc
    def subscriber_count(self) -> int:
        return len(self.subscribers)

    @rp.rpc
    def was_generator_started(self) -> bool:
        return self.generator_started.is_set()

    @rp.rpc
    def publish(self, value: int) -> None:
        for q in self.subscribers:
            q.put(value)

    @rp.one_way
    def crash_later(self, message: str) -> None:
        raise RuntimeError(message)

    @rp.reverse_pipe
    def total(self, xs: Iterator[int]) -> int:
        return sum(xs)

    @rp.rpc
    def apply(self, f: rp.Pickled[Callable[[int, int], int]], a: int, b: int) -> int:
        return f(a, b)


_STDOUT_AT_IMPORT = sys.stdout  # as a module may keep it (a logging.StreamHandler made at import)


class Talker(rp.Worker):
    """Prints; and spawns a Talker of its own (nested masters relay their workers' output up)."""

    @rp.rpc
    def say(self, lines: list[str], to_stderr: bool) -> None:
        for line in lines:
            print(line, file=sys.stderr if to_stderr else sys.stdout)

    @rp.rpc
    def say_to_the_stdout_of_import_time(self, line: str) -> None:
        print(line, file=_STDOUT_AT_IMPORT)

    @rp.rpc
    def say_through_child(self, line: str) -> None:
        child = Talker.spawn(name="inner")
        with Talker.connect(child) as conn:
            conn.run(Talker.say, [line], False)
        child.shutdown()


class Logging(rp.Worker):
    """Logs what it is told to."""

    @rp.rpc
    def log(self, level: int, message: str) -> None:
        logging.getLogger("first_day").log(level, message)

    @rp.rpc
    def configure_errors_only(self) -> None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.ERROR)
        logging.getLogger().addHandler(handler)


class Slow(rp.Worker):
    """Calls that take their time, for deadlines."""

    def init_worker_state(self) -> None:
        self.closed_generators = 0

    @rp.rpc
    def sleep(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @rp.pipe
    def trickle(self, every: float) -> Iterator[int]:
        n = 0
        try:
            while True:
                yield n
                n += 1
                time.sleep(every)
        except GeneratorExit:
            self.closed_generators += 1
            raise

    @rp.rpc
    def generators_closed(self) -> int:
        return self.closed_generators


def _no_default() -> list[int]:
    raise LookupError("this default needs a database")


@dataclasses.dataclass
class Settled:
    name: str
    tags: list[int] = dataclasses.field(default_factory=_no_default)
    level: int = 3


class Mixed(rp.Worker):
    """Fixed tuples and unions in every direction."""

    @rp.rpc
    def show(self, v: list[int] | tuple[str, int] | dict[str, int] | dict[str, str]) -> str:
        return repr(v)

    @rp.rpc
    def settle(self, s: Settled) -> str:
        return repr(s)

    @rp.rpc
    def swap(self, p: tuple[int, str]) -> tuple[str, int]:
        return p[1], p[0]

    @rp.pipe
    def mixed(self, n: int) -> Iterator[int | str | tuple[int, float] | None]:
        for i in range(n):
            yield [i, str(i), (i, i / 2), None][i % 4]

    @rp.reverse_pipe
    def kinds(self, xs: Iterator[int | float | str]) -> list[str]:
        return [type(x).__name__ for x in xs]
