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
    import rpc_parallel  # noqa: F401 - the import is what is timed, in this fresh process

    imported = time.perf_counter() - t0
    from bench._workloads import spawn_rp

    return spawn_rp(WORKERS, "bench-cold"), imported


def _mp() -> tuple[float, float]:
    t0 = time.perf_counter()
    import multiprocessing

    imported = time.perf_counter() - t0
    from bench._mp import spawn_answering

    return spawn_answering(multiprocessing.get_context("spawn"), WORKERS, "bench-cold-mp"), imported


if __name__ == "__main__":
    seconds, import_s = _rp() if sys.argv[1] == "rp" else _mp()
    print(json.dumps({"seconds": seconds, "import_s": import_s}))
