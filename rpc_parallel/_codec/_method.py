"""The codec of one worker function: argument binding and deep type checks at the call site, and
the bytes of its request, response and stream messages, by function kind."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from typing import Any

from google.protobuf.message import Message

from .._errors import ProtocolError
from .._function import Kind
from .._schema import MessageRef, MessageSpec, MethodSpec, OptionalT
from ._checks import Bad, check_nothing
from ._compiler import Compiler
from ._messages import Batch, Part, Value, decoder, encode_error, read_none, reader
from ._splice import Splice, is_plain_bytes, joined, merge_values, spliced_decoder

__all__ = ("MethodCodec",)

_MISSING: Any = object()


class MethodCodec:
    """Binds, checks, encodes and decodes the messages of one worker function.

    Requests carry the parameters in declaration order. The response depends on the kind: rpc and
    reverse_pipe return ``value``; one_way returns nothing; pipe and direct_pipe stream batches of
    ``items``; state streams its ``state`` first (alone), then non-empty batches of ``updates``.
    """

    def __init__(self, spec: MethodSpec, service: str, compiler: Compiler,
                 kinds: Mapping[str, inspect._ParameterKind] | None = None) -> None:
        self.spec = spec
        self.qualname = qn = f"{service}.{spec.name}"
        kind = spec.kind
        request = spec.request
        self._request_cls = compiler.classes[request.name]
        self._request_what = f"{qn} {request.name}"
        fields = {f.name: f for f in request.fields}
        self._params = spec.params
        self._parts = tuple(Part(compiler, fields[p.name], f"argument '{p.name}'", p.name) for p in spec.params)
        self._index = {p.name: i for i, p in enumerate(spec.params)}
        self._updates_index = self._index[spec.updates_param] if spec.updates_param is not None else -1
        self._encoded = tuple((i, p) for i, p in enumerate(self._parts) if i != self._updates_index)
        self._checked = tuple((i, p.check) for i, p in enumerate(self._parts)
                              if i != self._updates_index and p.check is not check_nothing)

        kinds = kinds or {}
        P = inspect.Parameter
        self._kinds = tuple(kinds.get(p.name, P.POSITIONAL_OR_KEYWORD) for p in spec.params)
        self._max_positional = sum(k is not P.KEYWORD_ONLY for k in self._kinds)
        self._simple = all(k is P.POSITIONAL_OR_KEYWORD for k in self._kinds)

        self._decode_request = decoder(self._request_cls, reader(self._parts), self._request_what)
        big = [(i, fields[p.name].number) for i, p in enumerate(spec.params)
               if i != self._updates_index and is_plain_bytes(fields[p.name].type)]
        self._splice = Splice(big) if big else None
        if self._splice is not None:
            self._decode_request = spliced_decoder(self._splice, self._decode_request, merge_values)

        # kind-specific operations; those that do not apply refuse with a TypeError
        self._encode_updates: Callable[[Sequence[Any]], bytes] = self._refuse("encode_updates")
        self._decode_updates: Callable[[bytes], list[Any]] = self._refuse("decode_updates")
        self._encode_result: Callable[[Any], bytes] = self._refuse("encode_result")
        self._decode_result: Callable[[bytes], Any] = self._refuse("decode_result")
        self._encode_items: Callable[[Sequence[Any]], bytes] = self._refuse("encode_items")
        self._decode_items: Callable[[bytes], list[Any]] = self._refuse("decode_items")
        self._encode_state: Callable[[Any], bytes] = self._refuse("encode_state")
        self._encode_updates_batch: Callable[[Sequence[Any]], bytes] = self._refuse("encode_updates_batch")
        self._decode_state: Callable[[bytes], tuple[bool, Any, list[Any]]] = self._refuse("decode_state_message")
        self._updates_elem = ""
        if spec.updates_param is not None:
            updates = Batch(compiler, request, spec.updates_param, qn, f"item of argument '{spec.updates_param}'")
            self._encode_updates, self._decode_updates = updates.encode, updates.decode
            self._updates_elem = updates.declared
        response = spec.response
        self._result: Value | None = None
        if kind in (Kind.RPC, Kind.REVERSE_PIPE, Kind.ONE_WAY):
            result = self._result = Value(compiler, response, "value", qn, "result")
            self._encode_result, self._decode_result = result.encode, result.decode
        elif kind in (Kind.PIPE, Kind.DIRECT_PIPE):
            items = Batch(compiler, response, "items", qn, "item")
            self._encode_items, self._decode_items = items.encode, items.decode
        else:
            state = Value(compiler, response, "state", qn, "state")
            batch = Batch(compiler, response, "updates", qn, "update")
            self._encode_state, self._encode_updates_batch = state.encode, batch.encode
            self._decode_state = decoder(state.cls, _state_reader(response, state, batch), state.what)

    def __repr__(self) -> str:
        return f"<MethodCodec {self.qualname} ({self.spec.kind.value})>"

    # requests ---------------------------------------------------------------------------------

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        """Bind a call's arguments to the parameters (Python's rules, defaults filled) and
        type-check each value deeply: ``TypeError`` (``OverflowError`` for an int beyond sint64)
        naming the function and parameter. A reverse pipe's updates iterable is left in place."""
        if not kwargs and self._simple and len(args) == len(self._params):
            values = list(args)
        else:
            values = self._bind_slow(args, kwargs)
        i = 0
        try:
            for i, check in self._checked:
                check(values[i])
        except Bad as e:
            p = self._parts[i]
            raise e.error(self.qualname, p.label, p.root, p.declared) from None
        if self._updates_index >= 0:
            v = values[self._updates_index]
            if not isinstance(v, Iterable | AsyncIterable) and not callable(v):
                name = self._params[self._updates_index].name
                raise TypeError(f"{self.qualname}() argument '{name}' must be an iterable of "
                                f"{self._updates_elem}, or a function writing them to an rp.DirectWriter, "
                                f"got {type(v).__name__}")
        return values

    def _bind_slow(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        P = inspect.Parameter
        fn = self.qualname
        params = self._params
        n = len(params)
        if len(args) > self._max_positional:
            required = sum(1 for p, k in zip(params, self._kinds, strict=True)
                           if k is not P.KEYWORD_ONLY and not p.has_default)
            most = self._max_positional
            takes = f"{most}" if required == most else f"from {required} to {most}"
            plural = "" if takes == "1" else "s"
            were = "was" if len(args) == 1 else "were"
            raise TypeError(f"{fn}() takes {takes} positional argument{plural} but {len(args)} {were} given")
        values: list[Any] = [*args, *([_MISSING] * (n - len(args)))]
        positional_only: list[str] = []
        for name, v in kwargs.items():
            i = self._index.get(name)
            if i is None:
                raise TypeError(f"{fn}() got an unexpected keyword argument '{name}'")
            if self._kinds[i] is P.POSITIONAL_ONLY:
                positional_only.append(name)
                continue
            if values[i] is not _MISSING:
                raise TypeError(f"{fn}() got multiple values for argument '{name}'")
            values[i] = v
        if positional_only:
            raise TypeError(f"{fn}() got some positional-only arguments passed as keyword arguments: "
                            f"'{', '.join(positional_only)}'")
        missing: list[str] = []
        missing_kw: list[str] = []
        for i, p in enumerate(params):
            if values[i] is _MISSING:
                if p.has_default:
                    values[i] = p.default
                else:
                    (missing_kw if self._kinds[i] is P.KEYWORD_ONLY else missing).append(p.name)
        for names, what in ((missing, "positional"), (missing_kw, "keyword-only")):
            if names:
                raise TypeError(f"{fn}() missing {len(names)} required {what} argument"
                                f"{'' if len(names) == 1 else 's'}: {_enumerate(names)}")
        return values

    def encode_request(self, values: Sequence[Any]) -> bytes:
        """The request message for bound ``values`` (one per parameter, as ``bind`` returns them;
        a reverse pipe's updates slot is ignored: its items go in ``encode_updates`` batches)."""
        rest, taken = self.encode_request_parts(values)
        return joined(rest, taken)

    def encode_request_parts(self, values: Sequence[Any]) -> tuple[bytes, list[tuple[int, bytes]]]:
        """``encode_request(values)`` as a message and the large ``bytes`` values taken out of it
        (by field number), which can travel unframed beside it."""
        if len(values) != len(self._parts):
            raise ValueError(f"{self.qualname}: expected {len(self._parts)} values, got {len(values)}")
        taken = self._splice.take(values) if self._splice is not None else None
        large: list[tuple[int, bytes]] = []
        if taken is not None:
            values, large = taken
        m = self._request_cls()
        p: Part | None = None
        try:
            for i, p in self._encoded:
                p.put(m, values[i])
        except Exception as exc:
            assert p is not None
            raise encode_error(self.qualname, p.label, exc) from exc
        return m.SerializeToString(), large

    def decode_request_parts(self, rest: bytes, found: Mapping[int, bytes]) -> list[Any]:
        """The parameter values of ``encode_request_parts``'s message and large values."""
        values = self._decode_request(rest)
        if found:
            if self._splice is None or not set(found) <= set(self._splice.numbers):
                raise ProtocolError(f"{self._request_what}: no large bytes fields {sorted(found)}")
            self._splice.put_back(values, found)
        return values

    def encode_defaults(self) -> tuple[list[str], bytes]:
        """The parameters with a Python default, and a request message holding only those defaults
        (for dynamic clients, which do not know them)."""
        m = self._request_cls()
        names = []
        for i, p in self._encoded:
            param = self._params[i]
            if param.has_default:
                try:
                    p.put(m, param.default)
                except Exception:
                    continue  # a default the field cannot hold (e.g. a sentinel): the caller must pass it
                names.append(param.name)
        return names, m.SerializeToString()

    def decode_request(self, data: bytes) -> list[Any]:
        """The parameter values of a request (a reverse pipe's updates slot: the list of updates
        this message carries, usually empty)."""
        return self._decode_request(data)

    def encode_updates(self, items: Sequence[Any]) -> bytes:
        """A reverse pipe's request message carrying only a batch of updates (type-checked)."""
        return self._encode_updates(items)

    def decode_updates(self, data: bytes) -> list[Any]:
        """The updates carried by a reverse pipe's later request message."""
        return self._decode_updates(data)

    # responses --------------------------------------------------------------------------------

    def encode_result(self, value: Any) -> bytes:
        """The response of an rpc or reverse_pipe (type-checked), or of a one_way (``None``)."""
        return self._encode_result(value)

    def decode_result(self, data: bytes) -> Any:
        """The result carried by an rpc/reverse_pipe/one_way response."""
        return self._decode_result(data)

    def encode_result_parts(self, value: Any) -> tuple[bytes, list[tuple[int, bytes]]]:
        """``encode_result(value)`` as a message and the large ``bytes`` value taken out of it."""
        if self._result is None:
            return self._encode_result(value), []  # refuses
        return self._result.encode_parts(value)

    def decode_result_parts(self, rest: bytes, found: Mapping[int, bytes]) -> Any:
        """The result of ``encode_result_parts``'s message and large value."""
        if self._result is None:
            return self._decode_result(rest)  # refuses
        return self._result.decode_parts(rest, found)

    def encode_items(self, items: Sequence[Any]) -> bytes:
        """A pipe/direct_pipe response message carrying a batch of items (type-checked)."""
        return self._encode_items(items)

    def decode_items(self, data: bytes) -> list[Any]:
        """The batch of items a pipe/direct_pipe response message carries."""
        return self._decode_items(data)

    def encode_state(self, value: Any) -> bytes:
        """A state function's first response message: the initial state alone (type-checked)."""
        return self._encode_state(value)

    def encode_updates_batch(self, items: Sequence[Any]) -> bytes:
        """A state function's later response message: a non-empty batch of updates (type-checked)."""
        return self._encode_updates_batch(items)

    def decode_state_message(self, data: bytes) -> tuple[bool, Any, list[Any]]:
        """``(has_state, state, updates)`` of a state response message.

        ``has_state`` is true when the message carries the state: explicitly, or by carrying no
        updates (a state-only message is empty when the state is a default value or ``None``,
        which is why update batches are never empty). ``state`` is ``None`` otherwise.
        """
        return self._decode_state(data)

    def _refuse(self, what: str) -> Callable[[Any], Any]:
        def refuse(arg: Any) -> Any:
            raise TypeError(f"{what} does not apply to {self.qualname}, a {self.spec.kind.value} function")

        return refuse


def _state_reader(response: MessageSpec, state: Value,
                  batch: Batch) -> Callable[[Message], tuple[bool, Any, list[Any]]]:
    present = _presence(response, "state")
    get_state = state.part.get if state.part is not None else read_none
    get_updates = batch.get

    def read(m: Message) -> tuple[bool, Any, list[Any]]:
        updates: list[Any] = get_updates(m)
        if updates and not present(m):
            return False, None, updates
        return True, get_state(m), updates

    return read


def _presence(message: MessageSpec, field: str) -> Callable[[Message], bool]:
    """Whether a message's field is on the wire (for implicit-presence fields: non-default)."""
    found = [f for f in message.fields if f.name == field]
    if not found:
        return lambda m: False
    t = found[0].type
    if isinstance(t, OptionalT | MessageRef):
        return lambda m: m.HasField(field)
    return lambda m: bool(getattr(m, field))


def _enumerate(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]
