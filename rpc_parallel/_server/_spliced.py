"""The ``rpc_parallel.v1.Spliced`` service: rpc calls whose large ``bytes`` values travel unframed.

A value of a megabyte or more copied into one protobuf message costs a copy per side; sent as its
own gRPC message beside a ``SplicedHeader`` (control.proto), neither side copies it. ``Call`` is a
bidi stream (header, then each large value; the same back); ``One`` serves one large value as a
unary call: the value is the request, the header is in ``rpcpar-spliced-bin`` metadata, and the
reply is the result's large value (header in the same trailer) or its whole message.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from .._codec import joined, wire_size
from .._errors import ProtocolError
from .._grpc_errors import CallFailed, Kind as ErrKind, abort
from .._proto import control_pb2
from .._protocol import SPLICED_HEADER_MAX, SPLICED_KEY, SPLICED_SERVICE
from ._core import Context, WorkerCore, connection_id

__all__ = ("spliced_handler",)


def spliced_handler(core: WorkerCore) -> grpc.GenericRpcHandler[Any, Any]:
    """The handler of the Spliced service on ``core``."""

    async def call(requests: AsyncIterator[bytes], context: Context) -> AsyncIterator[bytes]:
        try:
            header = control_pb2.SplicedHeader.FromString(await anext(requests))
            found = {number: await anext(requests) for number in header.fields}
        except (StopAsyncIteration, DecodeError) as exc:
            await abort(context, core.info(ProtocolError(f"malformed spliced call: {exc!r}"), ErrKind.BAD_REQUEST))
        rest, taken = await _run(core, header, found, context)
        yield control_pb2.SplicedHeader(message=rest, fields=[number for number, _ in taken]).SerializeToString()
        for _, value in taken:
            yield value

    async def one(request: bytes, context: Context) -> bytes:
        raw = next((v for k, v in (context.invocation_metadata() or ()) if k == SPLICED_KEY), b"")
        try:
            header = control_pb2.SplicedHeader.FromString(raw if isinstance(raw, bytes) else b"")
            if len(header.fields) != 1:
                raise ValueError(f"{len(header.fields)} large values for Spliced/One")
        except (DecodeError, ValueError) as exc:
            await abort(context, core.info(ProtocolError(f"malformed spliced call: {exc!r}"), ErrKind.BAD_REQUEST))
        rest, taken = await _run(core, header, {header.fields[0]: request}, context)
        if len(taken) == 1:
            reply = control_pb2.SplicedHeader(message=rest, fields=[taken[0][0]]).SerializeToString()
            if len(reply) <= SPLICED_HEADER_MAX:
                context.set_trailing_metadata(((SPLICED_KEY, reply),))
                return taken[0][1]
        context.set_trailing_metadata(((SPLICED_KEY, b""),))
        return joined(rest, taken)

    return grpc.method_handlers_generic_handler(SPLICED_SERVICE, {
        "Call": grpc.stream_stream_rpc_method_handler(call), "One": grpc.unary_unary_rpc_method_handler(one)})


async def _run(core: WorkerCore, header: control_pb2.SplicedHeader, found: dict[int, bytes],
               context: Context) -> tuple[bytes, list[tuple[int, bytes]]]:
    """Run the rpc of a spliced call; its result as a message and large values."""
    try:
        codec, impl = core.rpc(header.method)
        state = core.state_of(connection_id(context))
        size, limit = wire_size(header.message, list(found.items())), core.settings.max_message_size
        if size > limit:  # what gRPC refuses for a unary request (rpc_parallel's clients check first)
            raise CallFailed(core.info(ValueError(f"request of {size} bytes exceeds max_message_size {limit}"),
                                       ErrKind.TOO_LARGE, size=size, limit=limit))
        return await core.run_rpc_async(impl, state, functools.partial(codec.decode_request_parts, header.message),
                                        found, codec.encode_result_parts, _parts_size)
    except CallFailed as failed:
        await abort(context, failed.info)


def _parts_size(parts: tuple[bytes, list[tuple[int, bytes]]]) -> int:
    return wire_size(*parts)
