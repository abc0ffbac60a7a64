"""A non-Python gRPC client (Node, @grpc/grpc-js) calls a real worker process.

Proves the wire protocol is plain gRPC plus documented metadata: the committed ``.proto`` files,
the ``rpcpar-token`` metadata, ``rpc_parallel.v1.Control/OpenConnection`` for worker types with
connection state (then ``rpcpar-conn`` on every call), batched ``repeated items`` in pipe
responses, and failures as gRPC status codes. The Node program is ``node/client.js``; its
dependencies are installed here with ``npm ci`` (skipped when ``node_modules`` matches the lock).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import rpc_parallel as rp
from examples.counter import Counter
from rpc_parallel.codegen import file_descriptor, file_spec, render_proto, service_spec

from .conftest import Legacy

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = Path(__file__).resolve().parent / "node"
LOCK = NODE_DIR / "package-lock.json"
STAMP = NODE_DIR / "node_modules" / ".rpcpar-lock-sha256"
CONTROL_PROTO = ROOT / "proto" / "rpc_parallel" / "_proto" / "control.proto"
COUNTER_PROTO = ROOT / "examples" / "counter.proto"
COUNTER_SERVICE = service_spec(Counter).full_name  # examples.counter.Counter
INSTALL_TIMEOUT = 150.0
NODE_TIMEOUT = 60.0


def _lock_digest() -> str:
    return hashlib.sha256(LOCK.read_bytes() + (NODE_DIR / "package.json").read_bytes()).hexdigest()


def _install(npm: str) -> str | None:
    """Run ``npm ci`` unless ``node_modules`` was installed from this very lock; the problem, if any."""
    with LOCK.open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent test runs do not install over each other
        digest = _lock_digest()
        if STAMP.is_file() and STAMP.read_text().strip() == digest:
            return None
        try:
            proc = subprocess.run(
                [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=NODE_DIR, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            return f"`npm ci` in {NODE_DIR} took longer than {INSTALL_TIMEOUT:.0f}s"
        if proc.returncode != 0:
            return f"`npm ci` in {NODE_DIR} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        STAMP.write_text(digest + "\n")
    return None


@dataclass(frozen=True)
class NodeClient:
    """``node client.js``, or why it cannot run (then every test using it FAILS: CI has Node and npm)."""

    node: str | None
    problem: str | None

    def run(self, **env: str) -> dict[str, Any]:
        """Run ``node client.js`` with the ``RPCPAR_*`` variables ``env``; its JSON output."""
        if self.problem is not None or self.node is None:
            pytest.fail(self.problem or "no node", pytrace=False)
        base = {k: v for k, v in os.environ.items() if not k.startswith("RPCPAR_")}
        try:
            proc = subprocess.run([self.node, "client.js"], cwd=NODE_DIR, env={**base, **env}, capture_output=True,
                                  text=True, timeout=NODE_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:  # subprocess.run killed and reaped it
            stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
            pytest.fail(f"node client did not finish in {NODE_TIMEOUT:.0f}s; stderr:\n{stderr}")
        assert proc.returncode == 0, f"node client exited {proc.returncode}:\n{proc.stderr}\n{proc.stdout}"
        result: dict[str, Any] = json.loads(proc.stdout)
        return result


@pytest.fixture(scope="module")
def node() -> NodeClient:
    """The Node client, its dependencies installed into ``node/node_modules`` from the lock file."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        return NodeClient(None, f"{' and '.join(missing)} not on PATH: the Node client test needs Node.js and "
                                "npm (CI provides both)")
    return NodeClient(shutil.which("node"), _install(shutil.which("npm") or "npm"))


class Plain(rp.Worker):
    """No init_connection_state: plain gRPC clients call it without opening a connection."""

    @rp.rpc
    def size(self, data: bytes) -> int:
        return len(data)

    @rp.rpc
    def echo(self, data: bytes) -> bytes:
        return data


def _worker_env(handle: rp.WorkerHandle, proto: Path, service: str) -> dict[str, str]:
    return {"RPCPAR_ADDRESS": handle.address, "RPCPAR_WORKER_ID": handle.worker_id,
            "RPCPAR_FINGERPRINT": handle.fingerprint, "RPCPAR_PROTO": str(proto),
            "RPCPAR_CONTROL_PROTO": str(CONTROL_PROTO), "RPCPAR_SERVICE": service}


@pytest.mark.timeout(180)
def test_node_client_calls_every_kind_through_a_connection(node: NodeClient) -> None:
    failures: list[BaseException] = []
    handle = Counter.spawn(10, name="node-target", on_failure=failures.append)
    try:
        out = node.run(RPCPAR_MODE="counter", RPCPAR_TOKEN=handle.token,
                       **_worker_env(handle, COUNTER_PROTO, COUNTER_SERVICE))
        # Counter has init_connection_state: a call without rpcpar-conn is refused, no user code runs
        assert out["without_connection"]["code"] == "FAILED_PRECONDITION"
        assert "open a connection first" in out["without_connection"]["details"]
        assert out["connection_id"]
        assert out["incr"] == 15
        assert out["whoami"] == "node"  # init_connection_state got the CounterConnectionInit node encoded
        assert out["count_to"] == list(range(1, 1001))
        assert 1 <= out["count_to_messages"] <= 1000
        assert out["boom"]["code"] == "UNKNOWN"  # a user exception (RemoteError in Python)
        assert out["boom"]["details"] == "ValueError: from node"
        with Counter.connect(handle, "py") as conn:  # the worker lives on and kept the node's increment
            assert conn.run(Counter.incr, 0) == 15
            assert conn.run(Counter.whoami) == "py"
    finally:
        handle.shutdown()
    assert failures == []


@pytest.mark.timeout(180)
def test_node_call_without_the_token_is_unauthenticated(node: NodeClient) -> None:
    handle = Counter.spawn(10, name="node-target")
    try:
        out = node.run(RPCPAR_MODE="noauth", **_worker_env(handle, COUNTER_PROTO, COUNTER_SERVICE))
        for call in ("incr_without_token", "incr_wrong_token", "open_without_token"):
            assert out[call]["code"] == "UNAUTHENTICATED", (call, out[call])
        with Counter.connect(handle, "py") as conn:
            assert conn.run(Counter.incr, 0) == 10  # no rejected call reached user code
    finally:
        handle.shutdown()


@pytest.mark.timeout(180)
def test_node_plain_client_needs_no_connection_without_connection_state(node: NodeClient, tmp_path: Path) -> None:
    spec = file_spec(Plain.__module__)  # this module's worker types: the .proto `rpcpar gen` would write
    proto = tmp_path / "plain.proto"
    proto.write_text(render_proto(spec, file_descriptor(spec), spec.module), encoding="utf-8")
    handle = Plain.spawn(name="node-plain")
    try:
        out = node.run(RPCPAR_MODE="plain", RPCPAR_TOKEN=handle.token,
                       **_worker_env(handle, proto, spec.service("Plain").full_name))
        assert out == {"size": len(b"hello, worker"), "echo": "000102ff"}
    finally:
        handle.shutdown()


@pytest.mark.timeout(180)
def test_node_calls_a_worker_implementing_a_hand_written_service(node: NodeClient, legacy: Legacy) -> None:
    """The Node client loads the hand-written legacy/store.proto, not a generated one."""
    store_worker = importlib.import_module("store_worker")
    handle = store_worker.StoreWorker.spawn(name="node-legacy")
    try:
        out = node.run(RPCPAR_MODE="plain", RPCPAR_TOKEN=handle.token, **_worker_env(handle, legacy.proto, "legacy.Store"))
        assert out == {"size": len(b"hello, worker"), "echo": "000102ff"}
    finally:
        handle.shutdown()
