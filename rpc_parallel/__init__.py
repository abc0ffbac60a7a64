"""rpc_parallel: typed Python functions in worker processes, over gRPC.

A worker handle identifies a running worker server; ``spawn`` starts one in another process
(``serve``: in this one); ``connect`` opens a connection to it; ``run`` calls a function on a
connection. ``rpc_parallel.aio`` offers the same for asyncio; ``rpc_parallel.expert`` holds entry
points for programs with their own command line.
"""

import typing as _typing

from ._app import start_app as start_app
from ._client import Connection as Connection, Pipe as Pipe, connect as connect
from ._deadline import deadline as deadline
from ._errors import (
    AuthenticationError as AuthenticationError,
    ConnectionClosedError as ConnectionClosedError,
    DeadlineExceededError as DeadlineExceededError,
    DeclarationError as DeclarationError,
    MessageTooLargeError as MessageTooLargeError,
    ProtocolError as ProtocolError,
    RemoteError as RemoteError,
    RpcParallelError as RpcParallelError,
    SettingsError as SettingsError,
    SpawnError as SpawnError,
    SpawnTimeoutError as SpawnTimeoutError,
    UnsupportedTypeError as UnsupportedTypeError,
    WorkerConnectionError as WorkerConnectionError,
    WorkerCrashedError as WorkerCrashedError,
    WorkerFailedError as WorkerFailedError,
)
from ._function import (
    DirectPipeFunction as DirectPipeFunction,
    Function as Function,
    Kind as Kind,
    OneWayFunction as OneWayFunction,
    Pickled as Pickled,
    PipeFunction as PipeFunction,
    ReversePipeFunction as ReversePipeFunction,
    RpcFunction as RpcFunction,
    StateFunction as StateFunction,
    direct_pipe as direct_pipe,
    one_way as one_way,
    pipe as pipe,
    reverse_pipe as reverse_pipe,
    rpc as rpc,
    state as state,
)
from ._handle import WorkerHandle as WorkerHandle
from ._mapreduce._functions import MapFunction as MapFunction, MapReduceFunction as MapReduceFunction
from ._options import (
    DEV_NULL as DEV_NULL,
    IGNORE_FAILURE as IGNORE_FAILURE,
    LOG_FAILURE as LOG_FAILURE,
    RELAY as RELAY,
    FileAppend as FileAppend,
    FileTruncate as FileTruncate,
    Local as Local,
    ShutdownOn as ShutdownOn,
    Slurm as Slurm,
    Ssh as Ssh,
    Tls as Tls,
)
from ._pipes import (
    Closed as Closed,
    DirectPipeId as DirectPipeId,
    DirectWriter as DirectWriter,
    LogRecord as LogRecord,
    Update as Update,
)
from ._settings import Heartbeat as Heartbeat, RpcSettings as RpcSettings
from ._worker import Worker as Worker

if _typing.TYPE_CHECKING:
    from . import aio as aio, expert as expert, map_reduce as map_reduce, testing as testing

_LAZY = ("aio", "expert", "map_reduce", "testing")


def __getattr__(name: str) -> _typing.Any:
    # rp.aio, rp.expert, rp.map_reduce and rp.testing load on first use: a worker process need not
    # import asyncio, click, tqdm or pytest
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = (
    "DEV_NULL",
    "IGNORE_FAILURE",
    "LOG_FAILURE",
    "RELAY",
    "AuthenticationError",
    "Closed",
    "Connection",
    "ConnectionClosedError",
    "DeadlineExceededError",
    "DeclarationError",
    "DirectPipeFunction",
    "DirectPipeId",
    "DirectWriter",
    "FileAppend",
    "FileTruncate",
    "Function",
    "Heartbeat",
    "Kind",
    "Local",
    "LogRecord",
    "MapFunction",
    "MapReduceFunction",
    "MessageTooLargeError",
    "OneWayFunction",
    "Pickled",
    "Pipe",
    "PipeFunction",
    "ProtocolError",
    "RemoteError",
    "ReversePipeFunction",
    "RpcFunction",
    "RpcParallelError",
    "RpcSettings",
    "SettingsError",
    "ShutdownOn",
    "Slurm",
    "SpawnError",
    "SpawnTimeoutError",
    "Ssh",
    "StateFunction",
    "Tls",
    "UnsupportedTypeError",
    "Update",
    "Worker",
    "WorkerConnectionError",
    "WorkerCrashedError",
    "WorkerFailedError",
    "WorkerHandle",
    "aio",
    "connect",
    "deadline",
    "direct_pipe",
    "expert",
    "map_reduce",
    "one_way",
    "pipe",
    "reverse_pipe",
    "rpc",
    "start_app",
    "state",
    "testing",
)


def _mark_public_types() -> None:
    # Generated clients refer to these as rp.<name> instead of mirroring them (codegen/_client.py);
    # the renderers cannot import this package, so the names travel on the types themselves.
    for name in __all__:
        obj = globals().get(name)
        if isinstance(obj, type) and obj.__module__.startswith(f"{__name__}."):
            obj._rp_public_name = name  # type: ignore[attr-defined]


_mark_public_types()
