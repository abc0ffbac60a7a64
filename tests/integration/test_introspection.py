"""Every worker serves gRPC health checking (to anyone) and server reflection (behind the token):
a generic client lists a worker's services and calls one of its methods with messages built from
the reflected descriptors alone, as grpcurl does."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

import rpc_parallel as rp
from rpc_parallel._protocol import TOKEN_KEY

from .workers import Blob


@pytest.fixture
def blob() -> Iterator[rp.WorkerHandle]:
    handle = Blob.spawn()
    yield handle
    handle.shutdown()


def test_health_answers_without_the_token(blob: rp.WorkerHandle) -> None:
    with grpc.insecure_channel(blob.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "tests.integration.workers.Blob"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as unknown:
            stub.Check(health_pb2.HealthCheckRequest(service="no.Such"), timeout=5)
        assert unknown.value.code() is grpc.StatusCode.NOT_FOUND


def test_reflection_needs_the_token(blob: rp.WorkerHandle) -> None:
    with grpc.insecure_channel(blob.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.ServerReflectionInfo(iter([request]), timeout=5))
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


class _WithToken(grpc.UnaryUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):  # type: ignore[misc]
    """Adds the worker's token to every call (all a generic client needs besides the address)."""

    def __init__(self, token: str) -> None:
        self._md = ((TOKEN_KEY, token),)

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return details._replace(metadata=[*(details.metadata or ()), *self._md])  # type: ignore[attr-defined, no-any-return]

    def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(details), request)

    def intercept_stream_stream(self, continuation, details, requests):  # type: ignore[no-untyped-def]
        return continuation(self._details(details), requests)


def test_a_generic_client_lists_the_services_and_calls_a_method(blob: rp.WorkerHandle) -> None:
    with grpc.insecure_channel(blob.address) as plain:
        channel = grpc.intercept_channel(plain, _WithToken(blob.token))
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {"tests.integration.workers.Blob", "rpc_parallel.v1.Control", "grpc.health.v1.Health",
                "grpc.reflection.v1alpha.ServerReflection"} <= services
        pool = descriptor_pool.DescriptorPool(database)
        service = pool.FindServiceByName("tests.integration.workers.Blob")
        method = service.FindMethodByName("Size")
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        size = channel.unary_unary(f"/{service.full_name}/{method.name}",
                                   request_serializer=request_class.SerializeToString,
                                   response_deserializer=response_class.FromString)
        reply = size(request_class(data=b"12345"), timeout=10)
        assert reply.value == 5


def test_health_says_not_serving_after_close_server(blob: rp.WorkerHandle) -> None:
    with grpc.insecure_channel(blob.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with Blob.connect(blob) as conn:
            conn.close_server()  # no new connections: a load balancer must send none
            for service in ("", "tests.integration.workers.Blob"):
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
            assert conn.run(Blob.size, b"abc") == 3  # the open connection goes on
