"""``rp.map_reduce``: a parallel map (and map-reduce) over worker processes, OCaml's ``Map_reduce``.

Declare the function as a class::

    class Square(rp.MapFunction):
        def init(self, param: int, worker_index: int) -> None:   # optional, once per worker
            self.k = param
        def map(self, x: int) -> int:
            return self.k * x * x

    for y in rp.map_reduce.map(Square, range(1000), param=3): ...

Each operation spawns its workers (``config``: ``Config()`` is one per core), runs, and stops them;
a ``Pool`` keeps them for many operations. Inputs are read lazily (an infinite iterator works with
``map_unordered`` and ``find_map``), items travel in batches sized by their measured cost, and a
consumer that stops reading stops the workers. An exception in ``map``/``combine``/``init`` is an
``rp.RemoteError`` naming the item; a worker that dies is replaced and its items retried up to
``retries`` times (then ``rp.WorkerCrashedError``); leaving an iterator early stops every worker.
docs/map_reduce.md has the semantics and figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from ._mapreduce._config import Config
from ._mapreduce._engine import _NO_PARAM, Pool, one_shot
from ._mapreduce._progress import ProgressArg

__all__ = ("Config", "Pool", "find_map", "map", "map_reduce", "map_reduce_commutative", "map_unordered")

T = TypeVar("T")


def map(fn: type[Any], xs: Iterable[Any], *, config: Config | None = None, param: Any = _NO_PARAM,
        progress: ProgressArg = False, retries: int = 0) -> Iterator[Any]:
    """The outputs of ``fn.map`` over ``xs``, in input order (an iterator; leaving it stops the workers).

    ``progress=True`` draws a bar on stderr when it is a terminal (``"always"``: even when not);
    a callable gets ``(done, total)`` (``total`` None when ``xs`` has no length)."""
    return one_shot(fn, config, param, lambda p: p.map(xs, progress=progress, retries=retries), True)  # type: ignore[no-any-return]


def map_unordered(fn: type[Any], xs: Iterable[Any], *, config: Config | None = None, param: Any = _NO_PARAM,
                  progress: ProgressArg = False, retries: int = 0) -> Iterator[tuple[Any, int]]:
    """``(output, index)`` pairs of ``fn.map`` over ``xs``, as they finish."""
    return one_shot(fn, config, param,  # type: ignore[no-any-return]
                    lambda p: p.map_unordered(xs, progress=progress, retries=retries), True)


def find_map(fn: type[Any], xs: Iterable[Any], *, config: Config | None = None, param: Any = _NO_PARAM,
             progress: ProgressArg = False, retries: int = 0) -> Any:
    """The first output of ``fn.map`` over ``xs`` that is not None (None if none is); every worker
    stops then. Which one wins when several items match is unspecified."""
    return one_shot(fn, config, param, lambda p: p.find_map(xs, progress=progress, retries=retries), False)


def map_reduce(fn: type[Any], xs: Iterable[Any], *, config: Config | None = None, param: Any = _NO_PARAM,
               progress: ProgressArg = False, retries: int = 0) -> Any:
    """``fn.combine`` over the outputs of ``fn.map``, in input order (``combine`` must be
    associative); None for an empty input."""
    return one_shot(fn, config, param, lambda p: p.map_reduce(xs, progress=progress, retries=retries), False)


def map_reduce_commutative(fn: type[Any], xs: Iterable[Any], *, config: Config | None = None,
                           param: Any = _NO_PARAM, progress: ProgressArg = False, retries: int = 0) -> Any:
    """``fn.combine`` over the outputs of ``fn.map``, in any order (``combine`` associative and
    commutative: each worker folds its batches, then the accumulators combine); None if empty."""
    return one_shot(fn, config, param,
                    lambda p: p.map_reduce_commutative(xs, progress=progress, retries=retries), False)
