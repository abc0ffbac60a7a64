"""The wire protocol between rpc_parallel peers, beside the messages themselves: metadata keys,
the built-in services' method paths, size limits, and the fingerprint messages.

Client, server, spawner and worker all take these names from here; any gRPC client in another
language needs only the metadata keys (docs/codegen.md).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import platform
import socket

from ._proto import control_pb2
from ._schema import ServiceSpec

__all__ = (
    "CONN_KEY",
    "ERROR_KEY",
    "PIPELINE_BATCH",
    "PIPELINE_MAX_REQUEST",
    "PIPELINE_MIN_LIMIT",
    "ONE_WAY_MAX_BYTES",
    "ONE_WAY_MAX_CALLS",
    "ONE_WAY_QUEUE_BYTES",
    "ONE_WAY_QUEUE_CALLS",
    "PIPELINE_PART",
    "SEQ_KEY",
    "SPAWN_ERROR_MARKER",
    "code_differences",
    "code_facts",
    "SPLICED_CALL",
    "SPLICED_HEADER_MAX",
    "SPLICED_KEY",
    "SPLICED_ONE",
    "SPLICED_SERVICE",
    "SUBMIT_MAX_BYTES",
    "SUBMIT_MAX_CALLS",
    "TOKEN_KEY",
    "fingerprint_messages",
)

# -- metadata keys -------------------------------------------------------------------------------

TOKEN_KEY = "rpcpar-token"  # the master's token: every call carries it, checked before anything runs
CONN_KEY = "rpcpar-conn"  # the connection a call belongs to (from Control/OpenConnection)
SEQ_KEY = "rpcpar-seq"  # a one_way call's number on its connection, from 0 (they run in that order)
ERROR_KEY = "rpcpar-error-bin"  # trailer: rpc_parallel.v1.ErrorInfo of a failed call
SPLICED_KEY = "rpcpar-spliced-bin"  # a Spliced/One call's SplicedHeader (request metadata, reply trailer)

# -- a worker's stderr before it registers --------------------------------------------------------

# a worker whose start failed on purpose ends its stderr with this, then the JSON string of its error
SPAWN_ERROR_MARKER = "rpcpar-spawn-error: "

# -- built-in services ---------------------------------------------------------------------------

SPLICED_SERVICE = "rpc_parallel.v1.Spliced"
SPLICED_CALL = f"/{SPLICED_SERVICE}/Call"  # an rpc whose large bytes values travel unframed
SPLICED_ONE = f"/{SPLICED_SERVICE}/One"  # the same for one large value, as a unary call
SPLICED_HEADER_MAX = 4096  # a header that travels in metadata (Spliced/One) stays this small

# -- pipelined calls (Control/Pipeline) ----------------------------------------------------------

PIPELINE_MIN_LIMIT = 256 << 10  # below this max_message_size, calls go unary (a batch or an error must fit)
PIPELINE_MAX_REQUEST = 64 << 10  # larger requests go unary: batching gains them nothing
PIPELINE_BATCH = 256 << 10  # requests per message, in bytes
PIPELINE_PART = 1 << 20  # results per message (and parts of a large one), in bytes, at most half the limit


# -- flow control (DESIGN.md section 10): what one connection keeps in flight before its caller waits

SUBMIT_MAX_CALLS = 1024  # pipelined submit() calls
SUBMIT_MAX_BYTES = 32 << 20  # ... and the bytes of their requests
ONE_WAY_MAX_CALLS = 64  # one_way calls not yet acknowledged
ONE_WAY_MAX_BYTES = 16 << 20  # ... and their bytes
ONE_WAY_QUEUE_CALLS = 64  # one_way calls a worker holds queued per connection before it acknowledges more
ONE_WAY_QUEUE_BYTES = 32 << 20  # ... and their bytes


def fingerprint_messages(spec: ServiceSpec) -> list[control_pb2.FunctionFingerprint]:
    """The per-function fingerprints of ``spec``, as sent on Register and OpenConnection."""
    return [control_pb2.FunctionFingerprint(name=n, fingerprint=f) for n, f in spec.function_fingerprints]


def host_name() -> str:
    """The name of the machine this process runs on, as handles carry it (on a Slurm node, the
    node's name)."""
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname()


def code_facts(module: str | None, path: str | None) -> dict[str, str]:
    """What a worker's code check compares (issue: the code on a host differs from the master's):
    the Python and rpc_parallel versions, and ``module NAME`` -> ``SHA256 PATH`` of the source of
    the worker module at ``path`` (none for a module without a file)."""
    facts = {"python": platform.python_version(), "rpc_parallel": _rp_version()}
    if module is not None and path is not None:
        try:
            with open(path, "rb") as f:
                facts[f"module {module}"] = f"{hashlib.sha256(f.read()).hexdigest()} {path}"
        except OSError:
            pass
    return facts


def code_differences(expected: dict[str, str], got: dict[str, str]) -> list[str]:
    """What differs between the master's code facts and a worker's, each named (files by path)."""
    out = []
    for key, want in expected.items():
        have = got.get(key, "")
        if have.split(" ", 1)[0] != want.split(" ", 1)[0]:
            if key.startswith("module "):
                there = have.split(" ", 1)[1] if " " in have else "?"
                out.append(f"{key}: {there} on the worker differs from {want.split(' ', 1)[1]} here")
            else:
                out.append(f"{key} {have or '?'} on the worker, {want} here")
    return out


@functools.cache
def _rp_version() -> str:
    try:
        return importlib.metadata.version("rpc-parallel")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
