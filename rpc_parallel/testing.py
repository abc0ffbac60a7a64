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
from collections.abc import Iterator

import psutil
import pytest

from ._forkserver import server_pid
from ._master import any_master
from ._served import stop_all

__all__ = ("no_leaked_workers", "no_leaks")


def _listening_ports(proc: psutil.Process) -> set[int]:
    return {c.laddr.port for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}


def _master_port() -> int | None:
    m = any_master()
    if m is None or not m.address:
        return None
    return int(m.address.rsplit(":", 1)[1])


@contextlib.contextmanager
def no_leaked_workers(timeout: float = 10.0) -> Iterator[None]:
    """Fail (``AssertionError``) if the block left a child process (a worker, its zombie) or a
    listening socket of this process behind, once ``timeout`` seconds have passed for them to go.

    Workers the block served in this process (``Worker.serve``) are stopped first; this process's
    master server and fork server, which live as long as the process, do not count. What leaked is
    killed, so the next test starts clean.
    """
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    ports_before = _listening_ports(me)
    yield
    stop_all()
    deadline = time.monotonic() + timeout
    while True:
        helpers = children_before | {server_pid()}
        live = []
        for p in me.children(recursive=True):
            if p.pid in helpers:
                continue
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
    raise AssertionError(f"leaked child processes {live} / listening ports {sorted(p for p in ports if p)}")


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """A test using this fixture fails if it leaked a worker process, zombie or listening socket."""
    with no_leaked_workers():
        yield
