"""multiprocessing baseline targets. The spawn context imports this module (and the ``bench``
package) in each child, so it imports nothing heavy: no grpc, no rpc_parallel."""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess

__all__ = ("answer_once", "inc", "spawn_answering", "spin", "spin_timed", "stream_ints")


def answer_once(conn: Connection) -> None:
    """Answer one message (x -> x + 1), then wait for the parent to close the pipe."""
    conn.send(conn.recv() + 1)
    try:
        conn.recv()
    except EOFError:
        pass


def spawn_answering(context: BaseContext, n: int, name: str) -> float:
    """Seconds to start ``n`` processes of ``context`` (``answer_once`` over a Pipe each) and get
    their answers; the processes are joined after."""
    procs: list[BaseProcess] = []
    pipes: list[Connection] = []
    try:
        t0 = time.perf_counter()
        for i in range(n):
            parent, child = context.Pipe()
            proc = context.Process(target=answer_once, args=(child,), name=f"{name}-{i}", daemon=True)  # type: ignore[attr-defined]
            proc.start()
            child.close()
            procs.append(proc)
            pipes.append(parent)
        for i, p in enumerate(pipes):
            p.send(i)
        answers = [p.recv() for p in pipes]
        seconds = time.perf_counter() - t0
        if answers != [i + 1 for i in range(n)]:
            raise AssertionError(f"{name}: wrong answers {answers}")
        return seconds
    finally:
        for p in pipes:
            p.close()
        for proc in procs:
            proc.join(10)


def stream_ints(conn: Connection) -> None:
    """For each ``n`` received, send 0..n-1 one message each and then None; exit on None or EOF."""
    while True:
        try:
            n = conn.recv()
        except EOFError:
            return
        if n is None:
            return
        send = conn.send
        for i in range(n):
            send(i)
        send(None)


def inc(x: int) -> int:
    """The trivial map of the map_reduce workload (multiprocessing.Pool's side)."""
    return x + 1


def spin(loops: int) -> int:
    """Pure-Python CPU work: ``loops`` iterations (the CPU-bound map of the map_reduce workload)."""
    total = 0
    for i in range(loops):
        total += i
    return total


def spin_timed(loops: int) -> float:
    """``spin(loops)``; the seconds it took (where it ran)."""
    t0 = time.perf_counter()
    spin(loops)
    return time.perf_counter() - t0
