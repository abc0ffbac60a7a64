"""Integration fixtures: every test here ends with no leaked child process, zombie or socket."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import rpc_parallel as rp
from rpc_parallel.testing import no_leaked_workers

from .workers import Calls


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail the test if it left a child process, a zombie or a listening socket behind (the fork
    server, like the master's own server, lives as long as this process): rp.testing's check."""
    with no_leaked_workers():
        yield


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
