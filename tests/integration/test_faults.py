"""The fault-injection matrix: every failure point x failure mode, with real processes and signals.

Each cell spawns a ``Faulty`` worker told (through ``env``) where and how to fail, drives it to that
point, and checks three things: what the caller got, what ``on_failure`` got (exactly once, or never),
and whether the worker lives on or is gone. ``EXPECTED`` is the contract; docs/failures.md shows the
same table, and ``test_docs_table_matches`` keeps the two equal.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

import rpc_parallel as rp
from tests.integration.fault_workers import FAULT_ENV, MODES, POINTS, Faulty

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FAST = rp.RpcSettings(heartbeat=rp.Heartbeat(timeout=1.0, send_every=0.25))
SPAWN_PHASE = ("import", "init_worker_state")
MODE_TEXT = {"raise": "raise", "exit": "`sys.exit(3)`", "_exit": "`os._exit(7)`", "sigkill": "SIGKILL",
             "sigstop": "SIGSTOP"}


@dataclass(frozen=True)
class Expect:
    caller: type[BaseException] | None  # what the call at the failure point raises (None: it returns)
    on_failure: type[BaseException] | None  # what on_failure gets, exactly once (None: never called)
    death: str  # how the worker ends: "lives", "exit N", "signal N", "killed by the master", "killed by spawn"

    def describe(self) -> str:
        caller = f"`{self.caller.__name__}`" if self.caller else "returns"
        failure = f"`on_failure({self.on_failure.__name__})`" if self.on_failure else "—"
        return f"{caller}; {failure}; {self.death}"


def expected(point: str, mode: str) -> Expect:
    """The contract of the matrix (DESIGN.md section 5)."""
    death = {"exit": "exit 3", "_exit": "exit 7", "sigkill": "signal 9"}.get(mode)
    if point in SPAWN_PHASE:  # failures while spawning are spawn's to raise; on_failure never hears of them
        if mode == "raise":
            return Expect(rp.RemoteError if point == "init_worker_state" else rp.WorkerCrashedError, None,
                          "exit 254" if point == "init_worker_state" else "exit 1")
        if mode == "sigstop":
            if point == "import":  # never registers
                return Expect(rp.SpawnTimeoutError, None, "killed by spawn")
            return Expect(rp.WorkerConnectionError, None, "killed by spawn")
        return Expect(rp.WorkerCrashedError, None, death or "")
    if point == "background":  # after the function returned: only on_failure hears of it
        if mode == "raise":
            return Expect(None, rp.WorkerFailedError, "exit 254")
        if mode == "sigstop":
            return Expect(None, rp.WorkerCrashedError, "killed by the master")
        return Expect(None, rp.WorkerCrashedError, death or "")
    if mode == "raise":
        return Expect(rp.RemoteError, None, "lives")
    if mode == "sigstop":
        return Expect(rp.WorkerConnectionError, rp.WorkerCrashedError, "killed by the master")
    return Expect(rp.WorkerConnectionError, rp.WorkerCrashedError, death or "")


def _wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _drive(conn: rp.Connection, point: str, got: list[int]) -> object:
    if point == "rpc":
        return conn.run(Faulty.call)
    if point == "pipe":
        got.extend(conn.run(Faulty.items))  # a failure mid-way leaves got with what arrived before it
        return got
    if point == "reverse_pipe":
        return conn.run(Faulty.consume, iter(range(5)))
    if point == "background":
        return conn.run(Faulty.start_background)
    if point == "serialization":
        return conn.run(Faulty.result)
    raise AssertionError(point)


@pytest.mark.timeout(40)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("point", POINTS)
def test_fault(point: str, mode: str, tmp_path: Path) -> None:
    want = expected(point, mode)
    name = f"faulty-{point}-{mode}"
    failures: list[BaseException] = []
    caller: BaseException | None = None
    handle: rp.WorkerHandle | None = None
    got: list[int] = []
    try:
        handle = Faulty.spawn(0, on_failure=failures.append, name=name, env={FAULT_ENV: f"{point}:{mode}"},
                              redirect_stderr=rp.FileAppend("stderr.txt"), cd=str(tmp_path), settings=FAST,
                              spawn_timeout=4.0 if (point, mode) == ("import", "sigstop") else 20.0)
    except rp.RpcParallelError as exc:
        caller = exc
    call_started = time.monotonic()  # the failing call (or connect) starts here
    if handle is not None:
        try:
            conn = Faulty.connect(handle, 0)
        except rp.RpcParallelError as exc:
            caller = exc
        else:
            with conn:
                try:
                    result = _drive(conn, point, got)
                except rp.RpcParallelError as exc:
                    caller = exc
                else:
                    assert want.caller is None, f"{point}:{mode} returned {result!r}"
    elapsed = time.monotonic() - call_started

    # what the caller saw
    if want.caller is None:
        assert caller is None, repr(caller)
    else:
        assert type(caller) is want.caller, f"{point}:{mode}: wanted {want.caller.__name__}, got {caller!r}"
        assert name in str(caller) or isinstance(caller, rp.WorkerConnectionError), str(caller)
    if isinstance(caller, rp.RemoteError):  # a result that cannot be encoded is the function's TypeError
        assert caller.remote_type == ("TypeError" if point == "serialization" else "RuntimeError")
        assert f"injected fault at {point}" in caller.remote_message
        assert "fault_at" in caller.remote_traceback
    if isinstance(caller, rp.WorkerCrashedError):
        _check_death(caller, want.death, point)
    if mode == "sigstop" and want.caller is rp.WorkerConnectionError and point not in SPAWN_PHASE:
        assert elapsed < 2 * FAST.heartbeat.timeout + 4, f"a stopped worker took {elapsed:.1f}s to detect"
    if point == "pipe":  # items sent before the fault arrive in order; after a raise, all of them
        assert got == [1, 2, 3] if mode == "raise" else got == [1, 2, 3][:len(got)]

    # what on_failure got: exactly once, or never
    if want.on_failure is None:
        time.sleep(0.3)
        assert failures == []
    else:
        assert _wait(lambda: failures, 2 * FAST.heartbeat.timeout + 8), f"{point}:{mode}: on_failure not called"
        time.sleep(0.3)
        assert len(failures) == 1, failures
        failure = failures[0]
        assert type(failure) is want.on_failure, repr(failure)
        assert name in str(failure)
        if isinstance(failure, rp.WorkerFailedError):
            assert "injected fault at background" in str(failure)
            assert "fault_at" in failure.remote_traceback
            assert "injected fault at background" in (tmp_path / "stderr.txt").read_text()  # its last words
        if isinstance(failure, rp.WorkerCrashedError):
            _check_death(failure, want.death, point)

    # the worker's fate
    if handle is not None:
        if want.death == "lives":
            with Faulty.connect(handle, 0) as conn:
                assert conn.run(Faulty.ping) == "pong"
            handle.shutdown()
        assert _wait(lambda: _gone(handle.pid), 10), f"{point}:{mode}: worker {handle.pid} still running"


def _check_death(exc: rp.WorkerCrashedError, death: str, point: str) -> None:
    if death.startswith("exit "):
        assert (exc.exit_code, exc.signal) == (int(death.split()[1]), None), str(exc)
    elif death.startswith("signal "):
        assert (exc.exit_code, exc.signal) == (None, int(death.split()[1])), str(exc)
    else:
        assert "stopped answering" in str(exc), str(exc)
    if death == "exit 1":  # a failed import: its traceback reached us through the stderr relay
        assert f"injected fault at {point}" in exc.stderr_tail
    if death == "exit 3":
        assert "sys.exit(3)" in exc.stderr_tail or point == "import"


# -- the table in docs/failures.md -----------------------------------------------------------------


def render_table() -> str:
    """The matrix as a markdown table: rows are points, columns modes; cells say caller; on_failure; fate."""
    head = "| failure point | " + " | ".join(MODE_TEXT[m] for m in MODES) + " |"
    rule = "|---|" + "---|" * len(MODES)
    rows = [f"| {p} | " + " | ".join(expected(p, m).describe() for m in MODES) + " |" for p in POINTS]
    return "\n".join([head, rule, *rows])


def test_docs_table_matches() -> None:
    text = (ROOT / "docs" / "failures.md").read_text()
    match = re.search(r"<!-- fault-matrix -->\n(.*?)\n<!-- /fault-matrix -->", text, re.S)
    assert match, "docs/failures.md lacks the <!-- fault-matrix --> block"
    regenerate = "python -c 'from tests.integration.test_faults import render_table; print(render_table())'"
    assert match.group(1) == render_table(), f"the table is stale; regenerate it with {regenerate}"


def test_no_fault_means_no_failure() -> None:
    """The control row: the same worker, no fault planned, serves every point normally."""
    failures: list[BaseException] = []
    handle = Faulty.spawn(0, on_failure=failures.append, name="faulty-none", settings=FAST)
    try:
        with Faulty.connect(handle, 0) as conn:
            assert conn.run(Faulty.call) == 1
            assert list(conn.run(Faulty.items)) == [1, 2, 3, 4]
            assert conn.run(Faulty.consume, iter(range(5))) == 10
            assert conn.run(Faulty.start_background) == "started"
            assert isinstance(conn.run(Faulty.result), object)
            time.sleep(0.5)
            assert conn.run(Faulty.ping) == "pong"
    finally:
        handle.shutdown()
    assert _wait(lambda: _gone(handle.pid), 10)
    assert failures == []



def test_aio_on_failure_runs_on_the_spawning_event_loop() -> None:
    import asyncio
    import threading

    async def main() -> tuple[BaseException, int, int]:
        loop_thread = threading.get_ident()
        got: asyncio.Future[tuple[BaseException, int]] = asyncio.get_running_loop().create_future()
        handle = await rp.aio.spawn(Faulty, 0, name="faulty-aio", settings=FAST,
                                    env={FAULT_ENV: "background:raise"},
                                    on_failure=lambda exc: got.set_result((exc, threading.get_ident())))
        async with await rp.aio.connect(Faulty, handle, 0) as conn:
            assert await conn.run(Faulty.start_background) == "started"
        exc, thread = await asyncio.wait_for(got, 20)
        assert _wait(lambda: _gone(handle.pid), 10)
        return exc, thread, loop_thread

    exc, thread, loop_thread = asyncio.run(main())
    assert isinstance(exc, rp.WorkerFailedError) and "faulty-aio" in str(exc)
    assert thread == loop_thread
