"""Integration fixtures: every test here ends with no leaked child process, zombie or socket."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psutil
import pytest

import rpc_parallel as rp
from rpc_parallel._forkserver import server_pid
from rpc_parallel._master import any_master
from rpc_parallel._served import stop_all

from .workers import Calls


def _listening_ports(proc: psutil.Process) -> set[int]:
    return {c.laddr.port for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}


def _master_port() -> int | None:
    m = any_master()
    if m is None or not m.address:
        return None
    return int(m.address.rsplit(":", 1)[1])


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail the test if it left a child process, a zombie or a listening socket behind (the fork
    server, like the master's own server, lives as long as this process)."""
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    ports_before = _listening_ports(me)
    yield
    stop_all()
    deadline = time.monotonic() + 10
    while True:
        helpers = children_before | {server_pid()}  # the fork server lives as long as this process
        children = [p for p in me.children(recursive=True) if p.pid not in helpers]
        live = []
        for p in children:
            try:
                live.append((p.pid, p.status(), " ".join(p.cmdline()[-3:])))
            except psutil.NoSuchProcess:
                pass
        ports = _listening_ports(me) - ports_before - {_master_port()}
        if not live and not ports:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for pid, _, _ in live:
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass
    pytest.fail(f"leaked child processes {live} / listening ports {sorted(p for p in ports if p)}")


class Failures:
    """An ``on_failure`` callback that records what it gets."""

    def __init__(self) -> None:
        self.got: list[BaseException] = []
        self._called = threading.Event()

    def __call__(self, exc: BaseException) -> None:
        self.got.append(exc)
        self._called.set()

    def first(self, timeout: float = 10.0) -> BaseException:
        """The first failure reported, waiting up to ``timeout`` for it."""
        assert self._called.wait(timeout), f"on_failure was not called within {timeout}s"
        return self.got[0]


@pytest.fixture
def failures() -> Failures:
    return Failures()


@pytest.fixture
def calls() -> Iterator[rp.WorkerHandle]:
    """A ``Calls`` worker (tests/integration/workers.py), shut down after the test unless it killed it."""
    handle = Calls.spawn()
    yield handle
    try:
        handle.shutdown()
    except rp.RpcParallelError:
        pass  # a test killed it
