"""The scheduler of ``rp.map_reduce``: a pool of workers kept busy with batches of items.

Each worker has at most ``_SLOTS`` calls in flight (``map_batch``/``reduce_batch``/``combine_all``
on its connection's pipelined stream), so a worker never waits between batches and no worker holds
a long queue: balancing is dynamic, as OCaml's one-call-in-flight pull. A batch's size follows the
measured cost of an item (the worker reports how long its maps took): about ``_TARGET`` seconds of
work, so trivial items travel thousands at a time and slow ones a few at a time; it grows at most
``_GROWTH`` times per batch, and shrinks near the end of an input of known length, so the last
batches are short. The input is read only to fill a free slot, and no more than ``_window()``
items are out (sent, or done but not yet taken by the caller): a slow consumer stops the workers,
and an infinite input works. Everything runs on the caller's thread but the completions, which
only queue themselves.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import inspect
import itertools
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from .._client import Connection
from .._errors import (
    MessageTooLargeError,
    RemoteError,
    RpcParallelError,
    WorkerConnectionError,
    WorkerCrashedError,
)
from .._options import ShutdownOn
from ._config import Config
from ._functions import MapFunction, has_init, is_map_reduce
from ._progress import Progress, ProgressArg

__all__ = ("Mode", "Pool", "Run")

Mode = Literal["unordered", "ordered", "find", "reduce", "commutative"]

_SLOTS = 2  # calls in flight per worker
_TARGET = 0.04  # seconds of work per batch
_GROWTH = 4  # a batch is at most this many times the largest one done
_MAX_ITEMS = 8192
_MAX_WEIGHT = 4 << 20  # bytes of bytes/str items per batch (other items weigh _WEIGHT)
_WEIGHT = 64
_NO_PARAM: Any = object()


@dataclass(eq=False)
class _Job:
    """A call to make: a batch of items [start, end), or a combine of accumulators over [start, end)."""

    kind: Literal["map", "reduce", "combine"]
    start: int
    end: int
    items: list[Any]
    attempts: int = 0


@dataclass(eq=False)
class _Slot:
    """One worker of the pool."""

    group: int
    index: int
    conn: Connection
    failure: list[BaseException] = field(default_factory=list)  # from on_failure (a crash)
    busy: int = 0
    dead: bool = False

    @property
    def label(self) -> str:
        return f"map worker {self.index}" + (f" of group {self.group}" if self.group else "")


class Pool:
    """Workers of one map function, kept for many maps (``with rp.map_reduce.Pool(F) as pool``).

    The workers are spawned at once, in parallel; each gets ``init(param, worker_index)`` if
    ``fn`` declares ``init``. Its operations (``map``, ``map_unordered``, ``find_map``,
    ``map_reduce``, ``map_reduce_commutative``) run one at a time; ``close()`` (or the end of the
    ``with`` block) stops the workers.
    """

    def __init__(self, fn: type[MapFunction] | type[Any], *, config: Config | None = None,
                 param: Any = _NO_PARAM) -> None:
        if not (isinstance(fn, type) and hasattr(fn, "map_batch") and hasattr(fn, "_rp_map_kind")):
            raise TypeError(f"rp.map_reduce takes an rp.MapFunction or rp.MapReduceFunction subclass, not {fn!r}")
        if param is not _NO_PARAM and not has_init(fn):
            raise TypeError(f"{fn.__name__} has no init(self, param, worker_index): it takes no param")
        self.fn = fn
        self.config = config if config is not None else Config()
        self._param = None if param is _NO_PARAM else param
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()
        self._active = False
        self._closed = False
        starts = [(g, i) for g, group in enumerate(self.config.groups) for i in range(group.count)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(starts), 32)) as spawner:
            futures = [spawner.submit(self._spawn, g, i) for g, i in starts]
            errors = []
            for f in futures:
                try:
                    self._slots.append(f.result())
                except BaseException as exc:
                    errors.append(exc)
        if errors:
            self.close()
            raise errors[0]

    @property
    def workers(self) -> int:
        """How many workers the pool has."""
        return len(self._slots)

    def _spawn(self, group: int, index: int) -> _Slot:
        how = self.config.groups[group].how
        failure: list[BaseException] = []
        arg = (self._param, index) if has_init(self.fn) else index
        name = f"{self.fn.__name__}-{index}" if group == 0 else f"{self.fn.__name__}-{group}.{index}"
        conn = self.fn.spawn(arg, shutdown_on=ShutdownOn.CONNECTION_CLOSED, how=how, name=name,
                             on_failure=failure.append, **self.config.spawn_options(index))
        return _Slot(group, index, conn, failure)

    def _revive(self) -> None:
        """Replace every worker that died by a new one (same group and index)."""
        for i, slot in enumerate(self._slots):
            if slot.dead:
                self._slots[i] = self._spawn(slot.group, slot.index)
                slot.conn.close()

    # -- operations --------------------------------------------------------------------------

    def map(self, xs: Iterable[Any], *, progress: ProgressArg = False, retries: int = 0) -> Iterator[Any]:
        """The outputs of ``map`` over ``xs``, in input order."""
        return _values(self._run("ordered", xs, progress, retries))

    def map_unordered(self, xs: Iterable[Any], *, progress: ProgressArg = False, retries: int = 0
                      ) -> Iterator[tuple[Any, int]]:
        """``(output, index)`` pairs as the maps finish."""
        return _pairs(self._run("unordered", xs, progress, retries))

    def find_map(self, xs: Iterable[Any], *, progress: ProgressArg = False, retries: int = 0) -> Any:
        """The first output of ``map`` that is not None (None if there is none), then stops."""
        return _result(self._run("find", xs, progress, retries))

    def map_reduce(self, xs: Iterable[Any], *, progress: ProgressArg = False, retries: int = 0) -> Any:
        """``combine`` over the outputs of ``map``, in input order (``combine`` associative);
        None for an empty input."""
        return _result(self._run("reduce", xs, progress, retries))

    def map_reduce_commutative(self, xs: Iterable[Any], *, progress: ProgressArg = False, retries: int = 0
                               ) -> Any:
        """``combine`` over the outputs of ``map`` in any order (``combine`` associative and
        commutative); None for an empty input."""
        return _result(self._run("commutative", xs, progress, retries))

    def run(self, mode: Mode, xs: Iterable[Any], progress: ProgressArg = False, retries: int = 0) -> Run:
        """Start operation ``mode`` over ``xs``: its ``Run`` (close it to stop early)."""
        return self._run(mode, xs, progress, retries)

    def _run(self, mode: Mode, xs: Iterable[Any], progress: ProgressArg, retries: int) -> Run:
        if mode in ("reduce", "commutative") and not is_map_reduce(self.fn):
            raise TypeError(f"{self.fn.__name__} is a MapFunction: map_reduce needs an rp.MapReduceFunction "
                            "(with combine)")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a count, 0 or more, not {retries!r}")
        with self._lock:
            if self._closed:
                raise RpcParallelError("the map_reduce pool is closed")
            if self._active:
                raise RuntimeError("this pool is running another map: pools run one map at a time")
            self._active = True
        try:
            self._revive()  # a worker that died in the last operation
            total = _length(xs)
            return Run(self, mode, iter(xs), total, Progress.of(progress, total), retries)
        except BaseException:
            self._done()
            raise

    def _done(self) -> None:
        with self._lock:
            self._active = False

    def close(self) -> None:
        """Stop every worker (idempotent): each one exits once its connection is closed."""
        with self._lock:
            self._closed = True
            slots, self._slots = self._slots, []
        for s in slots:
            s.conn.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Run:
    """One operation on a pool: an iterator of lists of ``(index, value)``, each list what one
    finished call lets the caller have (in input order for ``ordered``; for the reductions, one
    pair: ``(0, result)``)."""

    def __init__(self, pool: Pool, mode: Mode, items: Iterator[Any], total: int | None, progress: Progress,
                 retries: int) -> None:
        self.pool = pool
        self.fn = pool.fn
        self.mode = mode
        self.items = items
        self.total = total
        self.progress = progress
        self.retries = retries
        self.read = 0  # items taken from the input
        self.exhausted = False
        self.handed = 0  # items whose output the caller has (or that are reduced)
        self.done: queue.SimpleQueue[tuple[Any, Any, concurrent.futures.Future[Any] | None]] = queue.SimpleQueue()
        self.waiting: deque[_Job] = deque()  # to send before new batches: retries, combines
        self.in_flight: dict[concurrent.futures.Future[Any], tuple[_Job, _Slot]] = {}
        self.cost: float | None = None  # seconds of work per item, a moving average
        self.largest = 0  # the largest batch done
        self.max_items = _MAX_ITEMS
        self.ready: list[tuple[int, list[Any]]] = []  # ordered: done batches (a heap by start)
        self.next_out = 0
        self.by_start: dict[int, tuple[int, Any]] = {}  # reduce: done intervals [start, end) -> acc
        self.by_end: dict[int, int] = {}
        self.accs: list[tuple[int, int, Any]] = []  # commutative: accumulators not being combined
        self._iter = self._generate()

    def __iter__(self) -> Iterator[list[tuple[int, Any]]]:
        return self._iter

    def __next__(self) -> list[tuple[int, Any]]:
        return next(self._iter)

    def interrupt(self) -> None:
        """Make a ``next`` waiting for results on another thread return (ending the run): for a
        caller that cannot close the run while it is being advanced (an asyncio task cancelled)."""
        self.done.put((None, None, None))

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        """End the run (idempotent): calls in flight are cancelled, the pool is free again."""
        if inspect.getgeneratorstate(self._iter) == inspect.GEN_CREATED:  # never started: no finally to run
            self._iter.close()
            self.progress.close()
            self.pool._done()
        else:
            self._iter.close()

    # -- the loop --------------------------------------------------------------------------------

    def _generate(self) -> Generator[list[tuple[int, Any]], None, None]:
        try:
            while True:
                self._fill()
                if not self.in_flight:
                    if self.exhausted and not self.waiting:
                        break
                    if not self.waiting:  # nothing to send: the window is full, all handed out
                        raise AssertionError("map_reduce scheduler stalled")  # cannot happen
                job, slot, future = self.done.get()
                if future is None:  # interrupt(): the caller left from another thread
                    return
                if future not in self.in_flight:
                    continue  # cancelled by an early exit
                del self.in_flight[future]
                slot.busy -= 1
                out = self._complete(job, slot, future)
                self._fill()  # the workers go on while the caller takes these
                if out:
                    yield out
                    if self.mode == "find":
                        return
            if self.mode in ("reduce", "commutative"):
                yield [(0, self._reduced())]
        finally:  # the end, an error, or the caller left (break, close(), garbage collection)
            for future, (_, slot) in list(self.in_flight.items()):
                future.cancel()  # the worker drops the call, or does not start it
                slot.busy -= 1
            self.in_flight.clear()
            self.progress.close()
            self.pool._done()

    def _fill(self) -> None:
        """Send jobs to every worker with a free slot, while there is work and room."""
        for slot in list(self.pool._slots):
            while slot.busy < _SLOTS and not slot.dead:
                job = self._next_job()
                if job is None:
                    return
                self._send(job, slot)

    def _next_job(self) -> _Job | None:
        if self.waiting:
            return self.waiting.popleft()
        if self.exhausted or self.read - self.handed >= self._window():
            return None
        size = self._batch_size()
        items: list[Any] = []
        weight = 0
        for x in itertools.islice(self.items, size):
            items.append(x)
            weight += len(x) if isinstance(x, bytes | str | bytearray) else _WEIGHT
            if weight >= _MAX_WEIGHT:
                break
        if len(items) < size and weight < _MAX_WEIGHT:
            self.exhausted = True
        if not items:
            return None
        start = self.read
        self.read += len(items)
        kind: Literal["map", "reduce"] = "reduce" if self.mode in ("reduce", "commutative") else "map"
        return _Job(kind, start, self.read, items)

    def _window(self) -> int:
        """How many items may be out: sent, or done but not handed to the caller."""
        return max(4 * _SLOTS * len(self.pool._slots) * max(self.largest, 1), 1024)

    def _batch_size(self) -> int:
        if self.cost is None:
            return 1  # the first batches measure the cost of an item
        size = _TARGET / max(self.cost, 1e-9)
        size = min(size, _GROWTH * max(self.largest, 1), self.max_items)
        if self.total is not None:  # near the end: short batches, so no worker finishes long after the rest
            left = self.total - self.read
            size = min(size, math.ceil(left / (2 * len(self.pool._slots))))
        return max(1, int(size))

    def _send(self, job: _Job, slot: _Slot) -> None:
        fn: Any = self.fn
        try:
            if job.kind == "map":
                future = slot.conn.submit(fn.map_batch, job.start, job.items)
            elif job.kind == "reduce":
                future = slot.conn.submit(fn.reduce_batch, job.start, job.items)
            else:
                future = slot.conn.submit(fn.combine_all, job.items)
        except MessageTooLargeError:
            if len(job.items) < 2:
                raise
            self._split(job)
            return
        except WorkerConnectionError as exc:  # the worker is gone: its other calls tell the rest
            self._lost(job, slot, exc)
            return
        slot.busy += 1
        self.in_flight[future] = (job, slot)
        future.add_done_callback(lambda f: self.done.put((job, slot, f)))

    def _split(self, job: _Job) -> None:
        """A batch too large for one message: two halves, and smaller batches from now on."""
        half = len(job.items) // 2
        self.max_items = max(1, min(self.max_items, half))
        kind = job.kind
        if kind == "combine":
            raise MessageTooLargeError(f"{len(job.items)} accumulators of {self.fn.__name__} do not fit in a message")
        self.waiting.appendleft(_Job(kind, job.start + half, job.end, job.items[half:], job.attempts))
        self.waiting.appendleft(_Job(kind, job.start, job.start + half, job.items[:half], job.attempts))

    # -- completions -----------------------------------------------------------------------------

    def _complete(self, job: _Job, slot: _Slot, future: concurrent.futures.Future[Any]) -> list[tuple[int, Any]]:
        """Take a finished call's result; the ``(index, value)`` pairs it lets the caller have."""
        try:
            value = future.result()
        except MessageTooLargeError:  # the outputs of the batch do not fit in one message
            if len(job.items) < 2:
                raise
            self._split(job)
            return []
        except RemoteError as exc:
            raise self._remote_error(exc, job, slot) from exc
        except WorkerConnectionError as exc:
            self._lost(job, slot, exc)
            return []
        if job.kind == "combine":
            self._reduce_done(job.start, job.end, value)
            return []
        out, seconds = value
        n = job.end - job.start
        per_item = seconds / n
        self.cost = per_item if self.cost is None else 0.7 * self.cost + 0.3 * per_item
        self.largest = max(self.largest, n)
        self.progress.advance(n)
        if job.kind == "reduce":
            self.handed += n
            self._reduce_done(job.start, job.end, out)
            return []
        if self.mode == "ordered":
            heapq.heappush(self.ready, (job.start, out))
            pairs: list[tuple[int, Any]] = []
            while self.ready and self.ready[0][0] == self.next_out:
                start, outs = heapq.heappop(self.ready)
                self.next_out = start + len(outs)
                pairs += zip(range(start, start + len(outs)), outs, strict=True)
            self.handed += len(pairs)
            return pairs
        self.handed += n
        if self.mode == "find":
            return [(job.start + i, v) for i, v in enumerate(out) if v is not None][:1]
        return list(zip(range(job.start, job.end), out, strict=True))

    def _remote_error(self, exc: RemoteError, job: _Job, slot: _Slot) -> RemoteError:
        """The worker's exception, saying which item it was mapping (or which results it combined)."""
        what = f"combining the results of items {job.start}..{job.end - 1}"
        if job.kind != "combine":
            what = f"on one of items {job.start}..{job.end - 1}"
            try:
                fn: Any = self.fn
                what = slot.conn.run(fn.failed_item, job.start) or what
            except RpcParallelError:
                pass
        return RemoteError(exc.remote_type, f"{exc.remote_message} ({what})", exc.remote_traceback,
                           worker_id=exc.worker_id, worker_name=exc.worker_name)

    def _lost(self, job: _Job, slot: _Slot, exc: WorkerConnectionError) -> None:
        """``slot``'s worker died: retry the job on its replacement, or raise (the pool replaces
        the worker before its next operation)."""
        slot.dead = True
        if job.attempts >= self.retries:
            raise self._crashed(job, slot) from exc
        job.attempts += 1
        self.waiting.appendleft(job)
        self.pool._revive()

    def _crashed(self, job: _Job, slot: _Slot) -> WorkerCrashedError:
        deadline = time.monotonic() + 2.0
        while not slot.failure and time.monotonic() < deadline:  # how it died, reported just after
            time.sleep(0.02)
        failure = slot.failure[0] if slot.failure else None
        how = f": {failure}" if failure is not None else ""
        tried = f" (after {job.attempts} retr{'y' if job.attempts == 1 else 'ies'})" if job.attempts else ""
        held = sorted([job, *(j for j, s in self.in_flight.values() if s is slot)], key=lambda j: j.start)
        items = " or ".join(f"items {j.start}..{j.end - 1}" if j.end - j.start > 1 else f"item {j.start}" for j in held)
        return WorkerCrashedError(
            f"{slot.label} of {self.fn.__name__} died while {'combining' if job.kind == 'combine' else 'mapping'} "
            f"{items}{tried}{how}", worker_id=slot.conn.handle.worker_id, worker_name=slot.conn.handle.name,
            exit_code=getattr(failure, "exit_code", None), signal=getattr(failure, "signal", None))

    # -- reductions ------------------------------------------------------------------------------

    def _reduce_done(self, start: int, end: int, acc: Any) -> None:
        if self.mode == "commutative":
            self.accs.append((start, end, acc))
            if len(self.accs) >= 2:
                accs, self.accs = self.accs, []
                self.waiting.append(_Job("combine", min(a[0] for a in accs), max(a[1] for a in accs),
                                         [a[2] for a in accs]))
            return
        run = [(start, end, acc)]  # merge with the done intervals next to it, in order
        while run[0][0] in self.by_end:
            s = self.by_end.pop(run[0][0])
            e, a = self.by_start.pop(s)
            run.insert(0, (s, e, a))
        while run[-1][1] in self.by_start:
            s = run[-1][1]
            e, a = self.by_start.pop(s)
            del self.by_end[e]
            run.append((s, e, a))
        if len(run) == 1:
            self.by_start[start] = (end, acc)
            self.by_end[end] = start
        else:
            self.waiting.append(_Job("combine", run[0][0], run[-1][1], [a for _, _, a in run]))

    def _reduced(self) -> Any:
        if self.mode == "commutative":
            return self.accs[0][2] if self.accs else None
        if not self.by_start:
            return None
        ((_, (_, acc)),) = self.by_start.items()
        return acc


def _length(xs: Iterable[Any]) -> int | None:
    try:
        return len(xs)  # type: ignore[arg-type]
    except TypeError:
        return None


class _Outputs:
    """What an iterator operation hands out, flattened from the run's lists: values, or
    ``(value, index)`` pairs. Closing it (or its collection, even unstarted) ends the run."""

    def __init__(self, run: Run, pairs: bool) -> None:
        self._run = run
        self._pairs = pairs
        self._chunk: Iterator[tuple[int, Any]] = iter(())

    def __iter__(self) -> _Outputs:
        return self

    def __next__(self) -> Any:
        while True:
            for i, v in self._chunk:
                return (v, i) if self._pairs else v
            try:
                self._chunk = iter(next(self._run))
            except BaseException:
                self._run.close()
                raise

    def close(self) -> None:
        self._run.close()

    def __del__(self) -> None:
        self._run.close()


def _values(run: Run) -> Iterator[Any]:
    return _Outputs(run, pairs=False)


def _pairs(run: Run) -> Iterator[tuple[Any, int]]:
    return _Outputs(run, pairs=True)


def _result(run: Run) -> Any:
    try:
        for chunk in run:
            return chunk[0][1]
        return None
    finally:
        run.close()


def one_shot(fn: type[Any], config: Config | None, param: Any, operation: Callable[[Pool], Any],
             iterator: bool) -> Any:
    """Run ``operation`` on a pool of its own, closed when the operation ends (for an iterator:
    when it is exhausted, closed, or collected)."""
    pool = Pool(fn, config=config, param=param)
    try:
        result = operation(pool)
    except BaseException:
        pool.close()
        raise
    if not iterator:
        pool.close()
        return result
    return _Owned(pool, result)


class _Owned:
    """An iterator of a one-shot run: its pool stops when it ends, is closed, or is collected
    (even one never iterated)."""

    def __init__(self, pool: Pool, inner: Iterator[Any]) -> None:
        self._pool: Pool | None = pool
        self._inner = inner

    def __iter__(self) -> _Owned:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._inner)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the run and its workers (idempotent)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                close = getattr(self._inner, "close", None)
                if close is not None:
                    close()
            finally:
                pool.close()

    def __enter__(self) -> _Owned:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
