"""Port of OCaml rpc_parallel's add_numbers example: ``map`` and ``map_unordered`` over a CPU-heavy map.

    python examples/add_numbers.py [--nworkers N] [--count C]

Each input ``n`` is summed as ``0 + 1 + ... + (1000 n - 1)`` by a worker. Prints the sums in input
order (``map``), then checks that ``map_unordered`` tagged every result with its input's index.
"""

from __future__ import annotations

import argparse

import rpc_parallel as rp


class AddNumbers(rp.MapFunction):
    def map(self, n: int) -> int:
        total = 0
        for i in range(n * 1000):  # pure Python on purpose: the work is the CPU's
            total += i
        return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nworkers", type=int, default=0, help="workers (default: one per core)")
    parser.add_argument("--count", type=int, default=20, help="how many numbers to sum")
    args = parser.parse_args()
    config = rp.map_reduce.Config(local=args.nworkers)
    inputs = list(range(1, args.count + 1))

    ordered = list(rp.map_reduce.map(AddNumbers, inputs, config=config))
    for n, total in zip(inputs, ordered, strict=True):
        print(f"sum of 0..{n * 1000 - 1} = {total}")

    unordered = list(rp.map_reduce.map_unordered(AddNumbers, inputs, config=config))
    indices_ok = sorted(i for _, i in unordered) == list(range(len(inputs)))
    values_ok = all(total == ordered[i] for total, i in unordered)
    print(f"map_unordered: {len(unordered)} results, indices {'ok' if indices_ok and values_ok else 'WRONG'}")


if __name__ == "__main__":
    main()
