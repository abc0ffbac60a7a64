"""Failures and lifecycle with real processes and real signals: masters killed or stopped, workers
stopped, busy or failing, shutdown policies, spawn timeouts, redirects, the stderr relay, env/umask/cd,
nested masters and many spawn/shutdown cycles (DESIGN.md sections 2, 4, 5).

Heartbeats are short here (``lifecycle_workers.SHORT``: timeout 1 s, a ping every 0.25 s). Where the
master itself must use them, it runs as a subprocess script (``rp.start_app(main, settings=SHORT)``)
that prints its workers' pids and handles as one JSON line, so a test can signal it by pid.

Workers whose master died are reparented (not children of pytest, so the autouse leak check cannot
see them): the ``reaper`` fixture kills, by pid, any this file started that are still running.
"""

from __future__ import annotations

import faulthandler
import json
import os
import selectors
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import psutil
import pytest

import rpc_parallel as rp
from examples.counter import Counter
from tests.integration.lifecycle_workers import HB_TIMEOUT, SHORT, Probe, SlowInit

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
T = HB_TIMEOUT


# -- helpers ---------------------------------------------------------------------------------------


def _gone(p: psutil.Process) -> bool:
    """The process exited (a zombie counts: it runs no more; orphans are reaped late by pid 1)."""
    try:
        return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[int]:
    """Wait until every process in ``procs`` is gone; the pids still running at ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p.pid for p in procs if not _gone(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.02)


def _spawned_by(roots: set[int], since: float) -> list[psutil.Process]:
    """The live worker processes spawned, directly or not, by the processes ``roots`` (their argv says
    ``child-of-<pid>``), even after their master died and they were reparented."""
    found: dict[int, psutil.Process] = {}
    parents = set(roots)
    while True:
        new = []
        for p in psutil.process_iter(["cmdline", "create_time"]):
            cmdline, created = p.info["cmdline"] or [], p.info["create_time"] or 0
            if p.pid not in found and created >= since and any(
                    arg.startswith("child-of-") and arg[9:].isdigit() and int(arg[9:]) in parents for arg in cmdline):
                new.append(p)
        if not new:
            return list(found.values())
        for p in new:
            found[p.pid] = p
            parents.add(p.pid)


class Reaper:
    """Processes a test started (masters and workers): whatever still runs at the end is killed."""

    def __init__(self) -> None:
        self.procs: list[psutil.Process] = []
        self.popens: list[subprocess.Popen[str]] = []
        self.since = time.time() - 1

    def track(self, *pids: int) -> list[psutil.Process]:
        out = [psutil.Process(pid) for pid in pids]
        self.procs.extend(out)
        return out

    def cleanup(self) -> None:
        # a master that died early (before printing its workers) may leave CALLED_SHUTDOWN_FUNCTION ones
        self.procs.extend(_spawned_by({popen.pid for popen in self.popens}, self.since))
        for popen in self.popens:
            if popen.poll() is None:
                popen.kill()
            popen.wait()
            if popen.stdout is not None:
                popen.stdout.close()
        for p in self.procs:
            if not _gone(p):
                try:
                    p.kill()
                except psutil.NoSuchProcess:
                    pass


@pytest.fixture
def reaper() -> Iterator[Reaper]:
    r = Reaper()
    try:
        yield r
    finally:
        r.cleanup()


def _script_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RPC_PARALLEL_RPC_SETTINGS"}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _start_master(reaper: Reaper, tmp_path: Path, source: str, timeout: float = 60
                  ) -> tuple[subprocess.Popen[str], Any]:
    """Run ``source`` as a master script; the JSON value it prints first (its stderr: master.err)."""
    script = tmp_path / "master.py"
    script.write_text(textwrap.dedent(source))
    with open(tmp_path / "master.err", "w") as err:
        proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=err, text=True,
                                env=_script_env(), cwd=str(tmp_path))
    reaper.popens.append(proc)
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
    line = proc.stdout.readline() if ready else ""
    if not line:
        proc.kill()
        proc.wait()
        raise AssertionError(f"the master script printed nothing (exit {proc.returncode}); its stderr:\n"
                             + (tmp_path / "master.err").read_text())
    return proc, json.loads(line)


def _kill_master(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


# -- the master dies ---------------------------------------------------------------------------------

MIXED_MASTER = """
    import json
    import time
    from concurrent.futures import ThreadPoolExecutor
    import rpc_parallel as rp
    from tests.integration.lifecycle_workers import SHORT, Probe

    S = rp.ShutdownOn

    def spawn(job):
        kind, i = job
        if kind == "cc":
            return Probe.spawn(shutdown_on=S.CONNECTION_CLOSED, name=f"cc{i}")  # the connection stays open
        return Probe.spawn(shutdown_on=S.HEARTBEATER_TIMEOUT if kind == "hb" else S.CALLED_SHUTDOWN_FUNCTION,
                           name=f"{kind}{i}")

    def main():
        jobs = [("hb", i) for i in range(3)] + [("cc", i) for i in range(3)] + [("csf", i) for i in range(2)]
        with ThreadPoolExecutor(4) as pool:
            started = list(pool.map(spawn, jobs))
        out = {"hb": [], "cc": [], "csf": [], "csf_handles": []}
        for (kind, _), w in zip(jobs, started):
            handle = w.handle if kind == "cc" else w
            out[kind].append(handle.pid)
            if kind == "csf":
                out["csf_handles"].append(handle.to_json())
        print(json.dumps(out), flush=True)
        time.sleep(600)

    if __name__ == "__main__":
        rp.start_app(main, settings=SHORT)
"""


def test_kill_9_master_only_called_shutdown_function_workers_survive(tmp_path: Path, reaper: Reaper) -> None:
    master, out = _start_master(reaper, tmp_path, MIXED_MASTER)
    hb = reaper.track(*out["hb"])
    cc = reaper.track(*out["cc"])
    csf = reaper.track(*out["csf"])
    assert len({p.pid for p in hb + cc + csf}) == 8
    assert not any(_gone(p) for p in hb + cc + csf)

    killed = time.monotonic()
    _kill_master(master)
    assert _wait_gone(hb + cc, timeout=3 * T + 3) == []
    exited_after = time.monotonic() - killed
    time.sleep(max(0.0, 3 * T - exited_after))  # well past the heartbeat timeout
    assert [p.pid for p in csf if not _gone(p)] == [p.pid for p in csf], "CALLED_SHUTDOWN_FUNCTION workers died"
    assert [p.pid for p in hb + cc if not _gone(p)] == []

    handles = [rp.WorkerHandle.from_json(text) for text in out["csf_handles"]]
    assert [h.pid for h in handles] == [p.pid for p in csf]
    for h in handles:  # from this process, not the (dead) master that spawned them
        with Probe.connect(h) as conn:
            assert conn.run(Probe.pid) == h.pid
        h.shutdown()
    assert _wait_gone(csf, timeout=10) == []


STOPPABLE_MASTER = """
    import json
    import time
    from concurrent.futures import ThreadPoolExecutor
    import rpc_parallel as rp
    from tests.integration.lifecycle_workers import SHORT, Probe

    def main():
        with ThreadPoolExecutor(2) as pool:
            handles = list(pool.map(lambda i: Probe.spawn(name=f"hb{i}"), range(2)))
        print(json.dumps([h.pid for h in handles]), flush=True)
        time.sleep(600)

    if __name__ == "__main__":
        rp.start_app(main, settings=SHORT)
"""


def test_sigstop_master_heartbeater_workers_exit_within_twice_the_timeout(tmp_path: Path, reaper: Reaper) -> None:
    master, pids = _start_master(reaper, tmp_path, STOPPABLE_MASTER)
    workers = reaper.track(*pids)
    assert not any(_gone(p) for p in workers)
    stopped = time.monotonic()
    os.kill(master.pid, signal.SIGSTOP)
    try:
        # they notice within about 2 T (a ping every T/4, unanswered for T, then exit); the rest is
        # slack for a loaded machine
        alive = _wait_gone(workers, timeout=2 * T + 5)
        elapsed = time.monotonic() - stopped
    finally:
        _kill_master(master)  # SIGKILL ends a stopped process; no SIGCONT needed
    assert alive == [], f"HEARTBEATER_TIMEOUT workers {alive} outlived a stopped master ({elapsed:.2f}s)"


SLOW_REDIRECT_MASTER = """
    import json
    import os
    import threading
    import time
    import rpc_parallel as rp
    from tests.integration.lifecycle_workers import SHORT, Settled

    def main():
        fifo = os.path.abspath("out.fifo")
        lines = []

        def read():
            time.sleep(1.0)  # until then, the worker's open() of its stdout (a FIFO) blocks
            with open(fifo) as f:
                lines.append(f.readline())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        handle = Settled.spawn("init", name="settled", cd=os.path.abspath("sub"), redirect_stdout=rp.FileTruncate(fifo))
        reader.join(10)
        print(json.dumps({"pid": handle.pid, "line": lines[0] if lines else None}), flush=True)
        time.sleep(600)

    if __name__ == "__main__":
        rp.start_app(main, settings=SHORT)
"""


def test_worker_is_initialized_only_after_its_redirects_cd_and_heartbeat_are_in_place(
        tmp_path: Path, reaper: Reaper) -> None:
    """A worker slow to open its redirect (a FIFO nobody reads for 1 s) registers only once it has:
    the master's InitWorker follows the registration at once, and must find the worker settled.
    (It once registered first: init ran in the wrong directory and the heartbeat never started.)"""
    os.mkfifo(tmp_path / "out.fifo")
    (tmp_path / "sub").mkdir()
    master, out = _start_master(reaper, tmp_path, SLOW_REDIRECT_MASTER)
    (worker,) = reaper.track(out["pid"])
    assert out["line"] == f"init in {tmp_path / 'sub'}\n"
    _kill_master(master)
    assert _wait_gone([worker], timeout=3 * T + 3) == [], "the worker outlived its master: no heartbeat"


# -- a busy worker, a stopped worker -------------------------------------------------------------------

BUSY_MASTER = """
    import json
    import time
    import rpc_parallel as rp
    from tests.integration.lifecycle_workers import HB_TIMEOUT, SHORT, Probe

    def main():
        failures = []
        handle = Probe.spawn(on_failure=failures.append, name="busy")
        with Probe.connect(handle) as conn:
            start = time.monotonic()
            on_loop = conn.submit(Probe.spin_on_loop, 3 * HB_TIMEOUT)  # a pool thread and the event loop
            spins = [conn.run(Probe.spin, 3 * HB_TIMEOUT), on_loop.result()]
            elapsed = time.monotonic() - start
            time.sleep(1.5 * HB_TIMEOUT)  # a late verdict of death would show up here
            after = conn.run(Probe.pid)
        with Probe.connect(handle) as conn:
            again = conn.run(Probe.pid)
        settings = json.loads(handle.settings.to_json())
        failed = [repr(f) for f in failures]
        handle.shutdown()
        print(json.dumps({"pid": handle.pid, "spins": spins, "elapsed": elapsed, "after": after, "again": again,
                          "failures": failed, "settings": settings}), flush=True)

    if __name__ == "__main__":
        rp.start_app(main, settings=SHORT)
"""


def test_worker_busy_in_python_for_three_heartbeat_timeouts_is_not_declared_dead(tmp_path: Path,
                                                                                  reaper: Reaper) -> None:
    master, out = _start_master(reaper, tmp_path, BUSY_MASTER)
    assert master.wait(timeout=30) == 0, (tmp_path / "master.err").read_text()
    assert out["settings"]["heartbeat"] == {"timeout": T, "send_every": 0.25}  # short heartbeats really applied
    assert out["elapsed"] >= 3 * T
    assert min(out["spins"]) > 100_000  # both really were busy
    assert out["failures"] == []
    assert out["after"] == out["again"] == out["pid"]


def test_sigstopped_worker_fails_the_call_in_flight_then_sigkill_is_one_crash() -> None:
    failures: list[BaseException] = []
    handle = Probe.spawn(on_failure=failures.append, name="frozen", settings=SHORT)
    worker = psutil.Process(handle.pid)
    try:
        with Probe.connect(handle) as conn:
            assert conn.run(Probe.pid) == handle.pid
            in_flight = conn.submit(Probe.sleep, 60.0)
            time.sleep(0.5)
            assert not in_flight.done()
            stopped = time.monotonic()
            os.kill(handle.pid, signal.SIGSTOP)
            try:  # noticed within about 2 T; the rest is slack for a loaded machine
                exc = in_flight.exception(timeout=2 * T + 5)
            except FutureTimeout:
                pytest.fail(f"the call to a SIGSTOPped worker did not fail within 2 heartbeat timeouts + 5 s "
                            f"({time.monotonic() - stopped:.2f}s)")
            assert isinstance(exc, rp.WorkerConnectionError), repr(exc)
            assert not isinstance(exc, rp.RemoteError)
    finally:
        try:
            worker.kill()  # by pid, identity checked; SIGCONT is not needed
        except psutil.NoSuchProcess:
            pass
    deadline = time.monotonic() + 10
    while not failures and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # a second report would arrive here
    assert [type(f) for f in failures] == [rp.WorkerCrashedError]
    assert getattr(failures[0], "worker_name", None) == "frozen"
    assert _wait_gone([worker], timeout=10) == []


# -- shutdown policies ---------------------------------------------------------------------------------


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def test_connection_closed_first_connection_closing_exits_0() -> None:
    handle, proc = Probe.spawn_in_foreground(shutdown_on=rp.ShutdownOn.CONNECTION_CLOSED, name="cc-fg",
                                             spawn_timeout=30)
    try:
        first = Probe.connect(handle)
        with Probe.connect(handle) as second:
            assert second.run(Probe.pid) == proc.pid
        time.sleep(0.5)
        assert proc.poll() is None, "closing a later connection ended the worker"
        assert first.run(Probe.pid) == proc.pid
        first.close()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        _close_pipes(proc)


def test_connection_closed_without_a_connection_exits_254_after_connection_timeout() -> None:
    """``spawn`` with CONNECTION_CLOSED always connects; ``spawn_in_foreground`` does not, so it leaves
    the worker without its first connection."""
    before = time.monotonic()
    handle, proc = Probe.spawn_in_foreground(shutdown_on=rp.ShutdownOn.CONNECTION_CLOSED, name="cc-lonely",
                                             connection_timeout=2.0, spawn_timeout=30)
    spawned = time.monotonic()
    try:
        code = proc.wait(timeout=2.0 + 10)
        now = time.monotonic()
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        assert code == 254, stderr
        assert "no connection within 2.0s" in stderr
        # the wait starts once the worker is initialized: during spawn
        assert now - before >= 2.0, f"exited {now - before:.2f}s after spawn began"
        assert now - spawned < 2.0 + 3, f"exited {now - spawned:.2f}s after spawn returned"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        _close_pipes(proc)


def test_an_init_that_outlasts_connection_timeout_completes() -> None:
    """``connection_timeout`` bounds the wait for the master's init, not the init itself."""
    handle = SlowInit.spawn(3.0, name="slow-init", connection_timeout=2.0, spawn_timeout=30)
    try:
        with SlowInit.connect(handle) as conn:
            assert conn.run(SlowInit.pid) == handle.pid
    finally:
        handle.shutdown()


def test_connection_closed_waits_for_its_connection_from_the_end_of_init() -> None:
    conn = SlowInit.spawn(3.0, name="slow-init-cc", shutdown_on=rp.ShutdownOn.CONNECTION_CLOSED,
                          connection_timeout=2.0, spawn_timeout=30)
    worker = psutil.Process(conn.handle.pid)
    with conn:
        assert conn.run(SlowInit.pid) == worker.pid
    assert _wait_gone([worker], timeout=10) == []


SLOW_INIT_MASTER = """
    import json
    import os
    import rpc_parallel as rp
    from tests.integration.lifecycle_workers import SHORT, SlowInit

    def main():
        print("{}", flush=True)
        SlowInit.spawn(60.0, name="orphan?", shutdown_on=rp.ShutdownOn.CALLED_SHUTDOWN_FUNCTION,
                       env={"SLOW_INIT_PID_FILE": os.path.abspath("init.pid")}, spawn_timeout=120)

    if __name__ == "__main__":
        rp.start_app(main, settings=SHORT)
"""


def test_a_called_shutdown_function_worker_whose_master_dies_during_init_exits(
        tmp_path: Path, reaper: Reaper) -> None:
    """Its master never got a handle to it, so nobody could ever shut it down."""
    master, _ = _start_master(reaper, tmp_path, SLOW_INIT_MASTER)
    pid_file = tmp_path / "init.pid"
    deadline = time.monotonic() + 30
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    (worker,) = reaper.track(int(pid_file.read_text()))
    _kill_master(master)
    assert _wait_gone([worker], timeout=3 * T + 3) == [], "the worker outlived the master that was initializing it"


LEAVING_MASTER = """
    import json
    import rpc_parallel as rp
    from tests.integration.lifecycle_workers import SHORT, Probe

    def main():
        handle = Probe.spawn(shutdown_on=rp.ShutdownOn.CALLED_SHUTDOWN_FUNCTION, name="survivor")
        print(handle.to_json(), flush=True)  # then exit normally, without shutting it down

    if __name__ == "__main__":
        rp.start_app(main, settings=SHORT)
"""


def test_called_shutdown_function_worker_outlives_its_master_and_obeys_another_process(tmp_path: Path,
                                                                                         reaper: Reaper) -> None:
    master, out = _start_master(reaper, tmp_path, LEAVING_MASTER)
    handle = rp.WorkerHandle.from_json(json.dumps(out))
    (worker,) = reaper.track(handle.pid)
    assert master.wait(timeout=30) == 0, (tmp_path / "master.err").read_text()
    time.sleep(2 * T)
    assert not _gone(worker), "the CALLED_SHUTDOWN_FUNCTION worker died with its master"
    with Probe.connect(handle) as conn:
        assert conn.run(Probe.pid) == handle.pid
    handle.shutdown()
    assert _wait_gone([worker], timeout=10) == []


PAUSED_MASTER = """
    import json
    import os
    import time
    import rpc_parallel as rp
    from tests.integration.lifecycle_workers import Probe

    if __name__ == "__main__":
        print("{}", flush=True)
        start = time.monotonic()
        try:
            # default spawn_timeout: 2 x connection_timeout = 20 s; the worker registers 0.5 s after
            # writing its pid file (at the import of its module)
            handle = Probe.spawn(name="paused-master", env={"LIFECYCLE_SLEEP_AT_IMPORT": "0.5",
                                                            "LIFECYCLE_PID_FILE": os.path.abspath("worker.pid")})
            with Probe.connect(handle) as conn:
                out = {"served": conn.run(Probe.pid) == handle.pid}
            handle.shutdown()
        except Exception as exc:
            out = {"raised": type(exc).__qualname__, "message": str(exc)[-400:]}
        out["elapsed"] = time.monotonic() - start
        print(json.dumps(out), flush=True)
"""


def test_master_paused_while_its_worker_registers_still_spawns(tmp_path: Path, reaper: Reaper) -> None:
    """A master unresponsive for 2 s (a GC pause, a loaded machine) during a spawn with a 20 s budget."""
    master, _ = _start_master(reaper, tmp_path, PAUSED_MASTER)
    pid_file = tmp_path / "worker.pid"
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text().isdigit()) and time.monotonic() < deadline:
        time.sleep(0.002)
    reaper.track(int(pid_file.read_text()))
    os.kill(master.pid, signal.SIGSTOP)  # the worker now imports its module and registers: the master is paused
    time.sleep(2.0)
    os.kill(master.pid, signal.SIGCONT)
    rest, _ = master.communicate(timeout=40)
    out = json.loads(rest)
    assert out == {"served": True, "elapsed": out["elapsed"]}, out


# -- spawn timeout ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fork_server", [True, False])
def test_spawn_timeout_raises_and_the_process_is_gone(tmp_path: Path, fork_server: bool) -> None:
    pid_file = tmp_path / "pid"
    start = time.monotonic()
    with pytest.raises(rp.SpawnTimeoutError):
        Probe.spawn(name="slow-import", how=rp.Local(fork_server=fork_server), spawn_timeout=5.0,
                    env={"LIFECYCLE_SLEEP_AT_IMPORT": "60", "LIFECYCLE_PID_FILE": str(pid_file)})
    elapsed = time.monotonic() - start
    assert elapsed < 5.0 + 3, f"spawn took {elapsed:.2f}s to give up"
    assert pid_file.exists(), "the worker did not reach its import"
    assert not psutil.pid_exists(int(pid_file.read_text()))  # killed and reaped


def test_spawn_timeout_kills_a_worker_that_ignores_sigterm(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    start = time.monotonic()
    with pytest.raises(rp.SpawnTimeoutError):
        Probe.spawn(name="stubborn", spawn_timeout=3.0, env={
            "LIFECYCLE_PID_FILE": str(pid_file), "LIFECYCLE_IGNORE_TERM": "1", "LIFECYCLE_SLEEP_AT_IMPORT": "60"})
    elapsed = time.monotonic() - start
    assert pid_file.exists(), "the worker did not reach the import in 3 s: SIGTERM was not ignored yet"
    assert not psutil.pid_exists(int(pid_file.read_text()))  # SIGKILL after SIGTERM, and reaped
    assert elapsed < 3.0 + 12


# -- redirects and failures after a function returned -----------------------------------------------------


def test_redirects_truncate_and_append_relative_to_cd(tmp_path: Path) -> None:
    (tmp_path / "out.txt").write_text("OLD STDOUT\n")
    (tmp_path / "err.txt").write_text("OLD STDERR\n")
    handle = Probe.spawn(name="redirected", cd=str(tmp_path), redirect_stdout=rp.FileTruncate("out.txt"),
                         redirect_stderr=rp.FileAppend("err.txt"))
    (worker,) = [psutil.Process(handle.pid)]
    try:
        with Probe.connect(handle) as conn:
            conn.run(Probe.say, "to stdout", "to stderr")
    finally:
        handle.shutdown()
    assert _wait_gone([worker], timeout=10) == []
    assert (tmp_path / "out.txt").read_text() == "to stdout\n"
    err = (tmp_path / "err.txt").read_text()
    assert err.startswith("OLD STDERR\n")
    assert "to stderr\n" in err


def test_a_relative_cd_is_taken_from_the_masters_directory_at_the_spawn(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)  # the fork server, if already running, started elsewhere
    handle = Probe.spawn(name="relative", cd="sub", redirect_stdout=rp.FileTruncate("out.txt"))
    try:
        with Probe.connect(handle) as conn:
            assert conn.run(Probe.cwd) == str(tmp_path / "sub")
            conn.run(Probe.say, "here", "")
    finally:
        handle.shutdown()
    assert (tmp_path / "sub" / "out.txt").read_text() == "here\n"


def test_a_worker_that_cannot_enter_its_cd_says_why(tmp_path: Path) -> None:
    with pytest.raises(rp.WorkerCrashedError, match="before registering") as raised:
        Probe.spawn(name="lost", cd=str(tmp_path / "missing"), redirect_stderr=rp.FileTruncate("err.txt"))
    assert "FileNotFoundError" in raised.value.stderr_tail
    assert str(tmp_path / "missing") in raised.value.stderr_tail


def test_dev_null_writes_nothing_anywhere(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    handle = Probe.spawn(name="quiet", cd=str(tmp_path), redirect_stdout=rp.DEV_NULL, redirect_stderr=rp.DEV_NULL)
    worker = psutil.Process(handle.pid)
    try:
        with Probe.connect(handle) as conn:
            conn.run(Probe.say, "QUIET-STDOUT-MARKER", "QUIET-STDERR-MARKER")
    finally:
        handle.shutdown()
    assert _wait_gone([worker], timeout=10) == []
    captured = capfd.readouterr()
    assert "QUIET" not in captured.out + captured.err
    assert list(tmp_path.iterdir()) == []


def test_failure_after_return_goes_to_stderr_file_and_on_failure_names_the_worker(tmp_path: Path) -> None:
    failures: list[BaseException] = []
    handle = Probe.spawn(name="doomed", on_failure=failures.append, cd=str(tmp_path),
                         redirect_stderr=rp.FileAppend("err.txt"))
    worker = psutil.Process(handle.pid)
    with Probe.connect(handle) as conn:
        conn.run(Probe.fail_later, "one_way marker")
    assert _wait_gone([worker], timeout=10) == []
    deadline = time.monotonic() + 10
    while not failures and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # a second report (a crash) would arrive here
    assert [type(f) for f in failures] == [rp.WorkerFailedError]
    assert "doomed" in str(failures[0])
    assert "one_way marker" in str(failures[0])
    err = (tmp_path / "err.txt").read_text()
    assert "RuntimeError: one_way marker" in err
    assert "fail_later" in err  # the traceback


def test_failure_after_return_exits_254() -> None:
    failures: list[BaseException] = []
    handle, proc = Probe.spawn_in_foreground(name="doomed-fg", on_failure=failures.append, spawn_timeout=30)
    try:
        with Probe.connect(handle) as conn:
            conn.run(Probe.fail_later, "foreground marker")
        code = proc.wait(timeout=10)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        assert code == 254, stderr
        assert "RuntimeError: foreground marker" in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        _close_pipes(proc)
    deadline = time.monotonic() + 10
    while not failures and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [type(f) for f in failures] == [rp.WorkerFailedError]


# -- the stderr relay before registration ---------------------------------------------------------------

BAD_IMPORT_MASTER = """
    import json
    import time
    import rpc_parallel as rp
    from tests.integration.lifecycle_workers import Probe

    start = time.monotonic()
    try:
        Probe.spawn(name="badimport", env={"LIFECYCLE_RAISE_AT_IMPORT": "import-time marker"}, spawn_timeout=30)
        out = {"raised": None}
    except Exception as exc:
        out = {"raised": type(exc).__qualname__, "rp_error": isinstance(exc, rp.RpcParallelError),
               "timeout": isinstance(exc, rp.SpawnTimeoutError), "message": str(exc)}
    out["elapsed"] = time.monotonic() - start
    print(json.dumps(out), flush=True)
"""


def test_worker_failing_at_import_fails_spawn_and_its_stderr_is_relayed_with_a_prefix(tmp_path: Path,
                                                                                      reaper: Reaper) -> None:
    master, out = _start_master(reaper, tmp_path, BAD_IMPORT_MASTER)
    assert master.wait(timeout=30) == 0
    # the type is not fixed by DESIGN.md: SpawnError ("exited before registering") or WorkerCrashedError
    assert out["raised"] in ("SpawnError", "WorkerCrashedError"), out
    assert (out["rp_error"], out["timeout"]) == (True, False)
    assert "import-time marker" in out["message"]  # the error carries the worker's stderr tail
    assert out["elapsed"] < 10, "spawn waited instead of noticing the worker died"
    lines = (tmp_path / "master.err").read_text().splitlines()
    prefix = "[WORKER badimport STDERR] "
    assert prefix + "Traceback (most recent call last):" in lines
    assert prefix + "RuntimeError: import-time marker" in lines
    assert any(line.startswith(prefix) and "lifecycle_workers.py" in line for line in lines)
    assert [line for line in lines if "import-time marker" in line and not line.startswith(prefix)] == []


# -- env, umask, cd ----------------------------------------------------------------------------------


def test_env_values_arrive_intact_umask_applies_and_cd_is_the_cwd(tmp_path: Path) -> None:
    tricky = {
        "LIFECYCLE_QUOTES": "double \" single ' back ` end",
        "LIFECYCLE_BACKSLASH": "C:\\path\\to\\ \\n \\\\ \\\" x",
        "LIFECYCLE_NEWLINES": "line one\nline two\r\n\tindented\n",
        "LIFECYCLE_SHELL": "$HOME $(echo no) ; && | > < * ~ {a,b} ${X}",
        "LIFECYCLE_UNICODE": "héllo wörld ✓ 日本",
        "LIFECYCLE_EMPTY": "",
    }
    handle = Probe.spawn(name="env", env=tricky, umask=0o027, cd=str(tmp_path))
    try:
        with Probe.connect(handle) as conn:
            for key, value in tricky.items():
                assert conn.run(Probe.env, key) == value, key
            assert conn.run(Probe.env, "RPC_PARALLEL_WORKER") is None
            assert os.path.realpath(conn.run(Probe.cwd)) == os.path.realpath(tmp_path)
            assert conn.run(Probe.create_file, "made-by-worker") == 0o640
    finally:
        handle.shutdown()
    assert (tmp_path / "made-by-worker").stat().st_mode & 0o777 == 0o640


def test_setting_rpc_parallel_worker_through_env_is_refused_before_anything_starts() -> None:
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    with pytest.raises(rp.SpawnError, match="RPC_PARALLEL_WORKER"):
        Probe.spawn(name="reserved", env={"RPC_PARALLEL_WORKER": "1"})
    assert {p.pid for p in me.children(recursive=True)} - before == set()


# -- nested masters ---------------------------------------------------------------------------------

CHAIN_MASTER = """
    import json
    import time
    import rpc_parallel as rp
    from tests.integration.lifecycle_workers import Chain, HB_TIMEOUT

    SETTINGS = rp.RpcSettings(max_message_size=7_000_000, handshake_timeout=11.0,
                              heartbeat=rp.Heartbeat(timeout=HB_TIMEOUT, send_every=0.25))

    def main():
        top = Chain.spawn(1, name="chain1")
        with Chain.connect(top) as conn:
            below = conn.run(Chain.extend, 4)
            pids = [conn.run(Chain.pid), *below.pids]
            settings = [conn.worker_settings().to_json(), *below.settings]
        print(json.dumps({"pids": pids, "settings": [json.loads(s) for s in settings],
                          "expected": json.loads(SETTINGS.to_json())}), flush=True)
        time.sleep(600)

    if __name__ == "__main__":
        rp.start_app(main, settings=SETTINGS)
"""


def test_chain_of_five_nested_masters_inherits_settings_and_dies_with_the_top(tmp_path: Path,
                                                                           reaper: Reaper) -> None:
    master, out = _start_master(reaper, tmp_path, CHAIN_MASTER)
    chain = reaper.track(*out["pids"])
    assert len({p.pid for p in chain}) == 5
    assert out["settings"] == [out["expected"]] * 5  # the innermost too: inherited level by level
    assert out["expected"]["max_message_size"] == 7_000_000
    assert [p.ppid() for p in chain[1:]] == [p.pid for p in chain[:-1]]  # each level spawned the next
    assert not any(_gone(p) for p in chain)
    killed = time.monotonic()
    _kill_master(master)
    alive = _wait_gone(chain, timeout=6 * T)
    elapsed = time.monotonic() - killed
    assert alive == [], f"chain workers {alive} outlived the top master"
    assert elapsed < 6 * T


# -- many cycles ---------------------------------------------------------------------------------------


def _listening(me: psutil.Process) -> set[int]:
    return {c.laddr.port for c in me.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}


def _settle(me: psutil.Process, timeout: float = 10) -> None:
    """Wait until this process has no children (the reaper threads reaped them)."""
    deadline = time.monotonic() + timeout
    while me.children(recursive=True) and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_200_spawn_shutdown_cycles_leak_nothing() -> None:
    faulthandler.cancel_dump_traceback_later()  # this test outlives faulthandler_timeout by design
    me = psutil.Process()

    def cycle() -> None:
        handle = Counter.spawn(1, name="cycle")
        handle.shutdown()

    for _ in range(10):
        cycle()
    _settle(me)
    fds, threads, ports = me.num_fds(), threading.active_count(), _listening(me)
    children = me.children(recursive=True)
    start = time.monotonic()
    for _ in range(190):
        cycle()
    elapsed = time.monotonic() - start
    _settle(me)
    print(f"190 spawn/shutdown cycles after warm-up: {elapsed:.1f}s, {elapsed / 190 * 1000:.0f} ms per cycle")
    leftover = me.children(recursive=True)
    assert [p for p in leftover if p.status() == psutil.STATUS_ZOMBIE] == []
    assert len(leftover) <= len(children)
    assert me.num_fds() <= fds + 5
    assert threading.active_count() <= threads + 3
    assert _listening(me) == ports


# -- a worker that never receives its init -----------------------------------------------------------


def test_worker_that_never_receives_its_init_exits_254_by_itself() -> None:
    """A master that accepts the registration and then never sends InitWorker (here a stand-in
    master server of our own): the worker gives up after connection_timeout and exits 254."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    from rpc_parallel._proto import master_pb2, master_pb2_grpc

    registered = threading.Event()

    class SilentMaster(master_pb2_grpc.MasterServicer):
        def Register(self, request: Any, context: Any) -> Any:
            registered.set()
            return master_pb2.RegisterReply(proceed=True)

        def Heartbeat(self, request: Any, context: Any) -> Iterator[Any]:
            done = threading.Event()
            context.add_callback(done.set)
            yield master_pb2.HeartbeatReply()
            done.wait(30)

    server = grpc.server(ThreadPoolExecutor(4))
    master_pb2_grpc.add_MasterServicer_to_server(SilentMaster(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    settings = json.loads(rp.RpcSettings().to_json())
    config = {
        "worker_id": "f" * 32, "name": "uninitialized", "class": "Counter", "module": "examples.counter",
        "main_path": None, "sys_path": sys.path, "master_address": f"127.0.0.1:{port}", "token": "t",
        "settings": settings, "master_settings": settings, "redirect_stdout": {"mode": "dev_null"},
        "redirect_stderr": {"mode": "dev_null"}, "redirect": False, "cd": "/", "umask": None,
        "connection_timeout": 1.0, "worker_argv": None, "unix_socket": False,
    }
    proc = subprocess.Popen([sys.executable, "-m", "rpc_parallel._worker_main", "uninitialized"],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "RPC_PARALLEL_WORKER": "1"})
    try:
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.write(json.dumps(config).encode() + b"\n")
        proc.stdin.close()
        started = time.monotonic()
        assert proc.wait(timeout=20) == 254
        assert registered.is_set()
        assert time.monotonic() - started < 10
        assert b"uninitialized: no init within 1.0s" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        server.stop(0).wait()


STOPPED_WORKER_MASTER = """
    import json
    import os
    import signal
    import rpc_parallel as rp
    from tests.integration.lifecycle_workers import SHORT, Probe

    def main():
        handle = Probe.spawn(name="stopped")
        os.kill(handle.pid, signal.SIGSTOP)
        print(json.dumps(handle.pid), flush=True)
        # and exit normally, without shutting the stopped worker down

    if __name__ == "__main__":
        rp.start_app(main, settings=SHORT)
"""


def test_a_stopped_worker_does_not_outlive_its_master_that_exits(tmp_path: Path, reaper: Reaper) -> None:
    """The master continues (SIGCONT) its workers when it exits, so a stopped one sees the master
    gone and exits too, instead of staying stopped forever."""
    master, pid = _start_master(reaper, tmp_path, STOPPED_WORKER_MASTER)
    (worker,) = reaper.track(pid)
    assert master.wait(timeout=30) == 0
    assert _wait_gone([worker], timeout=3 * HB_TIMEOUT + 5) == []
