"""A worker implements an existing ``.proto`` service (OCaml ``of_async_rpc``): a hand-written
service compiled by grpc_tools, served under its own method names, called with its stock
``_pb2_grpc`` stub (only the token added) and from rpc_parallel itself. (The Node client calls it
in test_node_client.py.)"""

from __future__ import annotations

import importlib
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, wrappers_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import rpc_parallel as rp
from rpc_parallel._protocol import TOKEN_KEY
from rpc_parallel.codegen import service_spec

from .conftest import Legacy


def _modules(legacy: Legacy) -> tuple[Any, Any, Any]:
    return (importlib.import_module("legacy.store_pb2"), importlib.import_module("legacy.store_pb2_grpc"),
            importlib.import_module("store_worker"))


def test_the_stock_stub_calls_the_worker_with_only_the_token_added(legacy: Legacy) -> None:
    store_pb2, store_pb2_grpc, store_worker = _modules(legacy)
    worker = store_worker.StoreWorker
    handle = worker.spawn()
    try:
        with grpc.insecure_channel(handle.address) as channel:
            stub = store_pb2_grpc.StoreStub(channel)
            token = ((TOKEN_KEY, handle.token),)
            assert stub.Size(store_pb2.SizeRequest(data=b"hello"), metadata=token, timeout=10).value == 5
            assert stub.Echo(store_pb2.EchoRequest(data=b"\x00\xff"), metadata=token, timeout=10).value == b"\x00\xff"
            with pytest.raises(grpc.RpcError) as refused:
                stub.Size(store_pb2.SizeRequest(data=b"x"), timeout=10)  # no token
            assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as failed:
                stub.Echo(store_pb2.EchoRequest(data=b"boom"), metadata=token, timeout=10)
            assert failed.value.code() is grpc.StatusCode.UNKNOWN
            assert failed.value.details() == "ValueError: no boom here"
        with worker.connect(handle) as conn:  # and from rpc_parallel: run, submit, map
            assert conn.run(worker.size, store_pb2.SizeRequest(data=b"abc")) == store_pb2.SizeReply(value=3)
            assert conn.submit(worker.echo, store_pb2.EchoRequest(data=b"q")).result().value == b"q"
            assert conn.run(worker.size.map(lambda r: r.value), store_pb2.SizeRequest(data=b"ab")) == 2
            with pytest.raises(rp.RemoteError, match="no boom here"):
                conn.run(worker.echo, store_pb2.EchoRequest(data=b"boom"))
            with pytest.raises(TypeError, match="takes one SizeRequest"):
                conn.run(worker.size, b"abc")
            assert conn.run(worker.calls_so_far) == 7  # the one refused call (no token) reached no user code
    finally:
        handle.shutdown()


def test_the_worker_type_s_own_service_leaves_the_foreign_methods_out(legacy: Legacy) -> None:
    store_pb2, _, store_worker = _modules(legacy)
    spec = service_spec(store_worker.StoreWorker)
    assert [m.name for m in spec.methods] == ["calls_so_far"]


def test_a_foreign_declaration_is_checked() -> None:
    with pytest.raises(TypeError, match="gRPC method name"):
        rp.rpc(method="Store.Size", request=empty_pb2.Empty, response=empty_pb2.Empty)
    with pytest.raises(TypeError, match="protobuf message class"):
        rp.rpc(method="/a.B/C", request=bytes, response=empty_pb2.Empty)
    rp.rpc(method="/a.B/C", request=wrappers_pb2.StringValue, response=empty_pb2.Empty)  # an unknown service: fine


def test_a_foreign_method_its_service_lacks_is_refused(legacy: Legacy) -> None:
    store_pb2, _, _ = _modules(legacy)
    with pytest.raises(TypeError, match="service legacy.Store has no method Sise; it has Echo, Size"):
        rp.rpc(method="/legacy.Store/Sise", request=store_pb2.SizeRequest, response=store_pb2.SizeReply)
    with pytest.raises(TypeError, match="declares the request legacy.SizeRequest, not legacy.EchoRequest"):
        rp.rpc(method="/legacy.Store/Size", request=store_pb2.EchoRequest, response=store_pb2.SizeReply)


def test_health_and_reflection_cover_the_foreign_service(legacy: Legacy) -> None:
    _, _, store_worker = _modules(legacy)
    handle = store_worker.StoreWorker.spawn()
    try:
        with grpc.insecure_channel(handle.address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="legacy.Store"),
                                                              timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            token = ((TOKEN_KEY, handle.token),)
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(file_containing_symbol="legacy.Store")
            (answer,) = list(stub.ServerReflectionInfo(iter([request]), metadata=token, timeout=5))
            assert answer.WhichOneof("message_response") == "file_descriptor_response"
    finally:
        handle.shutdown()
