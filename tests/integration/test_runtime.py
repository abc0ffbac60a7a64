"""Runtime core, continued: large messages, handles passed between workers, entry points, settings
precedence, init failures, stale handles and several worker types at once."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

import rpc_parallel as rp
from examples.counter import Counter
from tests.integration.workers import BadConnection, BadInit, Blob, Relay, Streamer, Summer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MiB = 1 << 20


def _run_script(path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
                ) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, check=False)


# -- messages ------------------------------------------------------------------------------------


def test_100_mib_argument_and_result_under_default_settings() -> None:
    handle = Blob.spawn(name="blob")
    try:
        with Blob.connect(handle) as conn:
            assert conn.worker_settings().max_message_size == 1 << 30
            assert conn.run(Blob.size, b"\x01" * (100 * MiB)) == 100 * MiB
            data = conn.run(Blob.make, 100 * MiB)
            assert len(data) == 100 * MiB and data[:1] == b"x" and data[-1:] == b"x"
    finally:
        handle.shutdown()


def test_message_too_large_in_both_directions_and_both_sides_live_on() -> None:
    limit = 1 * MiB
    handle = Blob.spawn(name="small", settings=rp.RpcSettings(max_message_size=limit))
    try:
        with Blob.connect(handle) as conn:
            with pytest.raises(rp.MessageTooLargeError) as sent:
                conn.run(Blob.size, b"\0" * (limit + 1))
            assert sent.value.size is not None and sent.value.size > limit
            assert sent.value.limit == limit
            assert str(limit) in str(sent.value)
            with pytest.raises(rp.MessageTooLargeError) as got:
                conn.run(Blob.make, limit + 1)
            assert got.value.limit == limit
            assert str(limit) in str(got.value)
            assert conn.run(Blob.size, b"ok") == 2
            assert conn.run(Blob.make, 3) == b"xxx"
    finally:
        handle.shutdown()


# -- handles passed to workers --------------------------------------------------------------------


def test_handle_passed_to_another_worker_which_connects_directly() -> None:
    target = Counter.spawn(100, name="target")
    relay = Relay.spawn(name="relay")
    try:
        with Relay.connect(relay) as conn:
            assert conn.run(Relay.incr_on, target, 5) == 105
            assert conn.run(Relay.incr_on, target, 1) == 106
        with Counter.connect(target, "me") as conn:
            assert conn.run(Counter.incr, 0) == 106
    finally:
        relay.shutdown()
        target.shutdown()


def test_stream_of_worker_handles() -> None:
    with ThreadPoolExecutor(4) as pool:
        targets = list(pool.map(lambda i: Counter.spawn(i * 10, name=f"t{i}"), range(3)))
    relay = Relay.spawn(name="relay")
    try:
        with Relay.connect(relay) as conn:
            assert conn.run(Relay.sum_over, iter(targets), 1) == [1, 11, 21]
    finally:
        for h in (relay, *targets):
            h.shutdown()


# -- several workers and types -----------------------------------------------------------------


def test_reverse_pipe_ten_workers_thousand_ints_each() -> None:
    with ThreadPoolExecutor(10) as pool:
        handles = list(pool.map(lambda i: Summer.spawn(i, name=f"summer{i}"), range(10)))

        def feed(i: int) -> int:
            with Summer.connect(handles[i]) as conn:
                return conn.run(Summer.total, iter(range(i * 1000, (i + 1) * 1000)))

        try:
            totals = list(pool.map(feed, range(10)))
        finally:
            for h in handles:
                h.shutdown()
    assert totals == [i + sum(range(i * 1000, (i + 1) * 1000)) for i in range(10)]


def test_two_worker_types_at_once() -> None:
    counter = Counter.spawn(1, name="c")
    summer = Summer.spawn(1000, name="s")
    try:
        with Counter.connect(counter, "x") as c, Summer.connect(summer) as s:
            assert c.run(Counter.incr, 1) == 2
            assert s.run(Summer.total, [1, 2, 3]) == 1006
            with pytest.raises(rp.ProtocolError, match=r"^this worker is a Counter \(of examples\.counter\), not a Summer \(of tests\.integration\.workers\): "):
                Summer.connect(counter)  # a handle of another worker type
    finally:
        counter.shutdown()
        summer.shutdown()


def test_workers_spawn_in_parallel() -> None:
    """Four spawns from four threads overlap: the whole takes well under four sequential spawns."""
    started = threading.Barrier(4)

    def spawn(i: int) -> rp.WorkerHandle:
        started.wait()
        return Counter.spawn(i, name=f"par{i}")

    with ThreadPoolExecutor(4) as pool:
        handles = list(pool.map(spawn, range(4)))
    try:
        assert len({h.pid for h in handles}) == 4
        assert len({h.address for h in handles}) == 4
        starts = sorted(psutil.Process(h.pid).create_time() for h in handles)
        # every process was started before the first one could have finished registering
        assert starts[-1] - starts[0] < 1.0
    finally:
        for h in handles:
            h.shutdown()


# -- init failures and stale handles ------------------------------------------------------------


def test_raising_init_worker_state_fails_spawn_and_leaves_nothing() -> None:
    with pytest.raises(rp.RemoteError) as err:
        BadInit.spawn("no good", name="bad")
    assert err.value.remote_type.endswith("RuntimeError")
    assert "no good" in str(err.value)
    assert "init_worker_state" in err.value.remote_traceback


def test_raising_init_connection_state_fails_connect_and_the_worker_lives_on() -> None:
    handle = BadConnection.spawn(name="badconn")
    try:
        with pytest.raises(rp.RemoteError) as err:
            BadConnection.connect(handle, "go away")
        assert err.value.remote_type.endswith("PermissionError")
        assert "go away" in str(err.value)
        with BadConnection.connect(handle, "") as conn:
            assert conn.run(BadConnection.ping) == "pong"
    finally:
        handle.shutdown()


def test_handle_with_another_worker_id_is_refused() -> None:
    handle = Counter.spawn(0, name="real")
    try:
        stale = rp.WorkerHandle(worker_id="0" * 32, address=handle.address, name="stale",
                                settings=handle.settings, token=handle.token, fingerprint=handle.fingerprint)
        with pytest.raises(rp.WorkerConnectionError, match="0{32}"):
            Counter.connect(stale, "x")
        with pytest.raises(rp.WorkerConnectionError):
            stale.shutdown()
        with Counter.connect(handle, "x") as conn:
            assert conn.run(Counter.incr, 1) == 1  # the real worker was not touched
    finally:
        handle.shutdown()


# -- settings precedence ---------------------------------------------------------------------------


def test_env_settings_override_spawn_settings_per_field(tmp_path: Path) -> None:
    """env > spawn(settings=) > start_app(settings=) > defaults, field by field, in a fresh master."""
    script = tmp_path / "precedence.py"
    script.write_text(textwrap.dedent("""
        import json
        import rpc_parallel as rp
        from examples.counter import Counter

        def main() -> None:
            per_worker = rp.RpcSettings(max_message_size=5_000_000, handshake_timeout=7.0)
            out = {}
            for label, settings in (("app", None), ("worker", per_worker)):
                conn = Counter.spawn(0, shutdown_on=rp.ShutdownOn.CONNECTION_CLOSED, connection_arg="x",
                                     settings=settings)
                with conn:
                    out[label] = json.loads(conn.worker_settings().to_json())
            print(json.dumps(out))

        if __name__ == "__main__":
            rp.start_app(main, settings=rp.RpcSettings(max_message_size=4_000_000, handshake_timeout=6.0,
                                                       heartbeat=rp.Heartbeat(timeout=20.0, send_every=5.0)))
    """))
    env = {"RPC_PARALLEL_RPC_SETTINGS": json.dumps({"heartbeat": {"timeout": 9.0}})}
    result = _run_script(script, env=env)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["app"] == {"max_message_size": 4_000_000, "handshake_timeout": 6.0,
                          "heartbeat": {"timeout": 9.0, "send_every": 5.0}}
    assert got["worker"] == {"max_message_size": 5_000_000, "handshake_timeout": 7.0,
                             "heartbeat": {"timeout": 9.0, "send_every": 5.0}}


def test_per_worker_override_reaches_that_worker_only() -> None:
    a = Blob.spawn(name="a", settings=rp.RpcSettings(max_message_size=2 * MiB))
    b = Blob.spawn(name="b")
    try:
        with Blob.connect(a) as ca, Blob.connect(b) as cb:
            assert ca.worker_settings().max_message_size == 2 * MiB
            assert cb.worker_settings() == rp.RpcSettings()
            assert cb.run(Blob.size, b"\0" * (3 * MiB)) == 3 * MiB
    finally:
        a.shutdown()
        b.shutdown()


# -- entry points ----------------------------------------------------------------------------------


def test_start_app_reexecutes_the_program_as_a_worker(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent("""
        import os
        import sys
        import rpc_parallel as rp

        class Env(rp.Worker):
            @rp.rpc
            def info(self) -> list[str]:
                return [os.environ.get("RPC_PARALLEL_WORKER", "<cleared>"), " ".join(sys.argv[1:])]

        def main() -> None:
            conn = Env.spawn(shutdown_on=rp.ShutdownOn.CONNECTION_CLOSED)
            with conn:
                print("worker:", *conn.run(Env.info))
            print("master args:", " ".join(sys.argv[1:]))

        if __name__ == "__main__":
            rp.start_app(main)
    """))
    result = _run_script(script, "--flag", "value")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("worker: <cleared>")
    assert lines[1] == "master args: --flag value"


def test_expert_worker_command_in_a_click_program(tmp_path: Path) -> None:
    script = tmp_path / "tool.py"
    script.write_text(textwrap.dedent("""
        import click
        import rpc_parallel as rp
        from rpc_parallel import expert

        class Squarer(rp.Worker):
            @rp.rpc
            def square(self, x: int) -> int:
                return x * x

        @click.group()
        def cli() -> None:
            pass

        @cli.command()
        @click.argument("n", type=int)
        def run(n: int) -> None:
            expert.start_master_server(worker_command_args=["internal-worker"])
            conn = Squarer.spawn(shutdown_on=rp.ShutdownOn.CONNECTION_CLOSED)
            with conn:
                click.echo(conn.run(Squarer.square, n))

        cli.add_command(expert.worker_command(), name="internal-worker")

        if __name__ == "__main__":
            cli()
    """))
    result = _run_script(script, "run", "12")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "144"


# -- addresses and clients ---------------------------------------------------------------------------


def _wait_gone(path: Path, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not path.exists()


def test_unix_socket_worker_in_a_private_directory() -> None:
    handle = Counter.spawn(1, name="unix", how=rp.Local(unix_socket=True))
    socket_dir = Path(handle.address.removeprefix("unix:")).parent
    try:
        assert handle.address.startswith("unix:/")
        assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
        with Counter.connect(handle, "u") as conn:
            assert conn.run(Counter.incr, 1) == 2
    finally:
        handle.shutdown()
    assert _wait_gone(socket_dir)


def test_unix_socket_directory_of_a_killed_worker_is_removed() -> None:
    crashes: list[BaseException] = []
    handle = Counter.spawn(1, name="unix-killed", how=rp.Local(unix_socket=True), on_failure=crashes.append)
    socket_dir = Path(handle.address.removeprefix("unix:")).parent
    os.kill(handle.pid, signal.SIGKILL)
    assert _wait_gone(socket_dir)
    deadline = time.monotonic() + 10
    while not crashes and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [type(e) for e in crashes] == [rp.WorkerCrashedError]


def test_generated_typed_client_from_a_process_that_never_imported_the_worker(tmp_path: Path) -> None:
    script = tmp_path / "typed_client.py"
    script.write_text(textwrap.dedent("""
        import asyncio
        import json
        import sys
        import rpc_parallel as rp
        from examples.counter_rpcpar import CounterAsyncClient, CounterClient

        handle = rp.WorkerHandle.from_json(sys.stdin.read())
        with CounterClient.connect(handle, "typed") as c:
            out = {"incr": c.incr(5), "whoami": c.whoami(), "pipe": list(c.count_to(5)),
                   "reverse": c.total_of(iter([1, 2, 3]), 10)}
            try:
                c.boom("typed boom")
            except rp.RemoteError as e:
                out["boom"] = e.remote_type

        async def main() -> int:
            async with await CounterAsyncClient.connect(handle, "typed-aio") as c:
                return await c.incr(1)

        out["aio"] = asyncio.run(main())
        out["imported_implementation"] = "examples.counter" in sys.modules
        print(json.dumps(out))
    """))
    handle = Counter.spawn(10, name="typed-target")
    try:
        result = subprocess.run([sys.executable, str(script)], input=handle.to_json(), capture_output=True,
                                text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"incr": 15, "whoami": "typed", "pipe": [1, 2, 3, 4, 5],
                                             "reverse": 60, "boom": "ValueError", "aio": 16,
                                             "imported_implementation": False}
    finally:
        handle.shutdown()


def test_spawn_in_foreground_returns_the_process_and_shutdown_exits_0() -> None:
    handle, proc = Counter.spawn_in_foreground(3, name="fg")
    try:
        assert proc.pid == handle.pid
        with Counter.connect(handle, "fg") as conn:
            assert conn.run(Counter.incr, 1) == 4
        handle.shutdown()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_a_lone_pipe_item_arrives_before_the_next_is_produced_and_fast_items_share_messages() -> None:
    handle = Streamer.spawn(name="streamer")
    try:
        with Streamer.connect(handle) as conn:
            with conn.run(Streamer.one_then_gate) as pipe:
                assert next(pipe) == 1  # would hang (test timeout) if the worker waited to fill a batch
                conn.run(Streamer.release)
                assert list(pipe) == [2]
            pipe = conn.run(Streamer.fast, 100_000)
            sizes = []
            while (batch := pipe.next_batch()) is not None:
                sizes.append(len(batch))
            assert sum(sizes) == 100_000
            assert max(sizes) > 1 and len(sizes) < 100_000 // 10, sizes[:20]
    finally:
        handle.shutdown()
