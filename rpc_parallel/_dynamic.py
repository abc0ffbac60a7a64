"""Calling a worker without its class (``rpcpar call``): the schema comes from the worker itself.

This module owns two things:

- the conversion between *plain JSON* (what a Python caller would pass: numbers for ints, enum
  member names, lists, objects and ``null`` for containers and optionals) and protobuf messages,
  driven by message descriptors alone (``to_message``, ``to_plain``);
- ``DynamicClient``: ``Control/Describe`` for the worker type's ``FileDescriptorProto``, message
  classes built from it, one ``Control/OpenConnection``, and calls of every function kind.

The generated wrapper messages that box nested containers and optionals (``IntList``,
``StrUnitMap``, ``IntOptional``...) are recognised by their structure, a single ``items``/``value``
field whose type spells the message's name, and travel as the plain value they box.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message

from ._errors import DynamicCallError, WorkerConnectionError
from ._grpc_errors import map_rpc_error
from ._handle import WorkerHandle
from ._inorder import SEQ_KEY
from ._proto import control_pb2, control_pb2_grpc
from ._schema import upper_snake
from ._server import CONN_KEY, TOKEN_KEY
from ._settings import grpc_options

__all__ = ("NOT_GIVEN", "DynamicCallError", "DynamicClient", "to_message",
           "to_plain")

# protobuf's stubs type descriptors as unions of its pure-Python and upb classes with optional
# message_type/enum_type; this module checks those at run time, so they are typed loosely here.
Descriptor = Any
FieldDescriptor = Any
EnumDescriptor = Any
_FD = descriptor_pb2.FieldDescriptorProto
_BATCH = 1024  # reverse_pipe updates per request message
NOT_GIVEN: Any = object()  # no argument at all, unlike JSON null
_SCALAR_LABELS: dict[int, tuple[str, ...]] = {
    _FD.TYPE_SINT64: ("Int",), _FD.TYPE_DOUBLE: ("Float",), _FD.TYPE_BOOL: ("Bool",),
    _FD.TYPE_STRING: ("Str",), _FD.TYPE_BYTES: ("Bytes", "Pickled"),
}


# -- plain JSON <-> messages ---------------------------------------------------------------------


def _is_map(f: FieldDescriptor) -> bool:
    return f.message_type is not None and f.message_type.GetOptions().map_entry


def _base_labels(f: FieldDescriptor) -> tuple[str, ...]:
    """How the wrapper-naming scheme spells the element type of field ``f``."""
    if f.message_type is not None:
        return (f.message_type.name,)
    if f.enum_type is not None:
        return (f.enum_type.name,)
    return _SCALAR_LABELS.get(f.type, ())


def _wrapped_field(d: Descriptor) -> FieldDescriptor | None:
    """The single field of a generated wrapper message, or None for any other message."""
    if len(d.fields) != 1:
        return None
    (f,) = d.fields
    if f.number != 1:
        return None
    if f.name == "items" and _is_map(f):
        key, value = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
        names = {k + v + "Map" for k in _base_labels(key) for v in _base_labels(value)}
    elif f.name == "items" and f.is_repeated:
        names = {b + s for b in _base_labels(f) for s in ("List", "Tuple")}
    elif f.name == "value" and not f.is_repeated and f.has_presence:
        names = {b + "Optional" for b in _base_labels(f)}
    else:
        return None
    return f if d.name in names else None


def _enum_prefix(e: EnumDescriptor) -> str:
    return upper_snake(e.name) + "_"


def to_plain(m: Message) -> Any:
    """The plain JSON value of message ``m``: an object of its fields, or the value a wrapper boxes."""
    d = m.DESCRIPTOR
    wrapped = _wrapped_field(d)
    if wrapped is not None:
        return _plain_field(m, wrapped)
    return {f.name: _plain_field(m, f) for f in d.fields}


def _plain_field(m: Message, f: FieldDescriptor) -> Any:
    value = getattr(m, f.name)
    if _is_map(f):
        item = f.message_type.fields_by_name["value"]
        return {k: _plain_element(v, item) for k, v in value.items()}
    if f.is_repeated:
        return [_plain_element(v, f) for v in value]
    if f.has_presence and not m.HasField(f.name):
        return None
    return _plain_element(value, f)


def _plain_element(v: Any, f: FieldDescriptor) -> Any:
    if f.type == _FD.TYPE_MESSAGE:
        return to_plain(v)
    if f.type == _FD.TYPE_ENUM:
        found = f.enum_type.values_by_number.get(v)
        return found.name.removeprefix(_enum_prefix(f.enum_type)) if found is not None else v
    if f.type == _FD.TYPE_BYTES:
        return base64.b64encode(v).decode()
    return v


def to_message(cls: type[Message], fields: dict[str, Any], where: str) -> Message:
    """A ``cls`` message from plain JSON ``fields`` (every field of ``cls``, by name).

    Plain values are checked against the schema; ``where`` names the value in errors.
    """
    d = cls.DESCRIPTOR
    data = _json_object(fields, d, where, partial=True)
    message = cls()
    try:
        json_format.ParseDict(data, message)
    except json_format.ParseError as exc:
        raise DynamicCallError(f"{where}: {exc}") from None
    return message


def _json_message(value: Any, d: Descriptor, where: str) -> Any:
    wrapped = _wrapped_field(d)
    if wrapped is not None:
        out = _json_field(value, wrapped, where)
        return {} if out is None else {wrapped.name: out}
    if not isinstance(value, dict):
        raise DynamicCallError(f"{where}: expected a JSON object with fields {_names(d)}, got {_show(value)}")
    return _json_object(value, d, where, partial=False)


def _json_object(value: dict[str, Any], d: Descriptor, where: str, *, partial: bool) -> dict[str, Any]:
    unknown = [k for k in value if k not in d.fields_by_name]
    if unknown:
        raise DynamicCallError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; "
                               f"{d.name} has {_names(d)}")
    missing = [f.name for f in d.fields if f.name not in value]
    if missing and not partial:
        raise DynamicCallError(f"{where}: missing field(s) {', '.join(map(repr, missing))} of {d.name} "
                               "(rpcpar does not know Python defaults: give every field)")
    out: dict[str, Any] = {}
    for key, v in value.items():
        converted = _json_field(v, d.fields_by_name[key], f"{where}.{key}")
        if converted is not None:
            out[key] = converted
    return out


def _json_field(value: Any, f: FieldDescriptor, where: str) -> Any:
    """The proto-JSON form of the plain ``value`` of field ``f`` (None: leave the field unset)."""
    if _is_map(f):
        if not isinstance(value, dict):
            raise DynamicCallError(f"{where}: expected a JSON object (a dict), got {_show(value)}")
        item = f.message_type.fields_by_name["value"]
        return {k: _json_element(v, item, f"{where}[{k!r}]") for k, v in value.items()}
    if f.is_repeated:
        if not isinstance(value, list):
            raise DynamicCallError(f"{where}: expected a JSON list, got {_show(value)}")
        return [_json_element(v, f, f"{where}[{i}]") for i, v in enumerate(value)]
    if value is None:
        if f.has_presence:
            return None
        raise DynamicCallError(f"{where}: null is not allowed here")
    return _json_element(value, f, where)


def _json_element(value: Any, f: FieldDescriptor, where: str) -> Any:
    if f.type == _FD.TYPE_MESSAGE:
        return _json_message(value, f.message_type, where)
    if f.type == _FD.TYPE_ENUM:
        return _enum_value(value, f.enum_type, where)
    if value is None:
        raise DynamicCallError(f"{where}: null is not allowed here")
    return value  # scalars: json_format checks them


def _enum_value(value: Any, e: EnumDescriptor, where: str) -> str:
    prefix = _enum_prefix(e)
    if isinstance(value, int) and not isinstance(value, bool) and value in e.values_by_number:
        return str(e.values_by_number[value].name)
    if isinstance(value, str):
        wanted = value.upper()
        for v in e.values:
            if wanted in (v.name, v.name.removeprefix(prefix)):
                return str(v.name)
    choices = ", ".join(v.name.removeprefix(prefix) for v in e.values)
    raise DynamicCallError(f"{where}: {_show(value)} is not a member of enum {e.name} ({choices})")


def _names(d: Descriptor) -> str:
    return ", ".join(repr(f.name) for f in d.fields) or "no fields"


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- the client ------------------------------------------------------------------------------------


class _Function:
    """One function of the described worker type."""

    def __init__(self, name: str, kind: str, path: str, request: type[Message], response: type[Message],
                 updates_param: str = "", defaulted: Iterable[str] = (), defaults: bytes = b"") -> None:
        self.name = name
        self.kind = kind
        self.path = path
        self.request = request
        self.response = response
        fields: list[FieldDescriptor] = list(request.DESCRIPTOR.fields)
        self.updates: FieldDescriptor | None = None
        if kind == "reverse_pipe" and updates_param:
            self.updates = request.DESCRIPTOR.fields_by_name.get(updates_param)
        elif kind == "reverse_pipe":  # a worker of an older rpc_parallel: the one list parameter
            repeated = [f for f in fields if f.is_repeated and not _is_map(f)]
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
        message = to_message(self.request, named, where)
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
            message = to_message(self.request, {self.updates.name: items}, f"{self.name}() updates")
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
        self._label = f"worker {handle.name or handle.worker_id}"
        self._token_md: tuple[tuple[str, str], ...] = ((TOKEN_KEY, handle.token),)
        self._channel = grpc.insecure_channel(handle.address, options=grpc_options(handle.settings, server=False))
        self._session: Any = None
        try:
            control = control_pb2_grpc.ControlStub(self._channel)
            try:
                reply = control.Describe(control_pb2.DescribeRequest(worker_id=handle.worker_id), metadata=self._token_md,
                                         timeout=handle.settings.handshake_timeout)
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE:
                    raise WorkerConnectionError(f"could not reach {self._label} at {handle.address}: "
                                                f"{exc.details()}") from None
                raise map_rpc_error(exc, worker=self._label) from None
            self.functions = self._load(reply)
            self._open(control, connection_arg)
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
        functions: dict[str, _Function] = {}
        for f in reply.functions:
            method = service.methods_by_name[f.method]
            functions[f.name] = _Function(
                f.name, f.kind, f"/{service.full_name}/{method.name}",
                message_factory.GetMessageClass(method.input_type),
                message_factory.GetMessageClass(method.output_type), f.updates_param, f.defaulted, f.defaults)
        return functions

    def _open(self, control: control_pb2_grpc.ControlStub, connection_arg: Any) -> None:
        init = self._pool.FindMessageTypeByName(f"{self._service.full_name}ConnectionInit")
        cls = message_factory.GetMessageClass(init)
        arg = b""  # not given: the worker decodes the zero value of its type ("", 0, None, ...)
        if connection_arg is not NOT_GIVEN:
            if "arg" in init.fields_by_name:
                arg = to_message(cls, {"arg": connection_arg}, "--connection-arg").SerializeToString()
            elif connection_arg is not None:
                raise DynamicCallError(f"{self._service.name}.init_connection_state takes no argument")
        request = control_pb2.OpenConnectionRequest(worker_id=self.handle.worker_id,
                                                    fingerprint=self.handle.fingerprint, arg=arg)
        self._session = control.OpenConnection(request, metadata=self._token_md)
        try:
            event = next(self._session)
        except grpc.RpcError as exc:
            raise map_rpc_error(exc, worker=self._label) from None
        except StopIteration:
            raise WorkerConnectionError(f"{self._label} closed the connection while opening it") from None
        self._md = (*self._token_md, (CONN_KEY, event.connection_id))
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
        try:
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
        except grpc.RpcError as exc:
            raise map_rpc_error(exc, worker=self._label) from None

    def _value(self, f: _Function, data: bytes) -> Any:
        response = f.response.FromString(data)
        if "value" not in response.DESCRIPTOR.fields_by_name:
            return None
        return _plain_field(response, response.DESCRIPTOR.fields_by_name["value"])

    def _stream(self, f: _Function, call: Any) -> Iterator[Any]:
        fields = f.response.DESCRIPTOR.fields_by_name
        if f.kind == "state":
            first = f.response.FromString(next(call))
            yield _plain_field(first, fields["state"]) if "state" in fields else None
            key = "updates"
        else:
            key = "items"
        for data in call:
            yield from _plain_field(f.response.FromString(data), fields[key])

    def _reverse_pipe(self, f: _Function, request: bytes, lines: Iterable[str]) -> Any:
        if f.updates is None:
            raise DynamicCallError(f"{f.name}(): cannot tell which parameter takes the updates")
        failed: list[BaseException] = []
        started = threading.Event()
        holder: list[Any] = []

        def requests() -> Iterator[bytes]:
            yield request
            try:
                for batch, first_line in _batches(lines):
                    yield f.updates_message(batch, first_line)
            except (DynamicCallError, OSError, UnicodeDecodeError) as exc:
                failed.append(exc)  # raising here would make grpc log it; cancel the call instead
                started.wait()
                holder[0].cancel()

        future = self._channel.stream_unary(f.path, None, None).future(requests(), metadata=self._md)
        holder.append(future)
        started.set()
        try:
            data = future.result()
        except grpc.FutureCancelledError:
            if failed:
                raise failed[0] from None
            raise
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
