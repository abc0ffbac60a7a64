"""Port of OCaml rpc_parallel's side_arg example: a per-worker ``init`` with a master-supplied param.

    python examples/side_arg.py [message]

Each worker's ``init(param, worker_index)`` keeps the message with its own index; every output
carries the state of the worker that made it.
"""

from __future__ import annotations

import sys

import rpc_parallel as rp


class SideArg(rp.MapFunction):
    def init(self, param: str, worker_index: int) -> None:
        self.greeting = f"{param} from worker {worker_index}"

    def map(self, x: int) -> str:
        return f"{x}: {self.greeting}"


def main() -> None:
    message = sys.argv[1] if len(sys.argv) > 1 else "hello"
    config = rp.map_reduce.Config(local=2)
    for line in rp.map_reduce.map(SideArg, range(6), config=config, param=message):
        print(line)


if __name__ == "__main__":
    main()
