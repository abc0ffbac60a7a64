"""The workloads. Each runs one repetition of all its variants and returns their figures.

``Env`` owns every long-lived process of a run: the pool of rpc_parallel workers, the raw grpcio
servers, the multiprocessing streaming child, and the asyncio loop (one per process, in a thread)
on which every asyncio client runs. It is created lazily, so ``--only`` starts only what it needs,
and ``Env.close`` stops all of it by pid.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import multiprocessing
import os
import queue
import random
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as MpConnection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

import grpc
import psutil

import rpc_parallel as rp
from rpc_parallel._forkserver import stop as fork_server_stop

from . import _mp
from ._raw_grpc import ECHO, INCR, INTS, PINGPONG, SIZE, RawServer, aio_channel, decode_int, encode_int, sync_channel
from .workers import Bench, BenchInc, BenchSpin

__all__ = ("CALLS_SERVER_MODE", "MODES", "N_WORKERS", "SIZES", "WORKLOADS", "Env", "Sizes")

T = TypeVar("T")
MIB = 1024 * 1024
N_WORKERS = 4
MODES = ("sync", "aio")  # raw grpcio server modes of the rtt and payload workloads (each with both clients)
CALLS_SERVER_MODE = "sync"
_RTT_SLICE = 100  # rtt variants take turns every this many calls
_ROUNDS = 4  # calls/s and payload variants take turns this many times
_MP = multiprocessing.get_context("spawn")  # never fork: this process has imported grpc


@dataclass(frozen=True)
class Sizes:
    repetitions: int
    rtt_warmup: int
    rtt_calls: int
    calls: int
    in_flight: int
    payload_bytes: int
    payload_warmup: int  # gRPC's flow-control windows grow over a connection's first large messages
    payload_calls: int
    pipe_items: int
    one_way_calls: int
    map_items: int  # trivial items of the map_reduce workload
    cpu_items: int  # its CPU-bound items, of cpu_ms each on average
    cpu_ms: float
    cap_s: float  # a variant stops early (and reports its rate so far) after this many seconds


SIZES = {
    "full": Sizes(repetitions=3, rtt_warmup=200, rtt_calls=2000, calls=20_000, in_flight=64,
                  payload_bytes=16 * MIB, payload_warmup=4, payload_calls=20, pipe_items=100_000, one_way_calls=10_000,
                  map_items=100_000, cpu_items=800, cpu_ms=5.0, cap_s=8.0),
    "quick": Sizes(repetitions=1, rtt_warmup=100, rtt_calls=500, calls=4_000, in_flight=64,
                   payload_bytes=16 * MIB, payload_warmup=4, payload_calls=5, pipe_items=20_000, one_way_calls=2_000,
                   map_items=20_000, cpu_items=200, cpu_ms=5.0, cap_s=3.0),
    "smoke": Sizes(repetitions=1, rtt_warmup=5, rtt_calls=20, calls=200, in_flight=64,
                   payload_bytes=1 * MIB, payload_warmup=1, payload_calls=2, pipe_items=1_000, one_way_calls=200,
                   map_items=500, cpu_items=20, cpu_ms=1.0, cap_s=5.0),
}


# -- processes ---------------------------------------------------------------------------------


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: Iterable[int], timeout: float = 10.0) -> list[int]:
    """Wait until the processes ``pids`` exited; return those still running after ``timeout``."""
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left and time.monotonic() < deadline:
        left = [pid for pid in left if not _gone(pid)]
        if left:
            time.sleep(0.02)
    return left


def shutdown_workers(handles: Iterable[rp.WorkerHandle]) -> None:
    """Ask each worker to exit, wait for its process to be gone, and kill it by pid if it lingers."""
    handles = list(handles)
    for h in handles:
        try:
            h.shutdown()
        except rp.RpcParallelError:
            pass
    for pid in wait_gone([h.pid for h in handles]):
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass


def vm_hwm_mib(pid: int) -> float:
    """The peak resident set size of ``pid`` (VmHWM), or its current RSS where /proc has no VmHWM."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float(psutil.Process(pid).memory_info().rss) / MIB


class Env:
    """The processes, connections and channels shared by the workloads of one run."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handles: list[rp.WorkerHandle] = []
        self._conns: list[rp.Connection] = []
        self._aio_conns: list[rp.aio.Connection] = []
        self._raw: dict[str, list[RawServer]] = {}
        self._raw_sync: dict[str, list[grpc.Channel]] = {}
        self._raw_aio: dict[str, list[grpc.aio.Channel]] = {}
        self._streamer: tuple[BaseProcess, MpConnection] | None = None
        self._pool: Any = None
        self.counts: dict[str, list[int]] = {}  # calls (samples, items) each repetition of a figure made
        self.asked: dict[str, int] = {}  # ... of the ones it asked for

    def record(self, figure: str, done: int, asked: int) -> None:
        self.counts.setdefault(figure, []).append(done)
        self.asked[figure] = asked

    # asyncio: one loop for the whole process (grpc.aio wants a single loop), in a daemon thread
    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            threading.Thread(target=self._loop.run_forever, name="bench-asyncio", daemon=True).start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def handles(self) -> list[rp.WorkerHandle]:
        if not self._handles:
            with concurrent.futures.ThreadPoolExecutor(N_WORKERS) as ex:
                futures = [ex.submit(Bench.spawn, None, name=f"bench-pool-{i}") for i in range(N_WORKERS)]
            for f in futures:  # keep the ones that started, so close() stops them
                if f.exception() is None:
                    self._handles.append(f.result())
            for f in futures:
                f.result()
        return self._handles

    def conns(self) -> list[rp.Connection]:
        if not self._conns:
            self._conns = [Bench.connect(h) for h in self.handles()]
        return self._conns

    def aio_conns(self) -> list[rp.aio.Connection]:
        if not self._aio_conns:
            handles = self.handles()

            async def connect() -> list[rp.aio.Connection]:
                return [await rp.aio.connect(Bench, h) for h in handles]

            self._aio_conns = self.run(connect())
        return self._aio_conns

    def raw_servers(self, mode: str, count: int = 1) -> list[RawServer]:
        """The first ``count`` raw servers of ``mode``, started on first use."""
        servers = self._raw.setdefault(mode, [])
        new = [RawServer(mode) for _ in range(count - len(servers))]
        servers += new
        for s in new:
            s.wait_ready()
        return servers[:count]

    def raw_sync(self, mode: str, count: int = 1) -> list[grpc.Channel]:
        """Sync channels to the first ``count`` raw servers of ``mode``."""
        channels = self._raw_sync.setdefault(mode, [])
        channels += [sync_channel(s.address) for s in self.raw_servers(mode, count)[len(channels):]]
        return channels[:count]

    def raw_aio(self, mode: str, count: int = 1) -> list[grpc.aio.Channel]:
        """grpc.aio channels (on the asyncio loop) to the first ``count`` raw servers of ``mode``."""
        channels = self._raw_aio.setdefault(mode, [])
        servers = self.raw_servers(mode, count)[len(channels):]

        async def open_all() -> list[grpc.aio.Channel]:
            return [await aio_channel(s.address) for s in servers]

        if servers:
            channels += self.run(open_all())
        return channels[:count]

    def streamer(self) -> MpConnection:
        if self._streamer is None:
            parent, child = _MP.Pipe()
            proc = _MP.Process(target=_mp.stream_ints, args=(child,), name="bench-mp-streamer", daemon=True)
            proc.start()
            child.close()
            self._streamer = (proc, parent)
        return self._streamer[1]

    def mp_pool(self) -> Any:
        """A multiprocessing.Pool of 4 (spawn context), the calls/s baseline."""
        if self._pool is None:
            self._pool = _MP.Pool(N_WORKERS)
            self._pool.apply(_mp.inc, (0,))  # started
        return self._pool

    def pool_worker_peak_mib(self) -> float | None:
        """VmHWM of pool worker 0 (after whatever the workloads made it do), if the pool exists."""
        return vm_hwm_mib(self._handles[0].pid) if self._handles else None

    def close(self) -> None:
        """Stop everything this run started; each process by its pid."""
        if self._loop is not None:
            aio_conns, aio_channels = self._aio_conns, [c for cs in self._raw_aio.values() for c in cs]

            async def close_aio() -> None:
                for conn in aio_conns:
                    await conn.aclose()
                for channel in aio_channels:
                    await channel.close(None)

            try:
                self.run(close_aio())
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
        for conn in self._conns:
            conn.close()
        for channels in self._raw_sync.values():
            for channel in channels:
                channel.close()
        shutdown_workers(self._handles)
        for servers in self._raw.values():
            for s in servers:
                s.stop()
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None
        if self._streamer is not None:
            proc, parent = self._streamer
            try:
                parent.send(None)
            except OSError:
                pass
            parent.close()
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self._aio_conns, self._conns, self._handles, self._raw, self._raw_sync, self._raw_aio = [], [], [], {}, {}, {}
        self._streamer = None
        fork_server_stop()  # it would exit with this process; the run's leak check wants it gone now


# -- measuring helpers -------------------------------------------------------------------------


def _percentiles(name: str, samples_ns: list[int]) -> dict[str, float]:
    s = sorted(samples_ns)
    median = s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
    p99 = s[min(len(s) - 1, max(0, -(-99 * len(s) // 100) - 1))]  # nearest rank
    return {f"{name}_median_us": median / 1000, f"{name}_p99_us": p99 / 1000}


# A runner makes ``count`` calls numbered from ``first`` (stopping after ``cap_s`` seconds) and
# returns (calls made, seconds, results); results are rtt samples in ns, or the calls' return values.
Runner = Callable[[int, int, float], tuple[int, float, list[Any]]]


@dataclass
class _Tally:
    done: int = 0
    seconds: float = 0.0
    results: list[Any] = field(default_factory=list)


def _interleave(runners: dict[str, Runner], n: int, slice_size: int, cap_s: float) -> dict[str, _Tally]:
    """Make ``n`` calls with every runner, in slices of ``slice_size``, one runner after the other in
    each round, so that load changes on the (shared, noisy) machine hit every variant alike. A
    runner stops once it used ``cap_s`` seconds in all (its remaining budget is spread over the
    remaining rounds)."""
    tallies = {name: _Tally() for name in runners}
    rounds = max(1, -(-n // slice_size))
    for r in range(rounds):
        for name, run in runners.items():
            t = tallies[name]
            count = min(slice_size, n - t.done)
            budget = (cap_s - t.seconds) / (rounds - r)
            if count <= 0 or budget <= 0:
                continue
            done, seconds, results = run(t.done, count, budget)
            t.done += done
            t.seconds += seconds
            t.results += results
    return tallies


def _ping(requests: queue.SimpleQueue[bytes | None], replies: Iterator[bytes]) -> None:
    requests.put(b"")
    next(replies)


async def _aio_ping(channel: grpc.aio.Channel, call: list[Any]) -> None:
    if call[0] is None:  # opened on first use, on the loop that runs the calls
        call[0] = channel.stream_stream(PINGPONG, None, None)()
    await call[0].write(b"")
    await call[0].read()


def _sync_rtt(call: Callable[[], object]) -> Runner:
    def run(first: int, count: int, cap_s: float) -> tuple[int, float, list[Any]]:
        clock = time.perf_counter_ns
        start = clock()
        deadline = start + int(cap_s * 1e9)
        samples = []
        for _ in range(count):
            t0 = clock()
            call()
            t1 = clock()
            samples.append(t1 - t0)
            if t1 > deadline:
                break
        return len(samples), (clock() - start) / 1e9, samples

    return run


def _aio_rtt(env: Env, call: Callable[[], Awaitable[object]]) -> Runner:
    async def block(count: int, cap_s: float) -> tuple[int, float, list[Any]]:
        clock = time.perf_counter_ns
        start = clock()
        deadline = start + int(cap_s * 1e9)
        samples = []
        for _ in range(count):
            t0 = clock()
            await call()
            t1 = clock()
            samples.append(t1 - t0)
            if t1 > deadline:
                break
        return len(samples), (clock() - start) / 1e9, samples

    return lambda first, count, cap_s: env.run(block(count, cap_s))


def _sync_pipelined(start: Callable[[int], Any], value: Callable[[Any], int], in_flight: int) -> Runner:
    """Calls started by ``start(i)`` (returning a future), at most ``in_flight`` unfinished, no more
    started after the cap; results are ``value(future)`` of each call, in no order. No future is
    kept once done: a heap growing with them would make every gc pass slower."""

    def run(first: int, count: int, cap_s: float) -> tuple[int, float, list[Any]]:
        slots = threading.Semaphore(in_flight)
        release = slots.release
        results: list[int] = []
        append = results.append

        def on_done(f: Any) -> None:
            try:
                append(value(f))
            finally:
                release()

        clock = time.perf_counter
        t0 = clock()
        deadline = t0 + cap_s
        started = 0
        for i in range(first, first + count):
            slots.acquire()
            start(i).add_done_callback(on_done)
            started += 1
            if clock() > deadline:
                break
        for _ in range(in_flight):  # every slot free again: every call finished
            slots.acquire()
        elapsed = clock() - t0
        if len(results) != started:
            raise AssertionError(f"{started - len(results)} of {started} calls failed")
        return started, elapsed, results

    return run


def _aio_pipelined(env: Env, call: Callable[[int], Awaitable[Any]], in_flight: int) -> Runner:
    """``asyncio.gather`` of the calls behind a semaphore of ``in_flight``; the calls not started
    before the cap are skipped."""

    async def gather(first: int, count: int, cap_s: float) -> tuple[int, float, list[Any]]:
        slots = asyncio.Semaphore(in_flight)
        clock = time.perf_counter
        deadline = clock() + cap_s
        skipped = object()

        async def one(i: int) -> Any:
            async with slots:
                if clock() > deadline:
                    return skipped
                return await call(i)

        t0 = clock()
        results = await asyncio.gather(*(one(i) for i in range(first, first + count)))
        elapsed = clock() - t0
        done = [r for r in results if r is not skipped]
        return len(done), elapsed, done

    return lambda first, count, cap_s: env.run(gather(first, count, cap_s))


def _warm(runners: dict[str, Runner], count: int) -> None:
    for run in runners.values():
        run(0, count, 60.0)


def _result(f: Any) -> int:
    result: int = f.result()
    return result


def _check(what: str, got: list[int]) -> None:
    if not got or sorted(got) != list(range(1, len(got) + 1)):
        raise AssertionError(f"{what}: wrong results")


# -- the workloads -----------------------------------------------------------------------------


def spawn_rp(n: int, name: str) -> float:
    """Seconds to start ``n`` rpc_parallel workers (in ``n`` threads) and get one rpc answered by
    each; the workers are shut down after."""
    started: list[rp.WorkerHandle] = []

    def one(i: int) -> None:
        handle = Bench.spawn(None, name=f"{name}-{i}")
        started.append(handle)
        with Bench.connect(handle) as conn:
            conn.run(Bench.noop)

    try:
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(n) as ex:
            for f in [ex.submit(one, i) for i in range(n)]:
                f.result()
        return time.perf_counter() - t0
    finally:
        shutdown_workers(started)


def spawn(env: Env, sizes: Sizes) -> dict[str, float]:
    """Start 4 workers and get one answer from each: rpc_parallel (spawn in 4 threads, then one rpc
    each) vs multiprocessing (spawn-context Process + Pipe, one message each)."""
    rp_s = spawn_rp(N_WORKERS, "bench-spawn")
    mp_s = _mp.spawn_answering(_MP, N_WORKERS, "bench-mp")
    return {"spawn_rpc_parallel_s": rp_s, "spawn_multiprocessing_s": mp_s}


def cold_spawn(env: Env, sizes: Sizes) -> dict[str, float]:
    """A cold spawn of 4 workers, as a user's script pays it: each side in a fresh process
    (``python -m bench._cold``), rpc_parallel's fork server started there too; its import apart."""
    out: dict[str, float] = {}
    for kind, name in (("rp", "rpc_parallel"), ("mp", "multiprocessing")):
        done = subprocess.run([sys.executable, "-m", "bench._cold", kind], capture_output=True, text=True,
                              timeout=120, check=False, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        if done.returncode != 0:
            raise RuntimeError(f"bench._cold {kind} failed: {done.stderr[-2000:]}")
        got = json.loads(done.stdout.splitlines()[-1])
        out[f"cold_spawn_{name}_s"] = got["seconds"]
        out[f"cold_import_{name}_s"] = got["import_s"]
    return out


def rtt(env: Env, sizes: Sizes) -> dict[str, float]:
    """Sequential no-op calls, each timed: rpc_parallel run (blocking and asyncio) vs raw grpcio echo
    (sync and aio server, each with a sync and an aio client); the variants take turns every 100 calls."""
    n = sizes.rtt_calls
    conn = env.conns()[0]
    aconn = env.aio_conns()[0]
    streams: list[tuple[queue.SimpleQueue[bytes | None], Any]] = []
    aio_streams: list[list[Any]] = []
    runners = {
        "rtt_rpc_parallel_sync": _sync_rtt(lambda: conn.run(Bench.noop)),
        "rtt_rpc_parallel_sync_async_fn": _sync_rtt(lambda: conn.run(Bench.anoop)),
        "rtt_rpc_parallel_aio": _aio_rtt(env, lambda: aconn.run(Bench.noop)),
        "rtt_rpc_parallel_aio_async_fn": _aio_rtt(env, lambda: aconn.run(Bench.anoop)),
    }
    for mode in MODES:
        call: Callable[[bytes], Any] = env.raw_sync(mode)[0].unary_unary(ECHO, None, None)
        runners[f"rtt_grpc_{mode}_server_sync_client"] = _sync_rtt(functools.partial(call, b""))
        acall: Callable[[bytes], Awaitable[bytes]] = env.raw_aio(mode)[0].unary_unary(ECHO, None, None)
        runners[f"rtt_grpc_{mode}_server_aio_client"] = _aio_rtt(env, functools.partial(acall, b""))
        # the floor of any call on an open stream: one message each way on a bidi stream
        requests: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        replies = env.raw_sync(mode)[0].stream_stream(PINGPONG, None, None)(iter(requests.get, None))
        streams.append((requests, replies))
        runners[f"rtt_grpc_{mode}_server_sync_client_stream"] = _sync_rtt(
            functools.partial(_ping, requests, replies))
        aio_streams.append([None])
        runners[f"rtt_grpc_{mode}_server_aio_client_stream"] = _aio_rtt(
            env, functools.partial(_aio_ping, env.raw_aio(mode)[0], aio_streams[-1]))
    try:
        _warm(runners, sizes.rtt_warmup)
        out: dict[str, float] = {}
        for name, t in _interleave(runners, n, _RTT_SLICE, sizes.cap_s).items():
            out.update(_percentiles(name, t.results))
            env.record(f"{name}_median_us", t.done, n)
        return out
    finally:
        for requests, replies in streams:
            requests.put(None)
            replies.cancel()
        for call in aio_streams:
            if call[0] is not None:
                call[0].cancel()


class _Sink:
    """Stands in for this process's stderr while a worker's relayed lines arrive: counts them."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        return len(text)

    def flush(self) -> None:
        pass


def relay(env: Env, sizes: Sizes) -> dict[str, float]:
    """rtt of a blocking rpc while the called worker prints 1,000 lines/s to its stderr (relayed here,
    line by line, by rp.RELAY, into a sink standing in for our stderr), against the same calls while it
    is quiet; the two take turns every 100 calls."""
    n = sizes.rtt_calls
    conn = env.conns()[0]
    quiet = _sync_rtt(lambda: conn.run(Bench.noop))

    def printing(first: int, count: int, cap_s: float) -> tuple[int, float, list[Any]]:
        conn.run(Bench.chatter, 1000.0)
        try:
            time.sleep(0.05)  # under way
            return quiet(first, count, cap_s)
        finally:
            conn.run(Bench.chatter, 0.0)

    runners: dict[str, Runner] = {"relay_rtt_quiet": quiet, "relay_rtt_printing": printing}
    sink, saved = _Sink(), sys.stderr
    sys.stderr = sink  # type: ignore[assignment]
    try:
        tallies = _interleave(runners, n, _RTT_SLICE, sizes.cap_s)
    finally:
        sys.stderr = saved
    out: dict[str, float] = {"relay_lines_relayed": float(sink.lines)}
    for name, t in tallies.items():
        out[f"{name}_median_us"] = _percentiles(name, t.results)[f"{name}_median_us"]
        env.record(f"{name}_median_us", t.done, n)
    return out


def memory(env: Env, sizes: Sizes) -> dict[str, float]:
    """Bounded memory (DESIGN.md section 10), on a fresh worker: its RSS growth while a pipe of
    1 MiB items is open but no longer read; then both sides' peak RSS while sending 100 KB one_way
    calls (10,000 in a full run) to a worker that takes 0.5 ms each (the caller must wait)."""
    handle = Bench.spawn(name="bench-memory")
    me = psutil.Process()
    try:
        with Bench.connect(handle) as conn:
            idle = conn.run(Bench.rss_mib)
            with conn.run(Bench.blobs, MIB, 100_000) as pipe:
                next(pipe)  # then no more reading
                time.sleep(1.0 if sizes.repetitions > 1 else 0.5)
                stopped = conn.run(Bench.rss_mib)
            payload = bytes(100_000)
            worker_peak = master_peak = 0.0
            for i in range(sizes.one_way_calls):
                conn.run(Bench.slow_note, payload, 0.0005)
                if not i % 200:
                    worker_peak = max(worker_peak, conn.run(Bench.rss_mib))
                    master_peak = max(master_peak, me.memory_info().rss / MIB)
            worker_peak = max(worker_peak, conn.run(Bench.rss_mib))
    finally:
        shutdown_workers([handle])
    return {"memory_pipe_stopped_growth_mib": max(0.01, stopped - idle), "memory_one_way_worker_peak_mib": worker_peak,
            "memory_one_way_master_peak_mib": master_peak}


def calls(env: Env, sizes: Sizes) -> dict[str, float]:
    """``calls`` calls of x -> x + 1 spread over 4 workers, ``in_flight`` unfinished at a time; the
    variants take turns every quarter of the calls."""
    n, k = sizes.calls, sizes.in_flight
    conns = env.conns()
    aconns = env.aio_conns()
    # raw grpcio: both clients over 4 sync servers (the faster server mode for calls/s, DESIGN.md section 8)
    multis = [ch.unary_unary(INCR, None, None) for ch in env.raw_sync(CALLS_SERVER_MODE, N_WORKERS)]
    amultis = [ch.unary_unary(INCR, None, None) for ch in env.raw_aio(CALLS_SERVER_MODE, N_WORKERS)]

    def rp_submit(i: int) -> concurrent.futures.Future[int]:
        return conns[i % N_WORKERS].submit(Bench.incr, i)

    def rp_aio(i: int) -> Awaitable[int]:
        return aconns[i % N_WORKERS].run(Bench.incr, i)

    pool = env.mp_pool()

    def mp_submit(i: int) -> concurrent.futures.Future[int]:
        # apply_async as a user pipelines it, its result handed over by the pool's result thread
        done: concurrent.futures.Future[int] = concurrent.futures.Future()
        pool.apply_async(_mp.inc, (i,), callback=done.set_result, error_callback=done.set_exception)
        return done

    def raw_future(i: int) -> Any:
        return multis[i % N_WORKERS].future(encode_int(i))

    def raw_result(f: Any) -> int:
        return decode_int(f.result())

    async def raw_aio(i: int) -> int:
        return decode_int(await amultis[i % N_WORKERS](encode_int(i)))

    runners = {
        "calls_rpc_parallel_submit_per_s": _sync_pipelined(rp_submit, _result, k),
        "calls_rpc_parallel_aio_per_s": _aio_pipelined(env, rp_aio, k),
        "calls_grpc_sync_client_per_s": _sync_pipelined(raw_future, raw_result, k),
        "calls_grpc_aio_client_per_s": _aio_pipelined(env, raw_aio, k),
        "calls_multiprocessing_apply_async_per_s": _sync_pipelined(mp_submit, _result, k),
    }
    _warm(runners, min(n, 4 * k))
    out: dict[str, float] = {}
    for name, t in _interleave(runners, n, -(-n // _ROUNDS), sizes.cap_s).items():
        _check(name, t.results)
        out[name] = t.done / t.seconds
        env.record(name, t.done, n)
    return out


def payload(env: Env, sizes: Sizes) -> dict[str, float]:
    """A ``payload_bytes`` bytes argument whose length comes back, ``payload_calls`` times in a row;
    MB/s. The variants take turns every quarter of the calls."""
    size, n = sizes.payload_bytes, sizes.payload_calls
    data = b"\xa5" * size

    def sequential(call: Callable[[], int]) -> Runner:
        def run(first: int, count: int, cap_s: float) -> tuple[int, float, list[Any]]:
            clock = time.perf_counter
            t0 = clock()
            got = []
            for _ in range(count):
                got.append(call())
                if clock() - t0 > cap_s:
                    break
            return len(got), clock() - t0, got

        return run

    conn = env.conns()[0]
    runners = {"payload_rpc_parallel_mb_s": sequential(lambda: conn.run(Bench.size, data))}
    for mode in MODES:
        call: Callable[[bytes], bytes] = env.raw_sync(mode)[0].unary_unary(SIZE, None, None)
        acall: Callable[[bytes], Awaitable[bytes]] = env.raw_aio(mode)[0].unary_unary(SIZE, None, None)

        def sync_size(call: Callable[[bytes], bytes] = call) -> int:
            return decode_int(call(data))

        async def aio_size(acall: Callable[[bytes], Awaitable[bytes]] = acall) -> int:
            return decode_int(await acall(data))

        def aio_size_blocking(f: Callable[[], Coroutine[Any, Any, int]] = aio_size) -> int:
            return env.run(f())

        runners[f"payload_grpc_{mode}_server_sync_client_mb_s"] = sequential(sync_size)
        runners[f"payload_grpc_{mode}_server_aio_client_mb_s"] = sequential(aio_size_blocking)
    _warm(runners, sizes.payload_warmup)  # the first 16 MiB call of a connection takes ~4x the fifth
    out: dict[str, float] = {}
    for name, t in _interleave(runners, n, -(-n // _ROUNDS), sizes.cap_s).items():
        if t.results != [size] * t.done:
            raise AssertionError(f"{name}: wrong sizes")
        out[name] = t.done * size / 1e6 / t.seconds
        env.record(name, t.done, n)
    return out


def pipe(env: Env, sizes: Sizes) -> dict[str, float]:
    """``pipe_items`` ints streamed to the caller; items/s: rpc_parallel pipe vs raw grpcio server
    streaming with one int64 per message (sync server, sync client) vs a multiprocessing Pipe."""
    n, cap = sizes.pipe_items, sizes.cap_s
    warm = min(n, 1000)
    out: dict[str, float] = {}
    clock = time.perf_counter

    def record(name: str, t0: float, count: int, last: int) -> None:
        out[name] = count / (clock() - t0)
        env.record(name, count, n)
        if count == 0 or last != count - 1:
            raise AssertionError(f"{name}: wrong items")

    conn = env.conns()[0]
    list(conn.run(Bench.ints, warm))
    t0 = clock()
    count = last = 0
    with conn.run(Bench.ints, n) as items:
        for item in items:
            last = item
            count += 1
            if not count % 1024 and clock() - t0 > cap:
                break
    record("pipe_rpc_parallel_items_s", t0, count, last)

    stream = env.raw_sync("sync")[0].unary_stream(INTS, None, None)
    for _ in stream(encode_int(warm)):
        pass
    t0 = clock()
    count = last = 0
    messages: Any = stream(encode_int(n))
    for message in messages:
        last = decode_int(message)
        count += 1
        if not count % 1024 and clock() - t0 > cap:
            messages.cancel()
            break
    record("pipe_grpc_per_item_items_s", t0, count, last)

    mp = env.streamer()
    mp.send(warm)
    while mp.recv() is not None:
        pass
    t0 = clock()
    mp.send(n)
    count = last = 0
    recv = mp.recv
    while (item := recv()) is not None:
        last = item
        count += 1
    record("pipe_multiprocessing_items_s", t0, count, last)
    return out


def rss(env: Env, sizes: Sizes) -> dict[str, float]:
    """Resident memory of a fresh rpc_parallel worker that answered one call and sits idle, and of a
    multiprocessing spawn child that answered one message."""
    handle = Bench.spawn(None, name="bench-idle")
    try:
        with Bench.connect(handle) as conn:
            conn.run(Bench.noop)
        time.sleep(0.3)
        worker_rss = psutil.Process(handle.pid).memory_info().rss / MIB
        worker_peak = vm_hwm_mib(handle.pid)
    finally:
        shutdown_workers([handle])

    parent, child = _MP.Pipe()
    proc = _MP.Process(target=_mp.answer_once, args=(child,), name="bench-mp-idle", daemon=True)
    proc.start()
    child.close()
    try:
        parent.send(0)
        parent.recv()
        time.sleep(0.3)
        assert proc.pid is not None
        mp_rss = psutil.Process(proc.pid).memory_info().rss / MIB
    finally:
        parent.close()
        proc.join(10)
    return {"rss_idle_worker_mib": worker_rss, "rss_idle_worker_peak_mib": worker_peak,
            "rss_multiprocessing_idle_child_mib": mp_rss}


def _loops_per_ms() -> float:
    """About how many iterations of ``_mp.spin`` take a millisecond here (the best of 5 runs of 20 ms,
    after a warm-up): sizes the CPU-bound items."""
    n = 400_000  # about 20 ms
    _mp.spin(5 * n)  # first, work long enough for the CPU to reach the speed it keeps under load
    best = min(_timed(lambda: _mp.spin(n)) for _ in range(5))
    return n / (best * 1000)


def _cpu_items(kind: str, sizes: Sizes, per_ms: float) -> list[int]:
    """CPU-bound items of ``sizes.cpu_ms`` on average: all alike, or exponential costs (fixed seed)."""
    if kind == "even":
        return [int(sizes.cpu_ms * per_ms)] * sizes.cpu_items
    rng = random.Random(7)
    return [int(rng.expovariate(1 / sizes.cpu_ms) * per_ms) for _ in range(sizes.cpu_items)]


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def map_reduce(env: Env, sizes: Sizes) -> dict[str, float]:
    """rp.map_reduce against multiprocessing.Pool (spawn context, default chunking), as many workers
    as cores, both pools started before the clock: items/s of ``map_unordered``/``map`` over
    trivial items (x -> x + 1) against ``imap_unordered``/``imap``; parallel efficiency (the work's
    single-core time / workers / wall) of a CPU-bound map of even and of uneven items (exponential
    costs, the same mean, a fixed seed); and the time to the first result of a map on a fresh pool
    (spawn included) against a warm rp.map_reduce.Pool. Efficiency is the items' total time, each
    timed where it ran, over the workers, over the wall time: 1.0 when no worker ever idles."""
    cores = os.cpu_count() or 1
    config = rp.map_reduce.Config(local=cores)
    out: dict[str, float] = {}
    n = sizes.map_items

    t0 = time.perf_counter()
    with rp.map_reduce.Pool(BenchInc, config=config) as fresh:
        next(iter(fresh.map(range(10))))
        out["mr_first_result_fresh_rp_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with _MP.Pool(cores) as pool:
        next(pool.imap(_mp.inc, range(10)))
        out["mr_first_result_fresh_pool_s"] = time.perf_counter() - t0

    with (rp.map_reduce.Pool(BenchInc, config=config) as inc_pool,
          rp.map_reduce.Pool(BenchSpin, config=config) as spin_pool, _MP.Pool(cores) as pool):
        t0 = time.perf_counter()
        next(iter(inc_pool.map(range(10))))
        out["mr_first_result_warm_rp_s"] = time.perf_counter() - t0
        next(pool.imap(_mp.spin, range(10)))  # every Pool process up
        runs: dict[str, Callable[[list[int]], int]] = {
            "unordered_rp": lambda xs: sum(1 for _ in inc_pool.map_unordered(xs)),
            "unordered_pool": lambda xs: sum(1 for _ in pool.imap_unordered(_mp.inc, xs)),
            "ordered_rp": lambda xs: sum(1 for _ in inc_pool.map(xs)),
            "ordered_pool": lambda xs: sum(1 for _ in pool.imap(_mp.inc, xs)),
        }
        for name, run in runs.items():
            items = list(range(n))
            t = _timed(lambda run=run, items=items: _check_count(run(items), n))
            out[f"mr_{name}_items_s"] = n / t
        cpu: dict[str, Callable[[list[int]], list[float]]] = {
            "rp": lambda xs: [s for s, _ in spin_pool.map_unordered(xs)],
            "pool": lambda xs: list(pool.imap_unordered(_mp.spin_timed, xs)),
        }
        per_ms = _loops_per_ms()
        for kind in ("even", "uneven"):
            items = _cpu_items(kind, sizes, per_ms)
            for system, run in cpu.items():
                # ideal wall: the items' own times (each timed where it ran: the machine's speed
                # drifts, so a calibration made elsewhere or earlier would not hold) over the workers
                t0 = time.perf_counter()
                seconds = run(items)
                wall = time.perf_counter() - t0
                _check_count(len(seconds), len(items))
                out[f"mr_cpu_{kind}_{system}_efficiency"] = sum(seconds) / cores / wall
                out[f"mr_cpu_{kind}_{system}_item_ms"] = 1000 * sum(seconds) / len(seconds)
    return out


def _check_count(got: int, want: int) -> None:
    if got != want:
        raise RuntimeError(f"map_reduce workload: {got} results for {want} items")


WORKLOADS: dict[str, Callable[[Env, Sizes], dict[str, float]]] = {
    "spawn": spawn, "cold_spawn": cold_spawn, "rtt": rtt, "relay": relay, "calls": calls, "payload": payload, "pipe": pipe, "rss": rss,
    "memory": memory, "map_reduce": map_reduce,
}
