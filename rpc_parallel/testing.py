"""Testing your workers with pytest: a check that a test left no worker process, zombie or
listening socket behind.

Use the fixture in a ``conftest.py``::

    from rpc_parallel.testing import no_leaks  # noqa: F401  (or: pytest_plugins = ("rpc_parallel.testing",))

    @pytest.fixture(autouse=True)
    def _checked(no_leaks): ...

or the context manager around any block: ``with rp.testing.no_leaked_workers(): ...``. It needs
``psutil`` and ``pytest`` (``pip install rpc-parallel[testing]``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from ._forkserver import server_pid
from ._master import any_master
from ._served import served_ids, stop_all

__all__ = ("no_leaked_workers", "no_leaks")


def _listening_ports(proc: psutil.Process) -> set[int]:
    return {c.laddr.port for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}


def _master_ports() -> set[int]:
    m = any_master()
    return set() if m is None else m.ports()


@contextlib.contextmanager
def no_leaked_workers(timeout: float = 10.0, *, ignore: Callable[[psutil.Process], bool] | None = None
                      ) -> Iterator[None]:
    """Fail (``AssertionError``) if the block left a child process (a worker, its zombie) or a
    listening socket of this process behind, once ``timeout`` seconds have passed for them to go.
    ``ignore(process)`` true: a descendant that belongs to the test's fixtures, not to the block
    (say, the sessions of an sshd the fixtures run); it neither counts nor is killed.

    Workers the block served in this process (``Worker.serve``) are stopped first (those served
    before it are left alone); this process's master server and fork server, which live as long as
    the process, do not count. What leaked is killed, so the next test starts clean. A block that
    raises is cleaned up the same way, and its exception propagates unchanged.
    """
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    ports_before = _listening_ports(me)
    served_before = served_ids()
    try:
        yield
    except BaseException:
        stop_all(keep=served_before)
        _leaks(me, children_before, ports_before, min(timeout, 2.0), ignore)
        raise
    stop_all(keep=served_before)
    live, ports = _leaks(me, children_before, ports_before, timeout, ignore)
    if live or ports:
        raise AssertionError(f"leaked child processes {live} / listening ports {sorted(ports)}")


def _leaks(me: psutil.Process, children_before: set[int], ports_before: set[int], timeout: float,
           ignore: Callable[[psutil.Process], bool] | None) -> tuple[list[tuple[int, str, str]], set[int]]:
    """The new child processes and listening ports still there after at most ``timeout`` s; the
    processes are killed."""
    deadline = time.monotonic() + timeout
    while True:
        helpers = children_before | {server_pid()}
        live: list[tuple[int, str, str]] = []
        for p in me.children(recursive=True):
            if p.pid in helpers:
                continue
            try:
                if ignore is None or not ignore(p):
                    live.append((p.pid, p.status(), " ".join(p.cmdline()[-3:])))
            except psutil.NoSuchProcess:
                pass
        ports = {p for p in _listening_ports(me) - ports_before - _master_ports() if p}
        if (not live and not ports) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for pid, _, _ in live:
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass
    return live, ports


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """A test using this fixture fails if it leaked a worker process, zombie or listening socket."""
    with no_leaked_workers():
        yield
