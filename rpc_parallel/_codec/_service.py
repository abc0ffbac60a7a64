"""The codec of a worker type (its methods and its two init messages), and the cache of them."""

from __future__ import annotations

import dataclasses
import inspect
import threading
from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message

from .._errors import ProtocolError
from .._function import Function
from .._schema import MessageSpec, MethodSpec, ServiceSpec, file_spec, service_spec
from ._classes import message_classes
from ._compiler import Compiler
from ._messages import Value
from ._method import MethodCodec

__all__ = ("ServiceCodec", "codec_for")


class ServiceCodec:
    """The codecs of one worker type: its methods and its two init messages."""

    def __init__(self, spec: ServiceSpec, classes: Mapping[str, type[Message]],
                 messages: Mapping[str, MessageSpec] | None = None) -> None:
        """``classes`` are ``message_classes`` of the file declaring ``spec``; ``messages`` that
        file's message specs by name (default: looked up with ``file_spec``)."""
        if messages is None:
            messages = {m.name: m for m in file_spec(spec.py.__module__).messages}
        compiler = Compiler(classes, messages)
        self._compiler = compiler
        self._messages = messages
        self._message_defaults: dict[str, tuple[frozenset[str], Message]] | None = None
        self.spec = spec
        self._methods = {m.name: MethodCodec(m, spec.name, compiler, _param_kinds(spec.py, m))
                         for m in spec.methods}
        self._init = Value(compiler, spec.init, "arg", f"{spec.name}.init_worker_state", "argument")
        self._connection_init = Value(compiler, spec.connection_init, "arg",
                                       f"{spec.name}.init_connection_state", "argument")

    def __repr__(self) -> str:
        return f"<ServiceCodec {self.spec.name}>"

    def method(self, name: str) -> MethodCodec:
        """The codec of the function named ``name`` (``KeyError`` if there is none)."""
        return self._methods[name]

    @property
    def methods(self) -> Mapping[str, MethodCodec]:
        """Every method codec, by function name, in declaration order."""
        return self._methods

    def message_defaults(self) -> dict[str, tuple[frozenset[str], Message]]:
        """For each dataclass message of the file (by full proto name), the fields with a Python
        default and a message holding those defaults: what a plain-JSON caller may leave out."""
        if self._message_defaults is None:
            self._message_defaults = self._encode_message_defaults()
        return self._message_defaults

    def _encode_message_defaults(self) -> dict[str, tuple[frozenset[str], Message]]:
        prefix = f"{self.spec.package}." if self.spec.package else ""
        out: dict[str, tuple[frozenset[str], Message]] = {}
        for msg in self._messages.values():
            if msg.role != "dataclass" or msg.py is None:
                continue
            given = {f.name: f for f in dataclasses.fields(msg.py)}
            message = self._compiler.classes[msg.name]()
            names = set()
            for f in msg.fields:
                try:  # a default_factory runs here once: what a JSON caller leaving the field out gets
                    default = _default_of(given[f.name]) if f.name in given else _MISSING
                    if default is _MISSING:
                        continue
                    self._compiler.check(f.type)(default)
                    self._compiler.field(f)[0](message, default)
                except Exception:
                    continue  # a default the field cannot hold (e.g. a sentinel): the caller must give it
                names.add(f.name)
            if names:
                out[prefix + msg.name] = (frozenset(names), message)
        return out

    def encode_init(self, value: Any) -> bytes:
        """The ``init_worker_state`` argument message (type-checked)."""
        return self._init.encode(value)

    def decode_init(self, data: bytes) -> Any:
        return self._init.decode(data)

    def encode_connection_init(self, value: Any) -> bytes:
        """The ``init_connection_state`` argument message (type-checked)."""
        return self._connection_init.encode(value)

    def decode_connection_init(self, data: bytes) -> Any:
        return self._connection_init.decode(data)


_MISSING: Any = object()


def _default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return _MISSING


def _param_kinds(cls: type, method: MethodSpec) -> dict[str, inspect._ParameterKind]:
    """Parameter kinds (positional-only, keyword-only...) of a function's implementation."""
    f = getattr(cls, method.name, None)
    if not isinstance(f, Function):
        return {}
    try:
        params = inspect.signature(f.impl).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.kind for p in params}


_CODECS: dict[int, tuple[ServiceSpec, ServiceCodec]] = {}
_CODECS_LOCK = threading.Lock()


def codec_for(worker: type | ServiceSpec) -> ServiceCodec:
    """The (cached) codec of a worker class or of its ``ServiceSpec``."""
    spec = worker if isinstance(worker, ServiceSpec) else service_spec(worker)
    hit = _CODECS.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    with _CODECS_LOCK:
        hit = _CODECS.get(id(spec))
        if hit is not None and hit[0] is spec:
            return hit[1]
        fs = file_spec(spec.py.__module__)
        if fs.service(spec.name).fingerprint != spec.fingerprint:
            raise ProtocolError(f"worker type {spec.name} changed since its schema was built "
                                f"(fingerprint {spec.fingerprint} vs {fs.service(spec.name).fingerprint})")
        codec = ServiceCodec(spec, message_classes(fs), {m.name: m for m in fs.messages})
        _CODECS[id(spec)] = (spec, codec)
        return codec
