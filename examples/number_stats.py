"""Port of OCaml rpc_parallel's number_stats example: a two-stage pipeline.

    python examples/number_stats.py [--blocks B] [--size N]

Stage 1 (``map_unordered``) generates blocks of random numbers, one seed per block. Stage 2 computes
their count, mean, standard deviation, minimum and maximum with ``map_reduce`` (order kept) and
``map_reduce_commutative`` (each worker folds its share), which agree.
"""

from __future__ import annotations

import argparse
import math
import random
from dataclasses import dataclass

import rpc_parallel as rp


class Block(rp.MapFunction):
    """A block of ``size`` numbers, uniform in [0, 1), from its seed."""

    def init(self, param: int, worker_index: int) -> None:
        self.size = param

    def map(self, seed: int) -> list[float]:
        rng = random.Random(seed)
        return [rng.random() for _ in range(self.size)]


@dataclass
class Moments:
    count: int
    total: float
    squares: float
    low: float
    high: float


class Stats(rp.MapReduceFunction):
    def map(self, block: list[float]) -> Moments:
        return Moments(len(block), math.fsum(block), math.fsum(x * x for x in block), min(block), max(block))

    def combine(self, a: Moments, b: Moments) -> Moments:
        return Moments(a.count + b.count, a.total + b.total, a.squares + b.squares, min(a.low, b.low),
                       max(a.high, b.high))


def describe(name: str, m: Moments | None) -> str:
    if m is None:
        return f"{name}: no numbers"
    mean = m.total / m.count
    std = math.sqrt(max(m.squares / m.count - mean * mean, 0.0))
    return f"{name}: count {m.count} mean {mean:.4f} std {std:.4f} min {m.low:.4f} max {m.high:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--size", type=int, default=5000)
    args = parser.parse_args()
    blocks = [block for block, _ in rp.map_reduce.map_unordered(Block, range(args.blocks), param=args.size)]
    print(f"generated {len(blocks)} blocks of {args.size} numbers")
    print(describe("map_reduce", rp.map_reduce.map_reduce(Stats, blocks)))
    print(describe("map_reduce_commutative", rp.map_reduce.map_reduce_commutative(Stats, blocks)))


if __name__ == "__main__":
    main()
