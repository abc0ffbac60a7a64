"""The curated public API: ``__all__`` is a sorted tuple, complete, and every name resolves."""

from __future__ import annotations

import types

import rpc_parallel as rp
from rpc_parallel import _errors


def test_all_is_a_sorted_complete_tuple() -> None:
    assert isinstance(rp.__all__, tuple)
    assert list(rp.__all__) == sorted(rp.__all__, key=lambda n: (not n.isupper(), n))  # constants first
    public = {n for n in dir(rp) if not n.startswith("_")}
    public -= {n for n in public if isinstance(getattr(rp, n), types.ModuleType)
               and n not in ("aio", "expert", "map_reduce", "testing")}
    assert public == set(rp.__all__)


def test_design_names_exist() -> None:
    for name in ("Worker", "rpc", "one_way", "pipe", "state", "direct_pipe", "reverse_pipe", "DirectWriter",
                 "WorkerHandle", "Connection", "Pipe", "Update", "Closed", "ShutdownOn", "RpcSettings", "Heartbeat",
                 "Local", "Ssh", "Slurm", "Tls", "DEV_NULL", "FileAppend", "FileTruncate", "start_app", "Pickled", "RpcParallelError",
                 "RemoteError", "WorkerFailedError", "WorkerCrashedError", "WorkerConnectionError",
                 "SpawnTimeoutError", "MessageTooLargeError", "ProtocolError"):
        assert hasattr(rp, name), name


def test_errors_derive_from_the_root() -> None:
    for name in rp.__all__:
        obj = getattr(rp, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, rp.RpcParallelError), name


def test_public_types_carry_their_public_name() -> None:
    """Generated clients name exactly these types ``rp.<name>`` (codegen/_client.py), others are mirrored."""
    from rpc_parallel._options import DevNull

    marked = {name for name in rp.__all__ if isinstance(getattr(rp, name), type)}
    assert {"WorkerHandle", "ShutdownOn", "DirectPipeId", "RemoteError"} <= marked
    for name in marked:
        assert vars(getattr(rp, name))["_rp_public_name"] == name
    assert "_rp_public_name" not in vars(DevNull)  # not exported: a schema using it mirrors it

    class Mine(rp.FileAppend):  # a user's subclass is the user's type
        pass

    assert "_rp_public_name" not in vars(Mine)


def test_every_error_of_the_tree_derives_from_the_root() -> None:
    for name in _errors.__all__:
        assert issubclass(getattr(_errors, name), rp.RpcParallelError), name
    assert {"ProtocError", "DynamicCallError"} <= set(_errors.__all__)
