"""Between an event loop and the blocking core: an async iterable consumed from a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Iterator
from typing import Any

__all__ = ("sync_iter",)


def sync_iter(items: Any, loop: asyncio.AbstractEventLoop) -> Any:
    """A blocking iterator over an async iterable (consumed from a worker thread); other values as they are."""
    if not isinstance(items, AsyncIterable):
        return items

    def gen() -> Iterator[Any]:
        it = items.__aiter__()
        while True:
            try:
                yield asyncio.run_coroutine_threadsafe(it.__anext__(), loop).result()  # type: ignore[arg-type]
            except StopAsyncIteration:
                return

    return gen()
