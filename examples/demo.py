"""`make demo`: spawn real workers and call every function kind."""

from __future__ import annotations

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import rpc_parallel as rp
from examples.counter import Counter, Point


def main() -> None:
    failures: list[BaseException] = []
    handle = Counter.spawn(10, on_failure=failures.append, name="demo-counter")
    print(f"spawned {handle.name} (pid {handle.pid}) at {handle.address}")
    with Counter.connect(handle, "alice") as alice, Counter.connect(handle, "bob") as bob:
        print("rpc         incr(5)        ->", alice.run(Counter.incr, 5))
        print("rpc         incr(1) by bob ->", bob.run(Counter.incr, 1), "(worker state is shared)")
        print("rpc         whoami         ->", alice.run(Counter.whoami), "/", bob.run(Counter.whoami))
        print("submit      10 x incr(1)   ->", [f.result() for f in [alice.submit(Counter.incr, 1) for _ in range(10)]])
        alice.run(Counter.log, "hello from alice")  # returns at once; the worker runs it on its own time
        logged = alice.run(Counter.logged)
        for _ in range(100):  # a one_way is not ordered with later calls: wait until it has run
            if logged:
                break
            time.sleep(0.01)
            logged = alice.run(Counter.logged)
        print("one_way     log(...)       -> logged", logged)
        with alice.run(Counter.count_to, 5) as pipe:
            print("pipe        count_to(5)    ->", list(pipe))
        state, updates = alice.run(Counter.watch, 3)
        print("state       watch(3)       ->", state, list(updates))
        done = threading.Event()
        got: list[object] = []

        def on_update(u: rp.Update[Point] | rp.Closed) -> None:
            got.append(u.value if isinstance(u, rp.Update) else f"closed ({u.reason})")
            if isinstance(u, rp.Closed):
                done.set()

        alice.run(Counter.ticks, 3, 0.01, on_update=on_update)
        done.wait(10)
        print("direct_pipe ticks(3)       ->", got)
        print("reverse_pipe total_of      ->", alice.run(Counter.total_of, iter(range(1, 101)), 2))
        print("async def   slow_double(21)->", alice.run(Counter.slow_double, 21))
        print("settings                   ->", alice.worker_settings())
    handle.shutdown()
    print("shut down; failures reported:", failures)


if __name__ == "__main__":
    main()
