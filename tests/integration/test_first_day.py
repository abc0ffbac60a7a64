"""A user's first day: failures never silent, mistakes caught with a clear error (issue 11)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import rpc_parallel as rp

from .first_day_workers import Bus, Logging, Mixed, Slow, Talker
from .workers import Calls

SLOW_HANDSHAKE = rp.RpcSettings(handshake_timeout=60.0)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # gone between the lookup and the read of its status
        return False


def _wait_gone(pid: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while _running(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs"
        time.sleep(0.02)


# -- failures are logged by default ------------------------------------------------------------------


def test_a_background_failure_is_logged_without_on_failure(caplog: pytest.LogCaptureFixture) -> None:
    handle = Bus.spawn(name="loud")
    with caplog.at_level(logging.ERROR, logger="rpc_parallel"), Bus.connect(handle) as conn:
        conn.run(Bus.crash_later, "boom in a one_way")
        deadline = time.monotonic() + 20
        while not [r for r in caplog.records if r.name == "rpc_parallel"]:
            assert time.monotonic() < deadline, "nothing was logged"
            time.sleep(0.02)
    (record,) = [r for r in caplog.records if r.name == "rpc_parallel"]
    assert record.levelno == logging.ERROR
    assert "worker loud failed after a function returned: RuntimeError: boom in a one_way" in record.getMessage()
    assert "Remote traceback" in record.getMessage()
    _wait_gone(handle.pid)


def test_on_failure_none_is_refused_and_ignore_failure_is_explicit(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(TypeError, match=r"rp\.LOG_FAILURE.*rp\.IGNORE_FAILURE"):
        Bus.spawn(on_failure=None)  # type: ignore[call-overload]
    handle = Bus.spawn(on_failure=rp.IGNORE_FAILURE)
    with caplog.at_level(logging.ERROR, logger="rpc_parallel"), Bus.connect(handle) as conn:
        conn.run(Bus.crash_later, "quietly")
        _wait_gone(handle.pid)
    assert [r for r in caplog.records if r.name == "rpc_parallel"] == []


# -- init_worker_state without an argument ------------------------------------------------------------


def test_an_init_without_an_argument_spawns_without_one() -> None:
    with pytest.raises(TypeError, match="None"):
        Bus.spawn(5)  # type: ignore[arg-type]
    handle = Bus.spawn()
    try:
        with Bus.connect(handle) as conn:
            assert conn.run(Bus.subscriber_count) == 0
    finally:
        handle.shutdown()


# -- fixed tuples and unions ---------------------------------------------------------------------------------


def test_fixed_tuples_and_unions_travel_in_every_direction() -> None:
    handle = Mixed.spawn()
    try:
        with Mixed.connect(handle) as conn:
            assert conn.run(Mixed.swap, (1, "a")) == ("a", 1)
            assert list(conn.run(Mixed.mixed, 8)) == [0, "1", (2, 1.0), None, 4, "5", (6, 3.0), None]
            assert conn.run(Mixed.kinds, iter([1, 1.0, "1", 0, 0.0, ""])) == ["int", "float", "str"] * 2
            with pytest.raises(TypeError, match=r"argument 'p' must be tuple\[int, str\]: p\[1\] must be str"):
                conn.run(Mixed.swap, (1, 2))
    finally:
        handle.shutdown()


def test_json_picks_the_union_member_the_value_has_down_to_its_leaves() -> None:
    """rpcpar call's JSON: ["7", 1] is the tuple[str, int], not a list[int] of a coerced "7"; a
    dataclass default that cannot be made leaves the field to the caller, not Describe broken."""
    from rpc_parallel._client import DynamicClient
    from rpc_parallel._errors import DynamicCallError

    handle = Mixed.serve()
    try:
        with DynamicClient(handle) as client:
            def show(v: object) -> str:
                (out,) = client.call("show", [v])
                return str(out)

            assert show(["7", 1]) == "('7', 1)"
            assert show([7, 1]) == "[7, 1]"
            assert show({"k": "7"}) == "{'k': '7'}"
            assert show({"k": 7}) == "{'k': 7}"
            with pytest.raises(DynamicCallError, match="is none of the union's members"):
                show(["a", "b"])
            assert list(client.call("settle", [{"name": "n", "tags": [1]}])) == [
                "Settled(name='n', tags=[1], level=3)"]
            with pytest.raises(DynamicCallError, match=r"missing field\(s\) 'tags' of Settled \(level may be left out\)"):
                list(client.call("settle", [{"name": "n"}]))
    finally:
        handle.shutdown()


def test_a_typed_client_calls_with_tuples_and_unions() -> None:
    from tests.golden.decls import types as decl, types_rpcpar as typed

    box = decl.Box(decl.Shape.CIRCLE, [], {}, [], {}, None, [], None, None)
    handle = decl.Shapes.spawn({"b": box})
    try:
        with typed.ShapesClient.connect(handle) as client:
            assert client.pick("x", [("a", typed.Shape.SQUARE)]) == (1, "x")
            reading = client.pick([typed.Corner(1, 2)], [("a", None), ("b", None)])
            assert reading == typed.Reading((0.0, 1.0), 2, note=typed.Shape.SQUARE)
            assert type(reading.value) is int
    finally:
        handle.shutdown()


# -- a pipe's run returns once it has started ------------------------------------------------------------


def test_subscribe_then_trigger_never_misses_the_trigger() -> None:
    handle = Bus.spawn()
    try:
        with Bus.connect(handle) as conn:
            for i in range(20):
                pipe = conn.run(Bus.events if i % 2 else Bus.events_via_generator)
                assert conn.run(Bus.subscriber_count) == i + 1  # subscribed before run returned
                conn.run(Bus.publish, i)
                assert next(pipe) == i
                pipe.close()
            with conn.run(Bus.generated) as pipe:
                assert conn.run(Bus.was_generator_started)
                assert list(pipe) == [0]
    finally:
        handle.shutdown()


# -- connections to workers that are gone ------------------------------------------------------------


@pytest.mark.parametrize("unix_socket", [False, True])
def test_a_refused_connection_fails_at_once(unix_socket: bool) -> None:
    handle = Bus.spawn(settings=SLOW_HANDSHAKE, how=rp.Local(unix_socket=unix_socket))
    handle.shutdown()
    _wait_gone(handle.pid)
    started = time.monotonic()
    with pytest.raises(rp.WorkerConnectionError, match="could not reach"):
        Bus.connect(handle)
    with pytest.raises(rp.WorkerConnectionError, match="could not reach"):
        handle.shutdown()
    assert time.monotonic() - started < 20  # not the 60 s handshake_timeout: nothing listens there


def test_calls_after_the_worker_died_raise_worker_connection_error() -> None:
    handle = Calls.spawn(on_failure=rp.IGNORE_FAILURE)
    conn = Calls.connect(handle, "t")
    assert conn.close_reason is None
    os.kill(handle.pid, signal.SIGKILL)
    assert conn.wait_closed(20)
    with pytest.raises(rp.WorkerConnectionError) as info:
        conn.run(Calls.tagged, 1)
    assert not isinstance(info.value, rp.ConnectionClosedError)
    assert conn.close_reason is not None and conn.close_reason.startswith("the worker side ended the connection")
    conn.close()
    with pytest.raises(rp.WorkerConnectionError):  # still the worker's doing, after close() too
        conn.run(Calls.tagged, 1)


def test_calls_after_close_raise_connection_closed_error(calls: rp.WorkerHandle) -> None:
    conn = Calls.connect(calls, "t")
    conn.close()
    assert conn.close_reason == "closed by close()"
    with pytest.raises(rp.ConnectionClosedError, match=r"close\(\) was called"):
        conn.run(Calls.tagged, 1)


# -- a reverse pipe's own iterable -------------------------------------------------------------------


def test_the_callers_iterable_raising_is_the_callers_error() -> None:
    class Broken(Exception):
        pass

    def updates() -> Iterator[int]:
        yield from range(10)
        raise Broken("my own iterable")

    handle = Bus.spawn()
    try:
        with Bus.connect(handle) as conn:
            with pytest.raises(Broken, match="my own iterable"):
                conn.run(Bus.total, updates())
            with pytest.raises(TypeError, match="int"):
                conn.run(Bus.total, iter([1, 2, "three"]))  # type: ignore[list-item]
            assert conn.run(Bus.total, iter(range(5))) == 10  # the worker lives on, the connection too
    finally:
        handle.shutdown()


# -- connecting as another worker type -----------------------------------------------------------------


def test_connecting_as_another_type_names_both(calls: rp.WorkerHandle) -> None:
    with pytest.raises(rp.ProtocolError, match=r"^this worker is a Calls \(of tests\.integration\.workers\), not a Bus "
                                               r"\(of tests\.integration\.first_day_workers\): connect to it as"):
        Bus.connect(calls)


# -- where worker types live, and what runs on import --------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def _run_master(script: Path, *, stdin: Path | None = None, args: tuple[str, ...] = ()) -> tuple[int, str, str, int]:
    """Run ``script`` as a master; (exit code, stdout, stderr, the most processes its tree held at once).
    Whatever it leaves running is killed here (a broken guard would leave a chain of processes)."""
    with open(stdin or os.devnull) as source:
        proc = subprocess.Popen([sys.executable, *(args or (str(script),))], cwd=REPO, stdin=source,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
    most, seen = 0, set()
    master = psutil.Process(proc.pid)
    try:
        deadline = time.monotonic() + 45
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                tree = [p for p in master.children(recursive=True) if "_forkserver.py" not in " ".join(p.cmdline())]
            except psutil.Error:
                tree = []
            seen |= {p.pid for p in tree}
            most = max(most, len(tree))
            time.sleep(0.01)
        out, err = proc.communicate(timeout=30)
    finally:
        for pid in seen:
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err, most


@pytest.mark.parametrize("spawn", ["Bus.spawn()", "asyncio.run(rp.aio.spawn(Bus))"])
def test_a_script_without_its_main_guard_fails_once_with_a_clear_error(tmp_path: Path, spawn: str) -> None:
    script = tmp_path / "no_guard.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio
        import rpc_parallel as rp
        from tests.integration.first_day_workers import Bus

        handle = {spawn}  # at import: each worker would run it again
        print("spawned", handle)
    """))
    code, out, err, most = _run_master(script)
    assert code == 1, (out, err)
    assert "spawned" not in out
    assert "rpc_parallel._errors.SpawnError: worker " in err and "could not start: Bus.spawn() was reached while" in err
    assert 'if __name__ == "__main__":' in err
    assert "[WORKER " in err  # the worker's own traceback, relayed
    assert most <= 1  # the one worker process, never a chain


def test_a_spawn_at_import_under_start_app_is_refused_too(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent("""
        import rpc_parallel as rp
        from tests.integration.first_day_workers import Bus

        def main() -> None:
            handle = Bus.spawn()
            print("from main:", handle.pid > 0)
            handle.shutdown()

        rp.start_app(main)  # no guard: a worker re-executes this program and reaches start_app
        Bus.spawn()  # after start_app returned in the master; a worker never gets here
    """))
    code, out, err, most = _run_master(script)
    assert code == 0, err
    assert out.splitlines() == ["from main: True"]
    assert most <= 2


def test_pickled_functions_of_the_main_script_unpickle_in_the_worker(tmp_path: Path) -> None:
    script = tmp_path / "main_functions.py"
    script.write_text(textwrap.dedent("""
        import rpc_parallel as rp
        from tests.integration.first_day_workers import Bus

        def add(a: int, b: int) -> int:
            return a + b

        if __name__ == "__main__":
            handle = Bus.spawn()
            with Bus.connect(handle) as conn:
                print(conn.run(Bus.apply, add, 2, 3))
            handle.shutdown()
    """))
    code, out, err, _ = _run_master(script)
    assert (code, out.strip()) == (0, "5"), err


INTERACTIVE = textwrap.dedent("""
    import rpc_parallel as rp

    class Typed(rp.Worker):
        @rp.rpc
        def f(self) -> int:
            return 1
""")


@pytest.mark.parametrize("how", ["-c", "stdin"])
def test_a_worker_type_of_an_interactive_session_is_refused_at_definition(tmp_path: Path, how: str) -> None:
    source = tmp_path / "typed.py"
    source.write_text(INTERACTIVE)
    args = ("-c", INTERACTIVE) if how == "-c" else ("-",)
    code, _, err, most = _run_master(source, stdin=source if how == "stdin" else None, args=args)
    assert code == 1
    assert "rpc_parallel._errors.DeclarationError: worker type Typed is declared in an interactive session" in err
    assert most == 0


def test_a_worker_type_inside_a_function_is_refused_at_definition() -> None:
    with pytest.raises(rp.DeclarationError, match=r"Local is declared inside a function; .* at the top level of a module"):
        class Local(rp.Worker):
            @rp.rpc
            def f(self) -> int:
                return 1


# -- worker output reaches the master ------------------------------------------------------------------

GRPC_LOG_LINE = re.compile(r"^(\[[^\]]+\] )*[IWE]\d{4} \d\d:\d\d:\d\d")


def _relayed(capsys: pytest.CaptureFixture[str], *handles: rp.WorkerHandle) -> tuple[list[str], list[str]]:
    """Shut the workers down and return what the master printed (their output ends with them)."""
    for h in handles:
        h.shutdown()
    for h in handles:
        _wait_gone(h.pid)
    time.sleep(0.2)  # the relay threads' last lines
    out, err = capsys.readouterr()
    return out.splitlines(), err.splitlines()


def test_worker_output_is_relayed_line_by_line_with_its_name(capsys: pytest.CaptureFixture[str]) -> None:
    handle = Talker.spawn(name="t")
    with Talker.connect(handle) as conn:
        conn.run(Talker.say, ["a", "b"], False)
        conn.run(Talker.say, ["to stderr"], True)
    out, err = _relayed(capsys, handle)
    assert out == ["[t] a", "[t] b"]
    assert "[t] to stderr" in err
    assert [line for line in err if GRPC_LOG_LINE.match(line)] == []


def test_a_stream_kept_from_import_time_is_relayed_line_by_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    handle = Talker.spawn(name="early")
    try:
        with Talker.connect(handle) as conn:
            conn.run(Talker.say_to_the_stdout_of_import_time, "kept")
            seen = ""
            deadline = time.monotonic() + 10
            while "[early] kept" not in seen and time.monotonic() < deadline:  # while the worker lives
                time.sleep(0.05)
                seen += capsys.readouterr().out
            assert "[early] kept" in seen
    finally:
        handle.shutdown()


def test_output_of_nested_masters_is_relayed_up_the_chain(capsys: pytest.CaptureFixture[str]) -> None:
    handle = Talker.spawn(name="outer")
    with Talker.connect(handle) as conn:
        conn.run(Talker.say_through_child, "from the child")
    out, _ = _relayed(capsys, handle)
    assert "[outer] [inner] from the child" in out


def test_lines_of_two_workers_never_mix(capsys: pytest.CaptureFixture[str]) -> None:
    handles = [Talker.spawn(name=f"w{i}") for i in range(2)]
    lines = {h.name: [f"{h.name}-{n:04d}-" + "x" * 300 for n in range(300)] for h in handles}
    conns = [Talker.connect(h) for h in handles]
    futures = [c.submit(Talker.say, lines[h.name], False) for c, h in zip(conns, handles, strict=True)]
    for f in futures:
        f.result(60)
    for c in conns:
        c.close()
    out, _ = _relayed(capsys, *handles)
    for name, expected in lines.items():
        assert [line for line in out if line.startswith(f"[{name}] ")] == [f"[{name}] {line}" for line in expected]
    assert len(out) == 600


def test_dev_null_and_files_keep_their_meaning(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    handle = Talker.spawn(name="quiet", redirect_stdout=rp.DEV_NULL, redirect_stderr=rp.FileAppend(tmp_path / "e"))
    with Talker.connect(handle) as conn:
        conn.run(Talker.say, ["nowhere"], False)
        conn.run(Talker.say, ["in the file"], True)
    out, err = _relayed(capsys, handle)
    assert out == [] and not [line for line in err if "[quiet]" in line]
    assert "in the file" in (tmp_path / "e").read_text()


# -- rp.testing ---------------------------------------------------------------------------------------


def test_the_leak_check_fails_a_block_that_leaks_a_worker_and_kills_it() -> None:
    with pytest.raises(AssertionError, match=r"^leaked child processes "), \
            rp.testing.no_leaked_workers(timeout=2.0):
        leaked = Bus.spawn(shutdown_on=rp.ShutdownOn.CALLED_SHUTDOWN_FUNCTION)
    _wait_gone(leaked.pid, timeout=10)  # killed by the check
    with rp.testing.no_leaked_workers(timeout=10.0):  # and a clean block passes
        Bus.spawn().shutdown()


def test_the_leak_check_cleans_up_after_a_block_that_raises_and_keeps_its_error() -> None:
    with pytest.raises(KeyError, match="the block's own"), rp.testing.no_leaked_workers(timeout=2.0):
        leaked = Bus.spawn(shutdown_on=rp.ShutdownOn.CALLED_SHUTDOWN_FUNCTION)
        raise KeyError("the block's own")
    _wait_gone(leaked.pid, timeout=10)


def test_the_leak_check_leaves_workers_served_before_it_alone() -> None:
    before = Bus.serve()
    try:
        with rp.testing.no_leaked_workers(timeout=10.0):
            Bus.serve()  # served in the block: stopped by the check
        with Bus.connect(before) as conn:
            assert conn.run(Bus.subscriber_count) == 0
    finally:
        before.shutdown()


# -- conn.logs() ----------------------------------------------------------------------------------------


def test_log_records_fan_out_from_subscription_on_and_close_unsubscribes() -> None:
    handle = Logging.spawn(name="logs")
    try:
        with Logging.connect(handle) as a, Logging.connect(handle) as b:
            a.run(Logging.log, logging.WARNING, "before anyone listens")  # no backlog
            everything, warnings = a.logs(level=logging.DEBUG), b.logs(level=logging.WARNING)
            a.run(Logging.log, logging.INFO, "info line")
            a.run(Logging.log, logging.ERROR, "error line")
            first = next(everything)
            assert (first.message, first.level, first.logger) == ("info line", logging.INFO, "first_day")
            assert (first.worker_id, first.worker_name) == (handle.worker_id, "logs")
            assert next(everything).message == "error line"
            assert next(warnings).message == "error line"  # below its level: the info line is not sent
            everything.close()
            a.run(Logging.log, logging.ERROR, "after one closed")
            assert next(warnings).message == "after one closed"
            assert everything.next_batch() is None
            warnings.close()
    finally:
        handle.shutdown()


def test_a_log_message_longer_than_a_message_may_be_is_cut_to_fit() -> None:
    handle = Logging.spawn(settings=rp.RpcSettings(max_message_size=64 * 1024))
    try:
        with Logging.connect(handle) as conn, conn.logs() as records:
            conn.run(Logging.log, logging.ERROR, "x" * 40_000)  # the argument fits; a record of it would not
            conn.run(Logging.log, logging.ERROR, "short")
            cut = next(records)
            assert cut.message.startswith("xxx") and cut.message.endswith("characters cut]")
            assert len(cut.message.encode()) < 32 * 1024
            assert next(records).message == "short"
            for _ in range(20):  # 3.6 KB each in UTF-8, 900 characters: batches are bounded by bytes
                conn.run(Logging.log, logging.ERROR, "\U0001d11e" * 900)
            assert [len(next(records).message) for _ in range(20)] == [900] * 20
    finally:
        handle.shutdown()


def test_a_subscription_prints_no_warning_that_logging_would_not(capsys: pytest.CaptureFixture[str]) -> None:
    handle = Logging.spawn(name="quiet")
    try:
        with Logging.connect(handle) as conn:
            conn.run(Logging.configure_errors_only)  # the program's logging: errors only
            with conn.logs(level=logging.DEBUG) as records:
                conn.run(Logging.log, logging.WARNING, "hidden warning")
                conn.run(Logging.log, logging.ERROR, "shown error")
                assert [next(records).message for _ in range(2)] == ["hidden warning", "shown error"]
                seen = ""
                deadline = time.monotonic() + 10
                while "shown error" not in seen and time.monotonic() < deadline:
                    time.sleep(0.05)
                    seen += capsys.readouterr().err
        assert "shown error" in seen and "hidden warning" not in seen
    finally:
        handle.shutdown()


# -- rp.deadline --------------------------------------------------------------------------------------


def test_a_deadline_ends_calls_of_every_kind_and_the_worker_lives_on() -> None:
    handle = Slow.spawn()
    try:
        with Slow.connect(handle) as conn:
            started = time.monotonic()
            with pytest.raises(rp.DeadlineExceededError) as info, rp.deadline(0.5):
                conn.run(Slow.sleep, 30)
            assert isinstance(info.value, TimeoutError)
            with pytest.raises(rp.DeadlineExceededError), rp.deadline(0.5):
                conn.submit(Slow.sleep, 30).result(30)
            with pytest.raises(rp.DeadlineExceededError), rp.deadline(0.5):
                for _ in conn.run(Slow.trickle, 0.05):
                    pass
            assert time.monotonic() - started < 20  # not the 30 s the calls asked for
            deadline = time.monotonic() + 10
            while conn.run(Slow.generators_closed) == 0:  # the worker's side was cancelled
                assert time.monotonic() < deadline, "the generator was not closed"
                time.sleep(0.02)
            assert conn.run(Slow.sleep, 0) == 0  # the worker and the connection live on
    finally:
        handle.shutdown()


def test_nested_deadlines_the_earliest_wins(calls: rp.WorkerHandle) -> None:
    handle = Slow.spawn()
    try:
        with Slow.connect(handle) as conn:
            for outer, inner in ((30, 0.3), (0.3, 30)):
                started = time.monotonic()
                with pytest.raises(rp.DeadlineExceededError), rp.deadline(outer), rp.deadline(inner):
                    conn.run(Slow.sleep, 30)
                assert time.monotonic() - started < 15
            with rp.deadline(30):
                assert conn.run(Slow.sleep, 0.01) == 0.01  # within it: fine
    finally:
        handle.shutdown()


def test_spawn_and_connect_honour_a_deadline(calls: rp.WorkerHandle) -> None:
    with pytest.raises(rp.DeadlineExceededError), rp.deadline(0.001):
        Slow.spawn()  # cannot be up in a millisecond; the process it started is gone (no leak)
    with rp.deadline(0):
        with pytest.raises(rp.DeadlineExceededError):
            Calls.connect(calls, "t")


def test_a_deadline_in_asyncio() -> None:
    async def main() -> None:
        handle = await rp.aio.spawn(Slow)
        try:
            conn = await rp.aio.connect(Slow, handle)
            with pytest.raises(rp.DeadlineExceededError), rp.deadline(0.5):
                await conn.run(Slow.sleep, 30)
            assert await conn.run(Slow.sleep, 0) == 0
            await conn.aclose()
        finally:
            handle.shutdown()

    asyncio.run(main())


def test_cancelling_a_submitted_call_cancels_it() -> None:
    handle = Slow.spawn()
    try:
        with Slow.connect(handle) as conn:
            running = conn.submit(Slow.sleep, 1.0)
            queued = [conn.submit(Slow.sleep, 0.5) for _ in range(3)]
            for f in queued:
                assert f.cancel()
            assert running.cancel()
            assert all(f.cancelled() for f in [running, *queued])
            assert conn.submit(Slow.sleep, 0).result(30) == 0  # the connection and the stream go on
            with rp.deadline(30):  # the unary path (under a deadline) cancels too
                f = conn.submit(Slow.sleep, 5)
                assert f.cancel()
            assert conn.run(Slow.sleep, 0) == 0
    finally:
        handle.shutdown()


def test_a_call_cut_off_by_our_own_close_raises_connection_closed_error() -> None:
    handle = Slow.spawn()
    try:
        conn = Slow.connect(handle)
        got: list[BaseException] = []

        def call() -> None:
            try:
                conn.run(Slow.sleep, 10)
            except BaseException as exc:
                got.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(0.5)  # the call is in flight
        conn.close()
        caller.join(20)
        assert len(got) == 1 and isinstance(got[0], rp.ConnectionClosedError), got
    finally:
        handle.shutdown()
