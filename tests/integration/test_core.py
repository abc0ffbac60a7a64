"""Spawn, connect and run every function kind against real worker processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

import rpc_parallel as rp
from examples import counter_pb2
from examples.counter import Counter, Point

pytestmark = pytest.mark.integration


@pytest.fixture
def counter() -> rp.WorkerHandle:
    failures: list[BaseException] = []
    handle = Counter.spawn(10, on_failure=failures.append, name="counter")
    yield handle
    handle.shutdown()
    assert failures == []


def test_rpc_and_shared_worker_state(counter: rp.WorkerHandle) -> None:
    with Counter.connect(counter, "alice") as a, Counter.connect(counter, "bob") as b:
        assert a.run(Counter.incr, 5) == 15
        assert b.run(Counter.incr, by=1) == 16
        assert a.run(Counter.whoami) == "alice"
        assert b.run(Counter.whoami) == "bob"


def test_submit_pipelines_calls(counter: rp.WorkerHandle) -> None:
    with Counter.connect(counter, "c") as c:
        futures = [c.submit(Counter.incr, 1) for _ in range(200)]
        assert sorted(f.result() for f in futures) == list(range(11, 211))


def test_one_way_returns_at_once_and_runs(counter: rp.WorkerHandle) -> None:
    with Counter.connect(counter, "c") as c:
        assert c.run(Counter.log, "x") is None
        c.run(Counter.log, "y")
    with Counter.connect(counter, "c") as c:
        assert _logged(c, 2) == ["x", "y"]  # close() waited for their receipt, not their run


def _logged(c: rp.Connection, n: int) -> list[str]:
    """The worker's log once it has ``n`` lines (or after 10 s)."""
    deadline = time.monotonic() + 10
    while len(lines := c.run(Counter.logged)) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return lines


def test_one_way_calls_of_a_connection_run_in_the_order_made(counter: rp.WorkerHandle) -> None:
    with Counter.connect(counter, "a") as a, Counter.connect(counter, "b") as b:
        def log(conn: rp.Connection, tag: str) -> None:
            for i in range(300):
                conn.run(Counter.log, f"{tag}{i}")

        threads = [threading.Thread(target=log, args=(conn, tag)) for conn, tag in ((a, "a"), (b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        lines = _logged(a, 600)
    for tag in "ab":
        assert [line for line in lines if line[0] == tag] == [f"{tag}{i}" for i in range(300)]


def test_numbered_one_way_calls_wait_for_lower_numbers_and_bad_ones_take_their_number(
        counter: rp.WorkerHandle) -> None:
    """What the rpc_parallel client sends (``rpcpar-seq``), sent out of order by a raw gRPC client."""
    with Counter.connect(counter, "c") as c, grpc.insecure_channel(counter.address) as channel:
        log = channel.unary_unary("/examples.counter.Counter/Log")
        md = (("rpcpar-token", counter.token), ("rpcpar-conn", c.connection_id))

        def send(seq: str, request: bytes) -> grpc.StatusCode:
            try:
                log(request, metadata=(*md, ("rpcpar-seq", seq)), timeout=10)
                return grpc.StatusCode.OK
            except grpc.RpcError as exc:
                return exc.code()  # type: ignore[no-any-return]

        assert send("1", counter_pb2.CounterLogRequest(line="y").SerializeToString()) == grpc.StatusCode.OK
        time.sleep(0.3)
        assert c.run(Counter.logged) == []  # number 1 waits for number 0
        assert send("0", b"\xff\xff") == grpc.StatusCode.INVALID_ARGUMENT  # cannot decode: runs nothing
        assert _logged(c, 1) == ["y"]
        assert send("2", counter_pb2.CounterLogRequest(line="z").SerializeToString()) == grpc.StatusCode.OK
        assert _logged(c, 2) == ["y", "z"]
        for seq in ("1", "-1", "x", ""):  # taken already, or not a number
            assert send(seq, counter_pb2.CounterLogRequest(line="no").SerializeToString()) \
                == grpc.StatusCode.INVALID_ARGUMENT
        unnumbered = counter_pb2.CounterLogRequest(line="free").SerializeToString()
        assert log(unnumbered, metadata=md, timeout=10) == b""  # other clients: runs at once
        assert _logged(c, 3) == ["y", "z", "free"]


def test_pipe_full_and_closed_early(counter: rp.WorkerHandle) -> None:
    with Counter.connect(counter, "c") as c:
        assert list(c.run(Counter.count_to, 1_000_000)) == list(range(1, 1_000_001))
        with c.run(Counter.count_to, 10**9) as pipe:
            assert next(pipe) == 1
        assert pipe.closed
        assert c.run(Counter.incr, 0) == 10  # the worker is still serving


def test_state_then_updates(counter: rp.WorkerHandle) -> None:
    with Counter.connect(counter, "c") as c:
        state, updates = c.run(Counter.watch, 3)
        assert state == 10
        assert list(updates) == [11, 12, 13]


def test_direct_pipe_updates_then_closed(counter: rp.WorkerHandle) -> None:
    got: list[object] = []
    done = threading.Event()

    def on_update(u: rp.Update[Point] | rp.Closed) -> None:
        got.append(u)
        if isinstance(u, rp.Closed):
            done.set()

    with Counter.connect(counter, "c") as c:
        c.run(Counter.ticks, 3, 0.0, on_update=on_update)
        assert done.wait(10)
    assert got == [rp.Update(Point(0.0, 0.0)), rp.Update(Point(1.0, 1.0)), rp.Update(Point(2.0, 4.0)),
                   rp.Closed("by_remote_side")]


def test_direct_pipe_abort(counter: rp.WorkerHandle) -> None:
    got: list[object] = []
    done = threading.Event()

    def on_update(u: rp.Update[Point] | rp.Closed) -> None:
        got.append(u)
        if isinstance(u, rp.Closed):
            done.set()

    with Counter.connect(counter, "c") as c:
        pipe_id = c.run(Counter.ticks, 10**6, 0.01, on_update=on_update)
        c.abort(pipe_id)
        assert done.wait(10)
    assert got[-1] == rp.Closed("aborted")


def test_reverse_pipe(counter: rp.WorkerHandle) -> None:
    with Counter.connect(counter, "c") as c:
        assert c.run(Counter.total_of, iter(range(1001)), 2) == 2 * sum(range(1001))
        assert c.run(Counter.total_of, [], 5) == 0


def test_async_def_function(counter: rp.WorkerHandle) -> None:
    with Counter.connect(counter, "c") as c:
        assert c.run(Counter.slow_double, 21) == 42


def test_wrong_argument_type_raises_before_sending(counter: rp.WorkerHandle) -> None:
    with Counter.connect(counter, "c") as c:
        with pytest.raises(TypeError, match="by"):
            c.run(Counter.incr, "five")  # type: ignore[arg-type]
        assert c.run(Counter.incr, 0) == 10


def test_worker_settings_are_what_the_server_uses() -> None:
    settings = rp.RpcSettings(max_message_size=3_000_000, heartbeat=rp.Heartbeat(timeout=8.0, send_every=2.0))
    conn = Counter.spawn(0, shutdown_on=rp.ShutdownOn.CONNECTION_CLOSED, connection_arg="x", settings=settings)
    with conn:
        assert conn.worker_settings() == settings


def test_serve_in_process() -> None:
    handles = [Counter.serve(i) for i in range(10)]
    try:
        for i, h in enumerate(handles):
            with Counter.connect(h, "x") as c:
                assert c.run(Counter.incr, 1) == i + 1
        with Counter.connect(handles[0], "keep") as keep:
            keep.close_server()
            with pytest.raises(rp.WorkerConnectionError):
                Counter.connect(handles[0], "new")
            assert keep.run(Counter.incr, 1) == 2
    finally:
        for h in handles:
            h.shutdown()


def test_aio_api() -> None:
    import asyncio

    async def main() -> None:
        conn = await rp.aio.spawn(Counter, 1, shutdown_on=rp.ShutdownOn.CONNECTION_CLOSED, connection_arg="aio")
        async with conn:
            assert await conn.run(Counter.incr, 2) == 3
            pipe = await conn.run(Counter.count_to, 5)
            assert [x async for x in pipe] == [1, 2, 3, 4, 5]
            assert await conn.run(Counter.total_of, iter([1, 2, 3]), 10) == 60

    asyncio.run(main())


def test_remote_error_carries_type_message_traceback_and_worker_lives(counter: rp.WorkerHandle) -> None:
    with Counter.connect(counter, "c") as c:
        with pytest.raises(rp.RemoteError) as info:
            c.run(Counter.boom, "x" * 50_000)
        err = info.value
        assert err.remote_type == "ValueError"
        assert err.worker_name == "counter"
        assert "in boom" in err.remote_traceback
        assert "characters truncated" in err.remote_message  # long texts cut in the middle, ends kept
        assert err.remote_message.startswith("xxx") and err.remote_message.endswith("xxx")
        assert c.run(Counter.incr, 0) == 10


def test_wrong_token_is_rejected_before_user_code(counter: rp.WorkerHandle) -> None:
    import dataclasses

    forged = dataclasses.replace(counter, token="not-the-token")
    with pytest.raises(rp.AuthenticationError):
        Counter.connect(forged, "intruder")
    with Counter.connect(counter, "c") as c:
        assert c.run(Counter.whoami) == "c"


MAIN_SCRIPT = '''
from collections.abc import Iterator
import rpc_parallel as rp

class Doubler(rp.Worker):
    @rp.rpc
    def double(self, x: int) -> int:
        return 2 * x

    @rp.pipe
    def upto(self, n: int) -> Iterator[int]:
        yield from range(n)

if __name__ == "__main__":
    handle = Doubler.spawn(on_failure=print)
    with Doubler.connect(handle) as conn:
        print(conn.run(Doubler.double, 21), list(conn.run(Doubler.upto, 3)))
    handle.shutdown()
'''


def test_worker_declared_in_the_main_script(tmp_path: Path) -> None:
    """The worker loads the script without running its `if __name__ == "__main__":` block."""
    script = tmp_path / "doubler_script.py"
    script.write_text(MAIN_SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42 [0, 1, 2]"


EXIT_WITHOUT_SHUTDOWN = '''
import sys

if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])
    from examples.counter import Counter

    handle = Counter.spawn(1)
    with Counter.connect(handle, "x") as conn:
        conn.run(Counter.incr, 1)
    print(handle.pid, flush=True)
'''


def test_master_that_ends_without_shutdown_exits_and_its_worker_follows(tmp_path: Path) -> None:
    """No hang at interpreter exit; the HEARTBEATER_TIMEOUT worker exits when its master is gone."""
    import psutil

    script = tmp_path / "leave.py"
    script.write_text(EXIT_WITHOUT_SHUTDOWN)
    root = str(Path(__file__).parents[2])
    done = subprocess.run([sys.executable, str(script), root], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    worker = int(done.stdout.strip())
    try:
        psutil.Process(worker).wait(timeout=10)
    except psutil.NoSuchProcess:
        pass
    assert not psutil.pid_exists(worker) or psutil.Process(worker).status() == psutil.STATUS_ZOMBIE


def test_served_worker_with_an_open_connection_does_not_block_exit(tmp_path: Path) -> None:
    script = tmp_path / "served.py"
    script.write_text("import sys\nsys.path.insert(0, sys.argv[1])\nfrom examples.counter import Counter\n"
                      "conn = Counter.connect(Counter.serve(1), 'left open')\nprint(conn.run(Counter.incr, 1))\n")
    root = str(Path(__file__).parents[2])
    done = subprocess.run([sys.executable, str(script), root], capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout.strip()) == (0, "2"), done.stderr
