"""Port of OCaml rpc_parallel's ``async_log`` example: the built-in log subscription.

Two connections subscribe to the worker's ``logging`` records (``conn.logs()``); a line the worker
logs reaches both. After one subscription closes, the next line reaches only the other.
"""

from __future__ import annotations

import logging

import rpc_parallel as rp

log = logging.getLogger("async_log_example")


class Logger(rp.Worker):
    @rp.rpc
    def log_line(self, line: str) -> None:
        log.info(line)


def main() -> None:
    handle = Logger.spawn(name="logger")
    with Logger.connect(handle) as first, Logger.connect(handle) as second:
        pipe_a, pipe_b = first.logs(), second.logs()  # subscribed once logs() returns
        first.run(Logger.log_line, "hello")
        print("a got:", next(pipe_a).message)
        print("b got:", next(pipe_b).message)
        pipe_a.close()  # unsubscribes
        first.run(Logger.log_line, "world")
        print("b got:", next(pipe_b).message)
        pipe_b.close()
        print("a closed:", pipe_a.closed, "- its last record was hello")
    handle.shutdown()


if __name__ == "__main__":
    main()
