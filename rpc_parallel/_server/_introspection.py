"""The standard services every worker serves besides its own: gRPC health checking
(``grpc.health.v1.Health``, open to any caller, as load balancers expect) and server reflection
(``grpc.reflection.v1alpha.ServerReflection``, behind the token), so that grpcurl and generic
clients can list a worker's services and build its messages from the reflected descriptors."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc.aio
from google.protobuf import descriptor_pool
from grpc_health.v1 import _async as health_aio, health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from .._declaration import foreign_functions
from .._proto import control_pb2, errors_pb2
from .._schema import file_descriptor, file_spec
from ._core import WorkerCore

__all__ = ("HEALTH_SERVICE", "add_introspection")

HEALTH_SERVICE = health.SERVICE_NAME
_CONTROL_SERVICE = control_pb2.DESCRIPTOR.services_by_name["Control"].full_name


async def add_introspection(server: grpc.aio.Server, core: WorkerCore) -> None:
    """Serve health (``SERVING`` for the server and the worker type's service until
    ``close_server()`` or the server's stop, ``NOT_SERVING`` from then on) and reflection of
    the worker type's service, ``Control``, health and reflection itself on ``server``."""
    foreign = [f.foreign for f in foreign_functions(core.cls) if f.foreign is not None]
    services = [core.spec.full_name, _CONTROL_SERVICE, *sorted({m.service for m in foreign})]
    checks = health_aio.HealthServicer()
    for name in ("", *services):
        await checks.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    # close_server() or stop, from any thread: NOT_SERVING
    core.not_serving_hooks.append(lambda: asyncio.run_coroutine_threadsafe(checks.enter_graceful_shutdown(), core.loop))
    pool = descriptor_pool.DescriptorPool()  # a private one: the user's own _pb2 may fill the default
    added: set[str] = set()
    for module in (errors_pb2, control_pb2, health_pb2, reflection_pb2):
        _add_file(pool, module.DESCRIPTOR, added)
    pool.Add(file_descriptor(file_spec(core.cls.__module__)))
    for m in foreign:  # the .proto files of the existing services it implements, with their imports
        _add_file(pool, m.request.DESCRIPTOR.file, added)
    reflection.enable_server_reflection((*services, HEALTH_SERVICE, reflection.SERVICE_NAME), server, pool=pool)


def _add_file(pool: descriptor_pool.DescriptorPool, file: Any, added: set[str]) -> None:
    """Add ``file`` (a FileDescriptor) to ``pool`` after its dependencies, each once."""
    if file.name in added:
        return
    added.add(file.name)
    for dependency in file.dependencies:
        _add_file(pool, dependency, added)
    try:
        pool.AddSerializedFile(file.serialized_pb)
    except (TypeError, ValueError):  # already there under another file's name: reflection still finds it
        pass
