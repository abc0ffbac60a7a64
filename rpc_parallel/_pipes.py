"""Values of the streaming kinds: ``DirectWriter``, ``Update``/``Closed``, ``DirectPipeId``, and the
``LogRecord`` of ``conn.logs()``."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ("Closed", "DirectPipeId", "DirectWriter", "LogRecord", "Update")

T = TypeVar("T")


class DirectWriter(abc.ABC, Generic[T]):
    """What a ``direct_pipe`` function writes its items to.

    ``write`` sends an item as it is written, before the function returns too (OCaml queues those
    until it returns; a bounded queue could not). A writer whose caller reads slowly waits when the
    stream holds ~8 MiB (or 65,536 items) unsent. ``close()`` ends the stream; ``closed`` turns true
    when it ended on either side (``conn.abort`` on the caller's side). Any thread may write.

    In an ``async def`` function, ``write`` never waits (a wait would stop the worker's event loop
    with it): ``await writer.drain()`` waits while the stream holds that much unsent.
    """

    @abc.abstractmethod
    def write(self, item: T) -> bool:
        """Send one item; False (and nothing sent) once the stream is closed."""

    async def drain(self) -> None:
        """Wait while the stream holds its bound of unsent items (from an ``async def`` function,
        whose ``write`` never waits); at once if it does not, or once the stream has ended."""

    @abc.abstractmethod
    def close(self) -> None:
        """End the stream (the caller's ``on_update`` then gets ``Closed("by_remote_side")``)."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """Whether the stream has ended."""


@dataclass(frozen=True)
class Update(Generic[T]):
    """One item of a direct pipe, passed to ``on_update``."""

    value: T


@dataclass(frozen=True)
class Closed:
    """The last call of ``on_update``: ``reason`` is ``"by_remote_side"``, ``"aborted"`` or an error text."""

    reason: str
    error: BaseException | None = None


@dataclass(frozen=True)
class DirectPipeId:
    """Identifies a running direct pipe on its connection; pass it to ``conn.abort``."""

    value: int


@dataclass(frozen=True)
class LogRecord:
    """One ``logging`` record of a worker, as ``conn.logs()`` delivers it: when (``time``, seconds
    since the epoch), its ``level`` (``logging.INFO``...), the ``logger``'s name, the formatted
    ``message`` (with the traceback of an exception it carries), and the worker it came from."""

    time: float
    level: int
    logger: str
    message: str
    worker_id: str
    worker_name: str | None
