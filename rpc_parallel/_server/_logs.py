"""``Control/Logs``: the worker's ``logging`` records, fanned out to every subscriber (OCaml's
``Function.async_log``). No backlog: a subscriber gets the records logged after it subscribed. A
subscriber that reads too slowly loses records rather than slowing the code that logs (each holds
at most ``_MAX_QUEUED`` records and ``_MAX_QUEUED_BYTES`` of messages); the next batch it gets says
how many. A batch stays within half the worker's max_message_size; a longer message is cut."""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from collections import deque
from collections.abc import AsyncIterator

from .._proto import control_pb2
from ._core import WorkerCore
from ._loop import resolve

__all__ = ("LogHub",)

_MAX_QUEUED = 10_000
_MAX_QUEUED_BYTES = 8 << 20
_MAX_BATCH = 1_000
_MAX_BATCH_BYTES = 4 << 20
_RECORD_OVERHEAD = 128  # the bytes of a record besides its message, about (names, time, level)


class _Subscriber:
    def __init__(self, level: int, loop: asyncio.AbstractEventLoop) -> None:
        self.level = level
        self.records: deque[tuple[control_pb2.LogRecord, int]] = deque()  # with its size
        self.queued_bytes = 0
        self.dropped = 0
        self.lock = threading.Lock()
        self.loop = loop
        self.waiter: asyncio.Future[None] | None = None  # its stream waits for records

    def wake(self) -> None:
        """With the lock held: a record arrived."""
        waiter, self.waiter = self.waiter, None
        if waiter is not None:
            self.loop.call_soon_threadsafe(resolve, waiter)


class LogHub(logging.Handler):
    """The root logger's handler while anyone subscribes; each record goes to every subscriber
    whose level it reaches."""

    def __init__(self, core: WorkerCore) -> None:
        super().__init__(level=logging.NOTSET)
        self._core = core
        self._subscribers: set[_Subscriber] = set()
        self._lock = threading.Lock()  # the subscribers; emit takes no other lock of ours or logging's
        self._attach = threading.Lock()  # adding and removing this handler (logging's own lock inside)
        self._saved_level: int | None = None  # the root logger's level, lowered while we listen
        self._pinned_grpc = False  # the "grpc" logger kept at that level meanwhile
        # a batch (and so one record) fits in half a message
        self._batch_bytes = max(1024, min(_MAX_BATCH_BYTES, core.settings.max_message_size // 2))

    def emit(self, record: logging.LogRecord) -> None:
        last_resort = logging.lastResort
        if last_resort is not None and record.levelno >= last_resort.level and not self._handled_elsewhere(record):
            last_resort.handle(record)  # what logging would have done without our handler
        with self._lock:
            targets = [s for s in self._subscribers if record.levelno >= s.level]
        if not targets:
            return
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message += "\n" + "".join(traceback.format_exception(record.exc_info[1])).rstrip()
        limit = (self._batch_bytes - _RECORD_OVERHEAD - len(record.name)) // 4  # characters of up to 4 bytes
        if len(message) > limit:
            cut = f"... [{len(message) - limit + 64} characters cut]"
            message = message[:max(0, limit - 64)] + cut
        size = (len(message) if message.isascii() else len(message.encode("utf-8", "replace"))) + \
            len(record.name.encode("utf-8", "replace")) + _RECORD_OVERHEAD
        out = control_pb2.LogRecord(time=record.created, level=record.levelno, logger=record.name, message=message,
                                    worker_id=self._core.worker_id, worker_name=self._core.name or "")
        for s in targets:
            with s.lock:
                if len(s.records) >= _MAX_QUEUED or (s.records and s.queued_bytes + size > _MAX_QUEUED_BYTES):
                    s.dropped += 1
                else:
                    s.records.append((out, size))
                    s.queued_bytes += size
                    s.wake()

    def _handled_elsewhere(self, record: logging.LogRecord) -> bool:
        """Whether a handler besides this one takes ``record`` (logging's own test before its last
        resort, which prints warnings when no handler is configured)."""
        # no logging.getLogger: emit runs under this handler's lock, and getLogger takes logging's
        found = logging.Logger.manager.loggerDict.get(record.name)
        logger: logging.Logger | None = found if isinstance(found, logging.Logger) else logging.root
        while logger is not None:  # any handler counts, whatever its level (as in Logger.callHandlers)
            if any(h is not self for h in logger.handlers):
                return True
            logger = logger.parent if logger.propagate else None
        return False

    async def serve(self, request: control_pb2.LogsRequest) -> AsyncIterator[control_pb2.LogRecords]:
        """One subscription: an empty first reply once it is in place, then batches of records,
        until the call ends or the server stops."""
        s = _Subscriber(request.level, self._core.loop)
        done = self._core.hold()
        self._subscribe(s)
        try:
            yield control_pb2.LogRecords()
            while True:
                with s.lock:
                    waiter = s.waiter = s.loop.create_future() if not s.records else None
                if waiter is not None:
                    await asyncio.wait((waiter, done), return_when=asyncio.FIRST_COMPLETED)
                    if done.done():
                        return
                    continue
                with s.lock:
                    batch: list[control_pb2.LogRecord] = []
                    taken = 0
                    while s.records and len(batch) < _MAX_BATCH and (
                            not batch or taken + s.records[0][1] <= self._batch_bytes):
                        record, size = s.records.popleft()
                        batch.append(record)
                        taken += size
                    s.queued_bytes -= taken
                    dropped, s.dropped = s.dropped, 0
                yield control_pb2.LogRecords(records=batch, dropped=dropped)
        finally:
            self._unsubscribe(s)
            self._core.release(done)

    def _subscribe(self, s: _Subscriber) -> None:
        root = logging.getLogger()
        with self._attach:
            with self._lock:
                first = not self._subscribers
                self._subscribers.add(s)
            if first:
                root.addHandler(self)
            # records below the root logger's level reach no handler: where logging is not
            # configured, lower it while we listen (a configured level is the program's choice)
            if (self._saved_level is not None or root.handlers == [self]) and root.level > s.level:
                if self._saved_level is None:
                    self._saved_level = root.level
                    grpc_logger = logging.getLogger("grpc")
                    if grpc_logger.level == logging.NOTSET:  # gRPC's own debug records stay out
                        grpc_logger.setLevel(root.level)
                        self._pinned_grpc = True
                root.setLevel(s.level)

    def _unsubscribe(self, s: _Subscriber) -> None:
        root = logging.getLogger()
        with self._attach:
            with self._lock:
                self._subscribers.discard(s)
                last = not self._subscribers
            if last:
                root.removeHandler(self)
                if self._saved_level is not None:
                    root.setLevel(self._saved_level)
                    self._saved_level = None
                    if self._pinned_grpc:
                        logging.getLogger("grpc").setLevel(logging.NOTSET)
                        self._pinned_grpc = False
