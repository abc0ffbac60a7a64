"""``rp.aio.map_reduce``: the operations of ``rp.map_reduce`` for asyncio.

The iterators are async iterators (``async for``), the reductions and ``find_map`` awaitables, and
``Pool`` an async context manager (``async with rp.aio.map_reduce.Pool(F) as pool``). The input may
be an async iterable. The scheduler runs on a thread, handing over what each finished batch lets the
caller have: the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from typing import Any

from .._mapreduce._config import Config
from .._mapreduce._engine import _NO_PARAM, Mode, Pool as SyncPool, Run
from .._mapreduce._progress import ProgressArg
from ._bridge import sync_iter

__all__ = ("Config", "Pool", "find_map", "map", "map_reduce", "map_reduce_commutative", "map_unordered")


class Pool:
    """Workers of one map function kept for many maps; start it with ``async with`` (or ``await
    pool.start()``), stop it at the end of the block (or ``await pool.aclose()``)."""

    def __init__(self, fn: type[Any], *, config: Config | None = None, param: Any = _NO_PARAM) -> None:
        self.fn = fn
        self._config = config
        self._param = param
        self._sync: SyncPool | None = None

    async def start(self) -> Pool:
        """Spawn the workers (once); the pool."""
        if self._sync is None:
            self._sync = await asyncio.to_thread(SyncPool, self.fn, config=self._config, param=self._param)
        return self

    @property
    def sync(self) -> SyncPool:
        """The blocking pool behind this one."""
        if self._sync is None:
            raise RuntimeError("the pool is not started: use `async with Pool(...)` or `await pool.start()`")
        return self._sync

    def map(self, xs: Iterable[Any] | AsyncIterator[Any], *, progress: ProgressArg = False, retries: int = 0
            ) -> AsyncIterator[Any]:
        """The outputs of ``map`` over ``xs``, in input order."""
        return _values(self.sync, "ordered", xs, progress, retries)

    def map_unordered(self, xs: Iterable[Any] | AsyncIterator[Any], *, progress: ProgressArg = False,
                      retries: int = 0) -> AsyncIterator[tuple[Any, int]]:
        """``(output, index)`` pairs as the maps finish."""
        return _pairs(self.sync, "unordered", xs, progress, retries)

    async def find_map(self, xs: Iterable[Any] | AsyncIterator[Any], *, progress: ProgressArg = False,
                       retries: int = 0) -> Any:
        """The first output that is not None (None if there is none)."""
        return await _result(self.sync, "find", xs, progress, retries)

    async def map_reduce(self, xs: Iterable[Any] | AsyncIterator[Any], *, progress: ProgressArg = False,
                         retries: int = 0) -> Any:
        """``combine`` over the outputs, in input order; None for an empty input."""
        return await _result(self.sync, "reduce", xs, progress, retries)

    async def map_reduce_commutative(self, xs: Iterable[Any] | AsyncIterator[Any], *,
                                     progress: ProgressArg = False, retries: int = 0) -> Any:
        """``combine`` over the outputs, in any order; None for an empty input."""
        return await _result(self.sync, "commutative", xs, progress, retries)

    async def aclose(self) -> None:
        """Stop every worker (idempotent)."""
        if self._sync is not None:
            await asyncio.to_thread(self._sync.close)

    async def __aenter__(self) -> Pool:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _chunks(pool: SyncPool, mode: Mode, xs: Any, progress: ProgressArg, retries: int
                  ) -> AsyncGenerator[list[tuple[int, Any]], None]:
    loop = asyncio.get_running_loop()
    run: Run = pool.run(mode, sync_iter(xs, loop), progress, retries)
    idle = threading.Event()  # no thread is inside next(run)
    idle.set()

    def step() -> list[tuple[int, Any]] | None:
        idle.clear()
        try:
            return next(run, None)
        finally:
            idle.set()

    try:
        while True:
            chunk = await asyncio.to_thread(step)
            if chunk is None:
                return
            yield chunk
    finally:
        # a cancelled await leaves its thread inside next(run): wake it, let it return, then close
        run.interrupt()
        await asyncio.to_thread(_close_when_idle, run, idle)


def _close_when_idle(run: Run, idle: threading.Event) -> None:
    idle.wait()
    run.close()


async def _values(pool: SyncPool, mode: Mode, xs: Any, progress: ProgressArg, retries: int) -> AsyncIterator[Any]:
    async for chunk in _chunks(pool, mode, xs, progress, retries):
        for _, v in chunk:
            yield v


async def _pairs(pool: SyncPool, mode: Mode, xs: Any, progress: ProgressArg, retries: int
                 ) -> AsyncIterator[tuple[Any, int]]:
    async for chunk in _chunks(pool, mode, xs, progress, retries):
        for i, v in chunk:
            yield v, i


async def _result(pool: SyncPool, mode: Mode, xs: Any, progress: ProgressArg, retries: int) -> Any:
    chunks = _chunks(pool, mode, xs, progress, retries)
    try:
        async for chunk in chunks:
            return chunk[0][1]
        return None
    finally:
        await chunks.aclose()


async def _owned(fn: type[Any], config: Config | None, param: Any, values: Any, mode: Mode, xs: Any,
                 progress: ProgressArg, retries: int) -> AsyncIterator[Any]:
    async with Pool(fn, config=config, param=param) as pool:
        async for v in values(pool.sync, mode, xs, progress, retries):
            yield v


def map(fn: type[Any], xs: Iterable[Any] | AsyncIterator[Any], *, config: Config | None = None,
        param: Any = _NO_PARAM, progress: ProgressArg = False, retries: int = 0) -> AsyncIterator[Any]:
    """The outputs of ``fn.map`` over ``xs``, in input order (see ``rp.map_reduce.map``)."""
    return _owned(fn, config, param, _values, "ordered", xs, progress, retries)


def map_unordered(fn: type[Any], xs: Iterable[Any] | AsyncIterator[Any], *, config: Config | None = None,
                  param: Any = _NO_PARAM, progress: ProgressArg = False, retries: int = 0
                  ) -> AsyncIterator[tuple[Any, int]]:
    """``(output, index)`` pairs of ``fn.map`` over ``xs``, as they finish."""
    return _owned(fn, config, param, _pairs, "unordered", xs, progress, retries)


async def find_map(fn: type[Any], xs: Iterable[Any] | AsyncIterator[Any], *, config: Config | None = None,
                   param: Any = _NO_PARAM, progress: ProgressArg = False, retries: int = 0) -> Any:
    """The first output of ``fn.map`` that is not None; every worker stops then."""
    async with Pool(fn, config=config, param=param) as pool:
        return await _result(pool.sync, "find", xs, progress, retries)


async def map_reduce(fn: type[Any], xs: Iterable[Any] | AsyncIterator[Any], *, config: Config | None = None,
                     param: Any = _NO_PARAM, progress: ProgressArg = False, retries: int = 0) -> Any:
    """``fn.combine`` over the outputs of ``fn.map`` in input order; None for an empty input."""
    async with Pool(fn, config=config, param=param) as pool:
        return await _result(pool.sync, "reduce", xs, progress, retries)


async def map_reduce_commutative(fn: type[Any], xs: Iterable[Any] | AsyncIterator[Any], *,
                                 config: Config | None = None, param: Any = _NO_PARAM,
                                 progress: ProgressArg = False, retries: int = 0) -> Any:
    """``fn.combine`` over the outputs of ``fn.map`` in any order; None for an empty input."""
    async with Pool(fn, config=config, param=param) as pool:
        return await _result(pool.sync, "commutative", xs, progress, retries)
