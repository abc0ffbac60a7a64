"""``python -m rpc_parallel._worker_main``: how a spawned worker process starts (the name shows in
``ps``). Nothing imports this module; the worker itself is ``rpc_parallel._worker_process``."""

from ._worker_process import main

if __name__ == "__main__":
    main()
