"""Integration fixtures: every test here ends with no leaked child process, zombie or socket."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


class Updates:
    """A direct pipe's ``on_update``: the values it got, and its ``Closed`` (``wait`` for it)."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.closed: list[rp.Closed] = []
        self._ended = threading.Event()

    def __call__(self, update: rp.Update[Any] | rp.Closed) -> None:
        if isinstance(update, rp.Closed):
            self.closed.append(update)
            self._ended.set()
        else:
            self.values.append(update.value)

    def wait(self, timeout: float) -> bool:
        """Whether the pipe closed within ``timeout`` seconds."""
        return self._ended.wait(timeout)


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


LEGACY_PROTO = """syntax = "proto3";

package legacy;

// A hand-written service, as a team would have before rpc_parallel: a worker implements it.
service Store {
  rpc Size(SizeRequest) returns (SizeReply);
  rpc Echo(EchoRequest) returns (EchoReply);
}

message SizeRequest { bytes data = 1; }
message SizeReply { int64 value = 1; }
message EchoRequest { bytes data = 1; }
message EchoReply { bytes value = 1; }
"""

LEGACY_WORKER = '''"""A worker implementing legacy.Store, the existing service of legacy/store.proto."""

import rpc_parallel as rp
from legacy import store_pb2


class StoreWorker(rp.Worker):
    def init_worker_state(self) -> None:
        self.calls = 0

    @rp.rpc(method="/legacy.Store/Size", request=store_pb2.SizeRequest, response=store_pb2.SizeReply)
    def size(self, request: store_pb2.SizeRequest) -> store_pb2.SizeReply:
        self.calls += 1
        return store_pb2.SizeReply(value=len(request.data))

    @rp.rpc(method="/legacy.Store/Echo", request=store_pb2.EchoRequest, response=store_pb2.EchoReply)
    def echo(self, request: store_pb2.EchoRequest) -> store_pb2.EchoReply:
        self.calls += 1
        if request.data == b"boom":
            raise ValueError("no boom here")
        return store_pb2.EchoReply(value=request.data)

    @rp.rpc
    def calls_so_far(self) -> int:
        return self.calls
'''


@dataclass(frozen=True)
class Legacy:
    """The hand-written service, compiled by grpc_tools into ``root`` (on ``sys.path``)."""

    root: Path
    proto: Path


@pytest.fixture(scope="session")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Legacy]:
    """``legacy/store.proto`` compiled with grpc_tools (``store_pb2``, ``store_pb2_grpc``) and a
    worker module implementing it (``store_worker``), importable for the session."""
    root = tmp_path_factory.mktemp("legacy")
    (root / "legacy").mkdir()
    (root / "legacy" / "__init__.py").write_text("")
    proto = root / "legacy" / "store.proto"
    proto.write_text(LEGACY_PROTO)
    (root / "store_worker.py").write_text(LEGACY_WORKER)
    done = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{root}", f"--python_out={root}",
                           f"--grpc_python_out={root}", str(proto)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    sys.path.insert(0, str(root))
    try:
        yield Legacy(root, proto)
    finally:
        sys.path.remove(str(root))
