"""``Control/Logs``: the worker's ``logging`` records, fanned out to every subscriber (OCaml's
``Function.async_log``). No backlog: a subscriber gets the records logged after it subscribed. A
subscriber that reads too slowly loses records rather than slowing the code that logs (each holds
at most ``_MAX_QUEUED``); the next batch it gets says how many."""

from __future__ import annotations

import logging
import threading
import traceback
from collections import deque
from collections.abc import Iterator

import grpc

from .._proto import control_pb2
from ._core import WorkerCore

__all__ = ("LogHub",)

_MAX_QUEUED = 10_000
_MAX_BATCH = 1_000


class _Subscriber:
    def __init__(self, level: int) -> None:
        self.level = level
        self.records: deque[control_pb2.LogRecord] = deque()
        self.dropped = 0
        self.ready = threading.Condition()
        self.ended = False


class LogHub(logging.Handler):
    """The root logger's handler while anyone subscribes; each record goes to every subscriber
    whose level it reaches."""

    def __init__(self, core: WorkerCore) -> None:
        super().__init__(level=logging.NOTSET)
        self._core = core
        self._subscribers: set[_Subscriber] = set()
        self._lock = threading.Lock()
        self._saved_level: int | None = None  # the root logger's level, lowered while we listen
        self._alone = False  # no other handler: logging's last resort keeps printing warnings

    def emit(self, record: logging.LogRecord) -> None:
        last_resort = logging.lastResort
        if self._alone and last_resort is not None and record.levelno >= last_resort.level:
            last_resort.handle(record)  # what logging would have done without our handler
        with self._lock:
            targets = [s for s in self._subscribers if record.levelno >= s.level]
        if not targets:
            return
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message += "\n" + "".join(traceback.format_exception(record.exc_info[1])).rstrip()
        out = control_pb2.LogRecord(time=record.created, level=record.levelno, logger=record.name, message=message,
                                    worker_id=self._core.worker_id, worker_name=self._core.name or "")
        for s in targets:
            with s.ready:
                if len(s.records) >= _MAX_QUEUED:
                    s.dropped += 1
                else:
                    s.records.append(out)
                    s.ready.notify()

    def serve(self, request: control_pb2.LogsRequest, context: grpc.ServicerContext
              ) -> Iterator[control_pb2.LogRecords]:
        """One subscription: an empty first reply once it is in place, then batches of records."""
        s = _Subscriber(request.level)

        def end() -> None:
            with s.ready:
                s.ended = True
                s.ready.notify()

        done = self._core.hold(context)  # ends with the call, or when the server stops
        context.add_callback(end)
        self._subscribe(s)
        try:
            yield control_pb2.LogRecords()
            while True:
                with s.ready:
                    while not s.records and not s.ended and not done.is_set():
                        s.ready.wait(0.5)
                    if s.ended or done.is_set():
                        return
                    batch = [s.records.popleft() for _ in range(min(len(s.records), _MAX_BATCH))]
                    dropped, s.dropped = s.dropped, 0
                yield control_pb2.LogRecords(records=batch, dropped=dropped)
        finally:
            self._unsubscribe(s)
            self._core.release(done)

    def _subscribe(self, s: _Subscriber) -> None:
        root = logging.getLogger()
        with self._lock:
            if not self._subscribers:
                self._alone = not root.handlers
                root.addHandler(self)
            self._subscribers.add(s)
            # records below the root logger's level reach no handler: where logging is not
            # configured, lower it while we listen (a configured level is the program's choice)
            if self._alone and root.level > s.level:
                if self._saved_level is None:
                    self._saved_level = root.level
                root.setLevel(s.level)

    def _unsubscribe(self, s: _Subscriber) -> None:
        root = logging.getLogger()
        with self._lock:
            self._subscribers.discard(s)
            if not self._subscribers:
                root.removeHandler(self)
                if self._saved_level is not None:
                    root.setLevel(self._saved_level)
                    self._saved_level = None
