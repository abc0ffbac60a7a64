"""``Pipe``: the caller's end of a worker-to-caller stream (a pipe's items, a state's updates)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .._errors import RpcParallelError
from .._grpc_errors import ErrorBoundary

__all__ = ("Pipe",)

T = TypeVar("T")


class Pipe(Generic[T]):
    """The items of a ``pipe`` (or a ``state``'s updates), in order. Iterate it; ``close()``
    aborts the stream (the worker's generator then sees ``GeneratorExit``); a context manager."""

    def __init__(self, call: Any, decode: Callable[[Any], list[T]], errors: ErrorBoundary) -> None:
        self._call = call
        self._decode = decode
        self._errors = errors  # its connection's: an rp.deadline passed, or the connection's own close()
        self._batch: Iterator[T] = iter(())
        self._closed = False

    def wait_started(self) -> Pipe[T]:
        """Wait until the worker's generator has started (sent its first items, kept for iteration,
        or ended): what ``run`` of a pipe returns after. An error it raised first is raised here."""
        batch = self.next_batch()
        if batch is not None:
            self._batch = iter(batch)
        return self

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        while True:
            for item in self._batch:
                return item
            batch = self.next_batch()
            if batch is None:
                raise StopIteration
            self._batch = iter(batch)

    def next_batch(self) -> list[T] | None:
        """The next message's items, not yet returned by iteration; None at the end."""
        rest = list(self._batch)
        if rest:
            self._batch = iter(())
            return rest
        if self._closed:
            return None
        try:
            with self._errors:
                data = next(self._call)
        except StopIteration:
            self._closed = True
            return None
        except RpcParallelError:
            self._closed = True
            if self._call.cancelled():  # close() cancelled the stream meanwhile: that is its end
                return None
            raise
        return self._decode(data)

    def close(self) -> None:
        """Abort the stream (idempotent)."""
        if not self._closed:
            self._closed = True
            self._call.cancel()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Pipe[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
