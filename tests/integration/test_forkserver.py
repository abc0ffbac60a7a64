"""The fork server: workers forked from a process that preloaded everything but gRPC behave like
freshly started ones, and the fork server itself never imports gRPC, runs no thread, is replaced
if it dies and exits with its master."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

import rpc_parallel as rp
from rpc_parallel._forkserver import server_pid, stop as fork_server_stop

from .conftest import Failures
from .workers import Where

ROOT = Path(__file__).resolve().parents[2]


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # gone between the lookup and the read of its status
        return False


def _facts(handle: rp.WorkerHandle) -> tuple[int, bool, str | None]:
    with Where.connect(handle) as conn:
        return conn.run(Where.ppid), conn.run(Where.hash_randomized), conn.run(Where.env, "FS_TEST")


def test_workers_fork_from_a_server_without_grpc_or_threads() -> None:
    handles = [Where.spawn(env={"FS_TEST": f"v{i}"}) for i in range(3)]
    try:
        server = server_pid()
        assert server is not None and server != os.getpid()
        for i, h in enumerate(handles):
            assert _facts(h) == (server, True, f"v{i}")  # forked by it, with its own environment
        proc = psutil.Process(server)
        assert proc.num_threads() == 1
        assert f"child-of-{os.getpid()}" in proc.cmdline()
        maps = Path(f"/proc/{server}/maps").read_text()
        assert "cygrpc" not in maps and "libprotobuf" not in maps
    finally:
        for h in handles:
            h.shutdown()


def test_an_environment_read_at_interpreter_start_gets_a_fresh_interpreter() -> None:
    fresh = Where.spawn(env={"PYTHONHASHSEED": "0", "FS_TEST": "x"})
    plain = Where.spawn(how=rp.Local(fork_server=False), env={"FS_TEST": "y"})
    try:
        assert _facts(fresh) == (os.getpid(), False, "x")  # our child, and PYTHONHASHSEED took effect
        assert _facts(plain) == (os.getpid(), True, "y")
    finally:
        fresh.shutdown()
        plain.shutdown()


def test_a_killed_fork_server_is_replaced_and_its_workers_go_on(failures: Failures) -> None:
    first = Where.spawn(on_failure=failures)
    old_server = server_pid()
    assert old_server is not None and _facts(first)[0] == old_server
    os.kill(old_server, signal.SIGKILL)
    deadline = time.monotonic() + 10
    # the master notices the closed socket a moment before the kernel reparents the server's children
    while (server_pid() == old_server or psutil.Process(first.pid).ppid() == old_server) \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _facts(first)[0] != old_server  # it serves on, reparented
    second = Where.spawn()
    try:
        new_server = server_pid()
        assert new_server not in (None, old_server) and _facts(second)[0] == new_server
        os.kill(first.pid, signal.SIGKILL)  # its exit status died with the old server
        exc = failures.first()
        assert isinstance(exc, rp.WorkerCrashedError) and "unknown" in str(exc)
        assert len(failures.got) == 1
    finally:
        second.shutdown()


def test_the_fork_server_exits_with_its_master(tmp_path: Path) -> None:
    script = tmp_path / "master.py"
    script.write_text(textwrap.dedent("""
        import json
        from rpc_parallel._forkserver import server_pid, stop as fork_server_stop
        from tests.integration.workers import Where
        if __name__ == "__main__":
            h = Where.spawn()
            print(json.dumps({"server": server_pid(), "worker": h.pid}), flush=True)
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    pids = json.loads(done.stdout)
    deadline = time.monotonic() + 15
    left = [pid for pid in pids.values() if psutil.pid_exists(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [pid for pid in left if _running(pid)]
    assert not left, f"still running after their master exited: {left}"


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_exit_statuses_come_through_the_fork_server(how: str, failures: Failures) -> None:
    h = Where.spawn(on_failure=failures)
    assert _facts(h)[0] == server_pid()
    if how == "kill":
        os.kill(h.pid, signal.SIGKILL)
    else:
        with Where.connect(h) as conn:
            conn.run(Where.exit, 7)
    exc = failures.first()
    assert isinstance(exc, rp.WorkerCrashedError)
    assert (exc.signal, exc.exit_code) == ((signal.SIGKILL, None) if how == "kill" else (None, 7))
    assert len(failures.got) == 1


def test_a_stopped_fork_server_still_reports_its_workers_exits(failures: Failures) -> None:
    worker = Where.spawn(on_failure=failures)
    old_server = server_pid()
    assert old_server is not None and _facts(worker)[0] == old_server
    fork_server_stop()  # takes no more spawns, but stays for its worker
    assert server_pid() is None and psutil.pid_exists(old_server)
    other = Where.spawn()  # a new server
    try:
        assert _facts(other)[0] not in (None, old_server)
        os.kill(worker.pid, signal.SIGKILL)
        exc = failures.first()
        assert isinstance(exc, rp.WorkerCrashedError) and exc.signal == signal.SIGKILL  # its real status
        deadline = time.monotonic() + 10
        while psutil.pid_exists(old_server) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not psutil.pid_exists(old_server)  # gone with its last worker, and reaped
    finally:
        other.shutdown()


def test_after_a_killed_fork_server_a_shutdown_is_no_failure(failures: Failures) -> None:
    worker = Where.spawn(on_failure=failures)
    server = server_pid()
    assert server is not None
    os.kill(server, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server_pid() == server and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.shutdown()
    deadline = time.monotonic() + 10
    while _running(worker.pid):
        assert time.monotonic() < deadline, "the worker did not exit"
        time.sleep(0.02)
    time.sleep(0.3)  # the reaper's turn
    assert failures.got == []


def test_the_fork_server_refuses_to_serve_a_process_with_threads_or_grpc() -> None:
    script = textwrap.dedent(f"""
        import runpy, sys, threading
        server = runpy.run_path({str(ROOT / "rpc_parallel" / "_forkserver.py")!r}, run_name="not_main")
        assert server["_unsafe"]() == "", server["_unsafe"]()
        stop = threading.Event()
        threading.Thread(target=stop.wait).start()
        print(server["_unsafe"]())
        stop.set()
        import grpc
        for t in threading.enumerate():
            if t is not threading.main_thread():
                t.join()
        print(server["_unsafe"]())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["2 threads run", "grpc is imported"]
