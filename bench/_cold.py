"""``python -m bench._cold rp|mp``: a cold spawn, as a user's script pays it. In a fresh process:
start 4 workers (rpc_parallel: its fork server included) and get one answer from each; prints
``{"seconds": ..., "import_s": ...}`` (the import of rpc_parallel or multiprocessing, before)."""

from __future__ import annotations

import json
import sys
import time

WORKERS = 4


def _rp() -> tuple[float, float]:
    t0 = time.perf_counter()
    import concurrent.futures

    import rpc_parallel as rp
    from bench.workers import Bench

    imported = time.perf_counter()
    handles: list[rp.WorkerHandle] = []

    def one(i: int) -> None:
        handle = Bench.spawn(None, name=f"bench-cold-{i}")
        handles.append(handle)
        with Bench.connect(handle) as conn:
            conn.run(Bench.noop)

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as ex:
        for f in [ex.submit(one, i) for i in range(WORKERS)]:
            f.result()
    seconds = time.perf_counter() - imported
    for h in handles:
        h.shutdown()
    return seconds, imported - t0


def _mp() -> tuple[float, float]:
    t_import = time.perf_counter()
    import multiprocessing

    from bench import _mp as targets

    context = multiprocessing.get_context("spawn")
    t0 = time.perf_counter()
    imported = t0 - t_import
    procs, pipes = [], []
    for i in range(WORKERS):
        parent, child = context.Pipe()
        proc = context.Process(target=targets.answer_once, args=(child,), name=f"bench-cold-mp-{i}", daemon=True)
        proc.start()
        child.close()
        procs.append(proc)
        pipes.append(parent)
    for i, p in enumerate(pipes):
        p.send(i)
    answers = [p.recv() for p in pipes]
    seconds = time.perf_counter() - t0
    assert answers == [i + 1 for i in range(WORKERS)], answers
    for p in pipes:
        p.close()
    for proc in procs:
        proc.join(10)
    return seconds, imported


if __name__ == "__main__":
    seconds, import_s = _rp() if sys.argv[1] == "rp" else _mp()
    print(json.dumps({"seconds": seconds, "import_s": import_s}))
