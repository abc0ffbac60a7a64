"""What a master asks of a worker over its ``Control`` service: init it, watch it, probe it, shut
it down. Importing this module installs ``shutdown_worker`` as ``WorkerHandle.shutdown``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc

from ._client import worker_label
from ._errors import RpcParallelError, SpawnTimeoutError
from ._grpc_errors import ErrorBoundary
from ._handle import WorkerHandle, install_shutdown
from ._master import any_master
from ._options import ShutdownOn
from ._proto import control_pb2, control_pb2_grpc
from ._protocol import TOKEN_KEY
from ._transport import dial, open_channel

__all__ = ("ANSWERING", "GONE", "SILENT", "init_worker", "probe", "shutdown_worker", "watch")

ANSWERING = "answering"
SILENT = "silent"
GONE = "gone"


def _token(handle: WorkerHandle) -> tuple[tuple[str, str], ...]:
    return ((TOKEN_KEY, handle.token),)


def init_worker(handle: WorkerHandle, init_arg: bytes, shutdown_on: ShutdownOn, connection_timeout: float,
                deadline: float) -> None:
    """Run ``init_worker_state`` in the worker (``Control/InitWorker``), by the ``deadline`` of its
    spawn (a ``time.monotonic()`` value): past it, ``SpawnTimeoutError``."""
    label = worker_label(handle)

    def timed_out() -> RpcParallelError:
        return SpawnTimeoutError(f"timed out initialising {label}")

    channel = open_channel(handle.address, handle.settings, ca=handle.ca)
    try:
        with ErrorBoundary(label, timeout=timed_out):
            control_pb2_grpc.ControlStub(channel).InitWorker(
                control_pb2.InitWorkerRequest(worker_id=handle.worker_id, arg=init_arg,
                                              shutdown_on=shutdown_on.value,  # type: ignore[arg-type]
                                              connection_timeout=connection_timeout),
                metadata=_token(handle), timeout=max(0.1, deadline - time.monotonic()), wait_for_ready=True)
    finally:
        channel.close()


def watch(handle: WorkerHandle, is_running: Callable[[], bool]) -> str | None:
    """Hold a ``Control/Watch`` stream to the worker until it breaks and a probe does not find the
    worker answering: return the probe's ``SILENT`` or ``GONE`` (None once ``is_running()`` is
    false). A stream that broke for a passing reason is reopened."""
    while is_running():
        channel = open_channel(handle.address, handle.settings, ca=handle.ca)
        try:
            for _ in control_pb2_grpc.ControlStub(channel).Watch(
                    control_pb2.WatchRequest(worker_id=handle.worker_id), metadata=_token(handle)):
                pass
        except grpc.RpcError:
            pass  # the stream ended: the probe tells why
        finally:
            channel.close()
        status = probe(handle, handle.settings.heartbeat.timeout)
        if status != ANSWERING:
            return status
    return None


def probe(handle: WorkerHandle, timeout: float = 2.0) -> str:
    """Ask the worker behind ``handle`` for its settings (``Control/Settings``): ``ANSWERING``;
    ``SILENT`` if no answer came within ``timeout`` seconds (hung, stopped, or a very busy
    machine); ``GONE`` if nothing serves it there (refused, or another worker took the port).

    The probe dials a fresh connection (a private subchannel): one shared with a stream that just
    broke could fail at once and make a stopped worker look gone.
    """
    channel = open_channel(handle.address, handle.settings, private=True, ca=handle.ca)
    try:
        control_pb2_grpc.ControlStub(channel).Settings(
            control_pb2.SettingsRequest(worker_id=handle.worker_id), metadata=_token(handle), timeout=timeout)
    except grpc.RpcError as exc:  # not an error to raise: the status is the answer
        return SILENT if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED else GONE
    finally:
        channel.close()
    return ANSWERING


def shutdown_worker(handle: WorkerHandle) -> None:
    """Ask the worker process behind ``handle`` to exit 0 (``WorkerHandle.shutdown``)."""
    m = any_master()
    record = m.workers.get(handle.worker_id) if m is not None else None
    if record is not None:  # before asking: the exit can be seen before the answer
        record.shutdown_requested = True
    label = worker_label(handle)
    channel = dial(handle.address, handle.settings, label, ca=handle.ca)
    try:
        with ErrorBoundary(label):
            control_pb2_grpc.ControlStub(channel).Shutdown(
                control_pb2.ShutdownRequest(worker_id=handle.worker_id), metadata=_token(handle),
                timeout=handle.settings.handshake_timeout)
    finally:
        channel.close()


install_shutdown(shutdown_worker)
