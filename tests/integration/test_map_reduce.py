"""rp.map_reduce over real worker processes: every operation, configs, pools, laziness and pushback,
batching, progress, failures and retries. The autouse leak check fails a test that left a worker."""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest

import rpc_parallel as rp
from rpc_parallel import map_reduce as mr
from rpc_parallel._forkserver import server_pid
from rpc_parallel.codegen import generate

from .map_workers import (
    AsyncSquare,
    BadCombine,
    BadInit,
    BigOut,
    Concat,
    CrashOnce,
    Delayed,
    Fails,
    Inc,
    Multiple,
    Overlap,
    Printing,
    Scale,
    Scaled,
    Slow,
    Sum,
)

TWO = mr.Config(local=2)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gone(pids: set[int], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _worker_pids() -> set[int]:
    """The live processes under this one but the fork server: the workers (its children)."""
    pids = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if p.pid != server_pid() and p.status() != psutil.STATUS_ZOMBIE:
                pids.add(p.pid)
        except psutil.Error:
            pass
    return pids


# -- declarations --------------------------------------------------------------------------------


def test_a_map_function_is_a_worker_type_with_a_generated_proto() -> None:
    files = {f.path.name: f for f in generate("tests.integration.map_workers")}
    proto = files["map_workers.proto"].text
    assert "service Scaled {" in proto and "rpc MapBatch(ScaledMapBatchRequest)" in proto
    assert "rpc CombineAll(ConcatCombineAllRequest)" in proto
    assert "map_batch(start: int, xs: list[int]) -> tuple[list[tuple[int, int, str, int]], float]" in proto
    assert "map_workers_rpcpar.py" in files


def test_map_function_hints_are_checked_when_the_class_is_defined(tmp_path: Path) -> None:
    script = tmp_path / "decl.py"
    script.write_text(textwrap.dedent('''
        import rpc_parallel as rp

        cases = {
            "unsupported": "class A(rp.MapFunction):\\n    def map(self, x: set[int]) -> int: ...",
            "no map": "class B(rp.MapFunction):\\n    pass",
            "no combine": "class C(rp.MapReduceFunction):\\n    def map(self, x: int) -> int: ...",
            "two args": "class D(rp.MapFunction):\\n    def map(self, x: int, y: int) -> int: ...",
            "no hint": "class E(rp.MapFunction):\\n    def map(self, x) -> int: ...",
            "init": "class F(rp.MapFunction):\\n    def init(self, param: int) -> None: ...\\n"
                    "    def map(self, x: int) -> int: ...",
            "reserved": "class G(rp.MapFunction):\\n    def map_batch(self): ...\\n    def map(self, x: int) -> int: ...",
        }
        for name, source in cases.items():
            try:
                exec(compile(source, "decl.py", "exec"), {"rp": rp, "__name__": "decl"})
            except rp.DeclarationError as exc:
                print(name, "->", type(exc).__name__, ":", str(exc).splitlines()[0])
            else:
                print(name, "-> accepted")
    '''))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    lines = dict(line.split(" -> ", 1) for line in out.stdout.splitlines())
    assert lines["unsupported"].startswith("UnsupportedTypeError") and "set[int]" in lines["unsupported"], out
    assert "needs a method map(self, x: T) -> U" in lines["no map"]
    assert "needs a method combine(self, a: U, b: U) -> U" in lines["no combine"]
    assert "takes 1 argument besides self" in lines["two args"]
    assert "parameter x: missing type annotation" in lines["no hint"]
    assert "takes (self, param, worker_index)" in lines["init"]
    assert "not map_batch" in lines["reserved"]


def test_the_base_classes_are_no_worker_types() -> None:
    with pytest.raises(rp.RpcParallelError):
        rp.MapFunction.spawn()
    with pytest.raises(TypeError, match="takes an rp.MapFunction or rp.MapReduceFunction subclass"):
        list(mr.map(rp.Worker, [1]))  # type: ignore[arg-type]


# -- the operations ------------------------------------------------------------------------------


def test_map_keeps_the_input_order_and_map_unordered_tags_each_output() -> None:
    delays = [40, 1, 1, 1, 30, 1, 1, 20] * 3  # uneven: later items finish first
    assert list(mr.map(Delayed, delays, config=TWO)) == delays
    assert list(mr.map(Inc, range(1000), config=TWO)) == list(range(1, 1001))
    pairs = list(mr.map_unordered(Inc, range(1000), config=mr.Config(local=3)))
    assert sorted(pairs, key=lambda p: p[1]) == [(i + 1, i) for i in range(1000)]


def test_map_reduce_keeps_the_order_and_both_reductions_of_nothing_are_none() -> None:
    assert mr.map_reduce(Concat, range(2000), config=TWO) == list(range(2000))
    assert mr.map_reduce_commutative(Sum, range(100_001), config=TWO) == sum(range(100_001))
    assert mr.map_reduce(Concat, [], config=TWO) is None
    assert mr.map_reduce_commutative(Sum, iter(()), config=TWO) is None
    assert mr.map_reduce(Concat, [7], config=TWO) == [7]


def test_find_map_returns_a_match_of_an_infinite_input_and_stops_every_worker() -> None:
    before = _worker_pids()
    found = mr.find_map(Multiple, itertools.count(), config=TWO, param=1000)
    assert found is not None and found % 1000 == 0
    assert _gone(_worker_pids() - before)
    assert mr.find_map(Multiple, range(999), config=TWO, param=1000) is None


def test_init_gets_the_param_and_each_worker_its_index_per_group() -> None:
    config = mr.Config(local=2, remote=[(rp.Local(), 2)])
    out = list(mr.map(Scaled, range(200), config=config, param=Scale(3, "side")))
    assert [x for x, _, _, _ in out] == [3 * i for i in range(200)]
    assert {label for _, _, label, _ in out} == {"side"}
    by_pid = {pid: index for _, index, _, pid in out}
    assert set(by_pid.values()) <= {0, 1}  # two groups of two, each indexed 0..1
    assert all(list(by_pid.values()).count(i) <= 2 for i in (0, 1))
    with pytest.raises(TypeError, match="takes no param"):
        mr.map(Inc, [1], param=3)


def test_an_async_map_and_combine() -> None:
    assert mr.map_reduce(AsyncSquare, range(100), config=TWO) == sum(i * i for i in range(100))
    assert list(mr.map(AsyncSquare, range(5), config=TWO)) == [0, 1, 4, 9, 16]


# -- config --------------------------------------------------------------------------------------


def test_config_defaults_to_a_worker_per_core_and_refuses_no_workers() -> None:
    assert mr.Config().workers == os.cpu_count()
    assert mr.Config(local=0, remote=[(rp.Local(), 3)]).workers == 3
    with pytest.raises(ValueError, match="0 or more"):
        mr.Config(local=-1)
    with pytest.raises(ValueError, match="0 or more"):
        mr.Config(remote=[(rp.Local(), -2)])
    with pytest.raises(ValueError, match="no worker"):
        mr.Config(local=0, remote=[(rp.Local(), 0)])


def test_redirects_may_depend_on_the_worker_index_and_cd_and_env_apply(tmp_path: Path) -> None:
    config = mr.Config(local=2, cd=str(tmp_path), env={"MAP_TEST": "yes"},
                       redirect_stdout=lambda i: rp.FileAppend(f"out-{i}.log"))
    before = _worker_pids()
    assert sorted(mr.map(Printing, range(40), config=config)) == list(range(40))
    assert _gone(_worker_pids() - before)  # a worker's output is all in its file once it has exited
    logs = {p.name: p.read_text() for p in tmp_path.glob("out-*.log")}
    assert set(logs) <= {"out-0.log", "out-1.log"} and logs
    lines = {name: [line.split() for line in text.splitlines() if line.startswith("mapped ")]
             for name, text in logs.items()}
    assert sorted(int(words[1]) for found in lines.values() for words in found) == list(range(40)), logs
    for name, found in lines.items():  # each worker's own file, in the cd, with the env
        assert {(w[3], w[5], w[7]) for w in found} == {(name[4], "yes", str(tmp_path))}, logs


# -- pools ---------------------------------------------------------------------------------------


def test_a_pool_keeps_its_workers_for_many_maps() -> None:
    with mr.Pool(Scaled, config=TWO, param=Scale(1, "p")) as pool:
        assert pool.workers == 2
        first = {pid for _, _, _, pid in pool.map(range(100))}
        assert sorted(i for _, i in pool.map_unordered(range(10))) == list(range(10))
        for i, _ in enumerate(pool.map(itertools.count())):  # left early: the pool lives on
            if i == 50:
                break
        again = {pid for _, _, _, pid in pool.map(range(100))}
        assert again <= first and len(first) == 2
        assert pool.find_map(range(10)) is not None
    assert _gone(first)
    with pytest.raises(rp.RpcParallelError, match="closed"):
        pool.map([1])


def test_a_pool_runs_one_map_at_a_time() -> None:
    with mr.Pool(Inc, config=TWO) as pool:
        running = pool.map(range(100_000))
        next(running)
        with pytest.raises(RuntimeError, match="one map at a time"):
            pool.map([1])
        running.close()
        assert list(pool.map([1, 2])) == [2, 3]


def test_leaving_a_map_early_stops_every_worker() -> None:
    before = _worker_pids()
    outputs = mr.map(Inc, itertools.count(), config=TWO)
    assert [next(outputs) for _ in range(10)] == list(range(1, 11))
    started = _worker_pids() - before
    assert len(started) == 2
    outputs.close()
    assert _gone(started)


def test_breaking_out_or_dropping_the_iterator_stops_every_worker() -> None:
    before = _worker_pids()
    for y in mr.map(Inc, itertools.count(), config=TWO):
        if y == 100:
            break  # the iterator is dropped here
    assert _gone(_worker_pids() - before)
    outputs = mr.map_unordered(Inc, itertools.count(), config=TWO)
    next(outputs)
    started = _worker_pids() - before
    del outputs
    gc.collect()
    assert started and _gone(started)
    never_started = mr.map(Inc, range(10), config=TWO)  # spawned, never iterated, collected
    started = _worker_pids() - before
    del never_started
    gc.collect()
    assert started and _gone(started)


# -- laziness, pushback, batching ----------------------------------------------------------------


def test_the_input_is_read_lazily_and_a_stopped_consumer_stops_the_workers() -> None:
    read = 0

    def numbers() -> Iterator[int]:
        nonlocal read
        for i in itertools.count():
            read += 1
            yield i

    outputs = mr.map_unordered(Inc, numbers(), config=TWO)
    try:
        for _ in range(10):
            next(outputs)
        time.sleep(1.0)  # the consumer stops: the read-ahead stays bounded
        first = read
        time.sleep(1.0)
        assert read == first, "the input was read while nobody consumed the outputs"
        assert read < 1_000_000
    finally:
        outputs.close()


def test_trivial_items_travel_in_batches_and_slow_ones_balance() -> None:
    completions: list[int] = []
    assert sum(1 for _ in mr.map_unordered(Inc, range(100_000), config=TWO,
                                           progress=lambda done, total: completions.append(done))) == 100_000
    assert completions[-1] == 100_000
    assert len(completions) < 1000, f"{len(completions)} batches for 100,000 trivial items"
    # a few slow items at the front: the other worker takes the rest meanwhile
    ran_by = list(mr.map(Slow, [300, 300] + [1] * 40, config=TWO))
    assert set(ran_by) == {0, 1}


def test_a_worker_maps_one_batch_at_a_time() -> None:
    assert set(mr.map(Overlap, range(2000), config=TWO, param=0)) == {1}


# -- progress ------------------------------------------------------------------------------------


def test_progress_is_a_bar_when_forced_a_callback_or_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    seen: list[tuple[int, int | None]] = []
    assert len(list(mr.map(Inc, range(500), config=TWO, progress=lambda d, t: seen.append((d, t))))) == 500
    assert seen[-1] == (500, 500) and all(t == 500 for _, t in seen)
    unknown: list[int | None] = []
    list(mr.map(Inc, iter(range(50)), config=TWO, progress=lambda d, t: unknown.append(t)))
    assert set(unknown) == {None}
    capfd.readouterr()
    list(mr.map(Inc, range(300), config=TWO, progress=True))  # stderr is no terminal here: no bar
    assert "it/s" not in capfd.readouterr().err and "item/s" not in capfd.readouterr().err
    list(mr.map(Inc, range(300), config=TWO, progress="always"))
    err = capfd.readouterr().err
    assert "300/300" in err and "item/s" in err
    with pytest.raises(TypeError, match="progress= takes"):
        mr.map(Inc, [1], progress=3)  # type: ignore[arg-type]


# -- failures ------------------------------------------------------------------------------------


def test_an_exception_in_map_names_the_item_and_stops_every_worker() -> None:
    before = _worker_pids()
    with pytest.raises(rp.RemoteError, match=r"^ValueError: no 37 \(mapping item 37\)") as info:
        list(mr.map(Fails, range(100), config=TWO))
    assert info.value.remote_type == "ValueError"
    assert _gone(_worker_pids() - before)
    with pytest.raises(rp.RemoteError, match=r"ArithmeticError: no combining \(combining (the output|the results)"):
        mr.map_reduce(BadCombine, range(10), config=TWO)


def test_an_exception_in_init_fails_the_map_at_once() -> None:
    with pytest.raises(rp.RemoteError, match=r"^LookupError: init of worker \d refused 5"):
        list(mr.map(BadInit, range(10), config=TWO, param=5))


def test_a_worker_that_dies_is_replaced_and_its_items_retried(tmp_path: Path) -> None:
    marker = str(tmp_path / "died")
    out = list(mr.map(CrashOnce, range(200), config=TWO, param=(marker, 120), retries=1))
    assert out == [2 * i for i in range(200)] and os.path.exists(marker)
    os.remove(marker)
    with pytest.raises(rp.WorkerCrashedError, match=r"map worker \d of CrashOnce died while mapping item"):
        list(mr.map(CrashOnce, range(200), config=TWO, param=(marker, 120)))


def test_a_pool_replaces_a_worker_that_died_before_its_next_map(tmp_path: Path) -> None:
    marker = str(tmp_path / "died")
    with mr.Pool(CrashOnce, config=TWO, param=(marker, 50)) as pool:
        with pytest.raises(rp.WorkerCrashedError):
            list(pool.map(range(200)))
        assert list(pool.map(range(200))) == [2 * i for i in range(200)]  # the marker is there: no crash
        assert pool.workers == 2


def test_outputs_too_large_for_one_message_split_their_batch() -> None:
    small = mr.Config(local=2, settings=rp.RpcSettings(max_message_size=2 << 20))
    assert [len(b) for b in mr.map(BigOut, [600 << 10] * 20, config=small)] == [600 << 10] * 20
    with pytest.raises(rp.MessageTooLargeError):
        list(mr.map(BigOut, [3 << 20], config=small))


def test_a_dropped_run_frees_its_pool() -> None:
    with mr.Pool(Inc, config=TWO) as pool:
        run = pool.run("ordered", range(10))
        del run
        gc.collect()
        assert list(pool.map([1])) == [2]


# -- asyncio -------------------------------------------------------------------------------------


def test_the_asyncio_operations() -> None:
    async def main() -> None:
        assert [x async for x in rp.aio.map_reduce.map(Inc, range(1000), config=TWO)] == list(range(1, 1001))
        pairs = [p async for p in rp.aio.map_reduce.map_unordered(Inc, range(100), config=TWO)]
        assert sorted(i for _, i in pairs) == list(range(100))
        assert await rp.aio.map_reduce.map_reduce(Concat, range(300), config=TWO) == list(range(300))
        assert await rp.aio.map_reduce.map_reduce_commutative(Sum, range(300), config=TWO) == sum(range(300))
        assert await rp.aio.map_reduce.find_map(Multiple, range(10_000), config=TWO, param=777) is not None
        async def numbers() -> AsyncIterator[int]:
            for i in range(20):
                yield i

        async with rp.aio.map_reduce.Pool(Sum, config=TWO) as pool:
            assert [x async for x in pool.map(numbers())] == list(range(20))  # an async input
            assert await pool.map_reduce_commutative([]) is None
            assert await pool.map_reduce(range(10)) == 45

    asyncio.run(main())


def test_a_cancelled_asyncio_map_raises_cancelled_error_and_frees_its_pool() -> None:
    async def main() -> None:
        async with rp.aio.map_reduce.Pool(Multiple, config=TWO, param=10**12) as pool:
            task = asyncio.ensure_future(pool.find_map(itertools.count(1)))  # never finds one
            await asyncio.sleep(0.5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await pool.find_map([10**12]) == 10**12  # the pool is free again

    asyncio.run(main())
