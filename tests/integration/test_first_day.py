"""A user's first day: failures never silent, mistakes caught with a clear error (issue 11)."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator

import psutil
import pytest

import rpc_parallel as rp

from .first_day_workers import Bus
from .workers import Calls

SLOW_HANDSHAKE = rp.RpcSettings(handshake_timeout=60.0)


def _wait_gone(pid: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
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


# -- a pipe's run returns once it has started ------------------------------------------------------------


def test_subscribe_then_trigger_never_misses_the_trigger() -> None:
    handle = Bus.spawn()
    try:
        with Bus.connect(handle) as conn:
            for i in range(20):
                pipe = conn.run(Bus.events)
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
