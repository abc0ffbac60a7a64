"""Calling a worker without its class (``rpcpar call``): the schema comes from the worker itself.

``DynamicClient``: ``Control/Describe`` for the worker type's ``FileDescriptorProto``, message
classes built from it, one ``Control/OpenConnection``, and calls of every function kind. Arguments
and results travel as plain JSON, converted by the codec (``to_message``, ``to_plain``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from .._codec import Defaults, FieldDescriptor, is_map, plain_field, to_message
from .._errors import DynamicCallError
from .._grpc_errors import ErrorBoundary
from .._handle import WorkerHandle
from .._proto import control_pb2, control_pb2_grpc
from .._protocol import SEQ_KEY, TOKEN_KEY
from .._transport import open_channel
from ._session import call_metadata, open_session, worker_label
from ._upload import upload

__all__ = ("NOT_GIVEN", "DynamicClient")

_BATCH = 1024  # reverse_pipe updates per request message
NOT_GIVEN: Any = object()  # no argument at all, unlike JSON null


# -- the client ------------------------------------------------------------------------------------


class _Function:
    """One function of the described worker type."""

    def __init__(self, name: str, kind: str, path: str, request: type[Message], response: type[Message],
                 updates_param: str = "", defaulted: Iterable[str] = (), defaults: bytes = b"",
                 message_defaults: Defaults | None = None) -> None:
        self.name = name
        self.message_defaults = message_defaults
        self.kind = kind
        self.path = path
        self.request = request
        self.response = response
        fields: list[FieldDescriptor] = list(request.DESCRIPTOR.fields)
        self.updates: FieldDescriptor | None = None
        if kind == "reverse_pipe" and updates_param:
            self.updates = request.DESCRIPTOR.fields_by_name.get(updates_param)
        elif kind == "reverse_pipe":  # a worker of an older rpc_parallel: the one list parameter
            repeated = [f for f in fields if f.is_repeated and not is_map(f)]
            self.updates = repeated[0] if len(repeated) == 1 else next(
                (f for f in repeated if f.name == "updates"), None)
        self.params = [f.name for f in fields if f is not self.updates]
        self.defaulted = set(defaulted)
        self.defaults = request.FromString(defaults)

    def request_message(self, arg: Any) -> Message:
        """The first request message from the JSON argument (see ``DynamicClient.call``)."""
        where = f"{self.name}()"
        if arg is NOT_GIVEN:
            named: dict[str, Any] = {}
        elif isinstance(arg, dict):
            named = arg
        elif isinstance(arg, list):
            if len(arg) > len(self.params):
                raise DynamicCallError(f"{where} takes {len(self.params)} argument(s) ({', '.join(self.params)}), "
                                       f"got {len(arg)}")
            named = dict(zip(self.params, arg, strict=False))
        elif self.params and all(p in self.defaulted for p in self.params[1:]):
            named = {self.params[0]: arg}  # one value: the first parameter, as in Python
        else:
            raise DynamicCallError(f"{where} takes {len(self.params)} arguments ({', '.join(self.params) or 'none'}): "
                                   "pass a JSON object of them by name, or a JSON list")
        if self.updates is not None and self.updates.name in named:
            raise DynamicCallError(f"{where}: the updates '{self.updates.name}' are read from stdin, one JSON "
                                   "value per line")
        unknown = [k for k in named if k not in self.params]
        if unknown:
            raise DynamicCallError(f"{where}: unknown argument(s) {', '.join(map(repr, unknown))}; "
                                   f"it takes {', '.join(map(repr, self.params)) or 'none'}")
        missing = [p for p in self.params if p not in named and p not in self.defaulted]
        if missing:
            raise DynamicCallError(f"{where}: missing argument(s) {', '.join(map(repr, missing))}")
        message = to_message(self.request, named, where, self.message_defaults)
        defaults = self.request()
        defaults.CopyFrom(self.defaults)
        for name in self.params:
            if name in named:
                defaults.ClearField(name)
        message.MergeFrom(defaults)  # the Python defaults of the parameters not given
        return message

    def updates_message(self, items: list[Any], first_line: int) -> bytes:
        assert self.updates is not None
        try:
            message = to_message(self.request, {self.updates.name: items}, f"{self.name}() updates",
                                 self.message_defaults)
        except DynamicCallError as exc:
            raise DynamicCallError(f"{exc} (stdin lines {first_line}-{first_line + len(items) - 1})") from None
        return message.SerializeToString()


class DynamicClient:
    """A connection to the worker behind ``handle``, for functions named at run time.

    Opening asks the worker for its schema (``Control/Describe``) and opens a connection whose
    ``init_connection_state`` gets ``connection_arg`` (plain JSON; when not given, the zero value
    of its type: ``""``, ``0``, ``None``...). ``call`` runs a function. Close it with ``close()``
    or a ``with`` block.
    """

    def __init__(self, handle: WorkerHandle, connection_arg: Any = NOT_GIVEN) -> None:
        self.handle = handle
        label = worker_label(handle)
        self._errors = ErrorBoundary(label)
        self._channel = open_channel(handle.address, handle.settings, ca=handle.ca)
        self._session: Any = None
        try:
            with ErrorBoundary(label, reaching=handle.address):  # the first call: can it be reached?
                reply = control_pb2_grpc.ControlStub(self._channel).Describe(
                    control_pb2.DescribeRequest(worker_id=handle.worker_id), metadata=((TOKEN_KEY, handle.token),),
                    timeout=handle.settings.handshake_timeout)
            self.functions = self._load(reply)
            self._open(connection_arg)
        except BaseException:
            self.close()
            raise

    def _load(self, reply: control_pb2.DescribeReply) -> dict[str, _Function]:
        fdp = descriptor_pb2.FileDescriptorProto.FromString(reply.file_descriptor)
        pool = descriptor_pool.DescriptorPool()
        pool.Add(fdp)
        self._pool = pool
        service = pool.FindServiceByName(reply.service)
        self._service = service
        self._defaults: Defaults = {
            d.message: (frozenset(d.defaulted),
                        message_factory.GetMessageClass(pool.FindMessageTypeByName(d.message)).FromString(d.defaults))
            for d in reply.message_defaults}
        functions: dict[str, _Function] = {}
        for f in reply.functions:
            method = service.methods_by_name[f.method]
            functions[f.name] = _Function(
                f.name, f.kind, f"/{service.full_name}/{method.name}",
                message_factory.GetMessageClass(method.input_type),
                message_factory.GetMessageClass(method.output_type), f.updates_param, f.defaulted, f.defaults,
                self._defaults)
        return functions

    def _open(self, connection_arg: Any) -> None:
        init = self._pool.FindMessageTypeByName(f"{self._service.full_name}ConnectionInit")
        cls = message_factory.GetMessageClass(init)
        arg = b""  # not given: the worker decodes the zero value of its type ("", 0, None, ...)
        if connection_arg is not NOT_GIVEN:
            if "arg" in init.fields_by_name:
                arg = to_message(cls, {"arg": connection_arg}, "--connection-arg", self._defaults).SerializeToString()
            elif connection_arg is not None:
                raise DynamicCallError(f"{self._service.name}.init_connection_state takes no argument")
        request = control_pb2.OpenConnectionRequest(worker_id=self.handle.worker_id,
                                                    fingerprint=self.handle.fingerprint, arg=arg)
        self._session, connection_id = open_session(self._channel, request, self.handle.token, self._errors)
        self._md = call_metadata(self.handle.token, connection_id)
        self._one_way_seq = itertools.count()  # numbered, so they run in order (_inorder)

    def function(self, name: str) -> _Function:
        """The function called ``name`` (``DynamicCallError`` naming the others if there is none)."""
        try:
            return self.functions[name]
        except KeyError:
            raise DynamicCallError(f"{self._service.name} has no function {name!r}; it has: "
                                   f"{', '.join(self.functions) or 'none'}") from None

    def call(self, name: str, arg: Any = NOT_GIVEN, *, updates: Iterable[str] = ()) -> Iterator[Any]:
        """Run function ``name``; yield what it produces, as plain JSON values.

        ``arg`` is a JSON object of the arguments by name, a JSON list of them in order, or (for a
        function of one parameter) that argument itself; ``NOT_GIVEN`` means no argument at all.
        An rpc or reverse_pipe yields its result; a pipe or direct_pipe its items; a state its
        state, then its updates; a one_way nothing. A reverse_pipe's updates are ``updates``, one
        JSON text each (blank ones skipped).
        """
        f = self.function(name)
        request = f.request_message(arg).SerializeToString()
        with self._errors:
            if f.kind == "rpc":
                yield self._value(f, self._channel.unary_unary(f.path, None, None)(request, metadata=self._md))
            elif f.kind == "one_way":
                self._channel.unary_unary(f.path, None, None)(
                    request, metadata=(*self._md, (SEQ_KEY, str(next(self._one_way_seq)))))
            elif f.kind == "reverse_pipe":
                yield self._reverse_pipe(f, request, updates)
            else:
                call: Any = self._channel.unary_stream(f.path, None, None)(request, metadata=self._md)
                try:
                    yield from self._stream(f, call)
                finally:
                    call.cancel()

    def _value(self, f: _Function, data: bytes) -> Any:
        response = f.response.FromString(data)
        if "value" not in response.DESCRIPTOR.fields_by_name:
            return None
        return plain_field(response, response.DESCRIPTOR.fields_by_name["value"])

    def _stream(self, f: _Function, call: Any) -> Iterator[Any]:
        fields = f.response.DESCRIPTOR.fields_by_name
        if f.kind == "state":
            first = f.response.FromString(next(call))
            yield plain_field(first, fields["state"]) if "state" in fields else None
            key = "updates"
        else:
            key = "items"
        for data in call:
            yield from plain_field(f.response.FromString(data), fields[key])

    def _reverse_pipe(self, f: _Function, request: bytes, lines: Iterable[str]) -> Any:
        if f.updates is None:
            raise DynamicCallError(f"{f.name}(): cannot tell which parameter takes the updates")

        def requests() -> Iterator[bytes]:
            yield request
            for batch, first_line in _batches(lines):
                yield f.updates_message(batch, first_line)

        data = upload(self._channel.stream_unary(f.path, None, None), requests(), self._md, self._errors)
        return self._value(f, data)

    def close(self) -> None:
        """Close the connection and the channel (idempotent)."""
        if self._session is not None:
            self._session.cancel()
        self._channel.close()

    def __enter__(self) -> DynamicClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _batches(lines: Iterable[str]) -> Iterator[tuple[list[Any], int]]:
    """Batches of the JSON values of ``lines`` (blank ones skipped), with each batch's first line number."""
    batch: list[Any] = []
    start = 1
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise DynamicCallError(f"stdin line {number} is not JSON: {exc}: {line.strip()[:60]!r}") from None
        if not batch:
            start = number
        batch.append(value)
        if len(batch) >= _BATCH:
            yield batch, start
            batch = []
    if batch:
        yield batch, start
