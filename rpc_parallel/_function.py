"""Worker functions: the six kinds, their decorators, and the typed ``Function`` handles.

A decorator turns a method of a :class:`~rpc_parallel.Worker` subclass into a ``Function``
descriptor. Accessed on the class (``Counter.incr``) it is the handle passed to
``Connection.run``; accessed on an instance it is the plain bound method, so worker code can call
its own functions directly.
"""

from __future__ import annotations

import copy
import enum
import inspect
import re
from collections.abc import AsyncIterable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Concatenate, Generic, ParamSpec, TypeAlias, TypeVar, overload

if TYPE_CHECKING:
    from ._pipes import DirectWriter

__all__ = (
    "DirectPipeFunction",
    "ForeignMethod",
    "Function",
    "Kind",
    "OneWayFunction",
    "Pickled",
    "PipeFunction",
    "adaptation",
    "chain",
    "spread",
    "ReversePipeFunction",
    "RpcFunction",
    "StateFunction",
    "direct_pipe",
    "one_way",
    "pipe",
    "reverse_pipe",
    "rpc",
    "state",
)

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
R2 = TypeVar("R2")
T2 = TypeVar("T2")
M = TypeVar("M")
N = TypeVar("N")
T = TypeVar("T")
S = TypeVar("S")
U = TypeVar("U")
FunctionT = TypeVar("FunctionT", bound="Function[Any]")


class Kind(enum.Enum):
    """The six function kinds of rpc_parallel, named as in the OCaml library."""

    RPC = "rpc"
    ONE_WAY = "one_way"
    PIPE = "pipe"
    STATE = "state"
    DIRECT_PIPE = "direct_pipe"
    REVERSE_PIPE = "reverse_pipe"


class _PickledMarker:
    """Annotation marker: the value travels as pickled bytes."""

    def __repr__(self) -> str:
        return "rpc_parallel.Pickled"


PICKLED = _PickledMarker()

Pickled: TypeAlias = Annotated[T, PICKLED]
"""``rp.Pickled[T]``: a value of any picklable type ``T``, sent as pickled bytes.

Python-only; decoded only after the peer authenticated with the master's token.
"""


class Function(Generic[P]):
    """A declared worker function. Pass it (``Counter.incr``) to ``Connection.run``.

    ``name`` is the Python name, ``id`` its 1-based position among the worker's functions,
    ``owner`` the declaring worker class.
    """

    kind: Kind
    foreign: ForeignMethod | None = None  # an rpc implementing a method of an existing .proto service
    # (declared function, pre, post) of a function made by map/contra_map
    _rp_adaptation: tuple[Function[Any], Callable[..., Any] | None, Callable[[Any], Any] | None] | None = None

    def __init__(self, impl: Callable[..., Any]) -> None:
        if not callable(impl):
            raise TypeError(f"@{self.kind.value} must decorate a function, not {impl!r}")
        self.impl = impl
        self.name: str = getattr(impl, "__name__", "<function>")
        self.is_async = inspect.iscoroutinefunction(impl) or inspect.isasyncgenfunction(impl)
        self.owner: type | None = None
        self.id = 0
        self.__doc__ = impl.__doc__
        self.__wrapped__ = impl

    def __set_name__(self, owner: type, name: str) -> None:
        self.owner = owner
        self.name = name

    @overload
    def __get__(self: FunctionT, obj: None, objtype: type | None = None) -> FunctionT: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> Callable[..., Any]: ...
    def __get__(self, obj: object | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return self.impl.__get__(obj, objtype)

    @property
    def qualname(self) -> str:
        """``Worker.function``, for messages."""
        owner = self.owner.__name__ if self.owner is not None else "?"
        return f"{owner}.{self.name}"

    def __repr__(self) -> str:
        base, pre, post = adaptation(self)
        adapted = (" contra_mapped" if pre else "") + (" mapped" if post else "")
        return f"<rpc_parallel {self.kind.value} {base.qualname}{adapted}>"

    def _adapted(self, pre: Callable[..., Any] | None = None, post: Callable[[Any], Any] | None = None) -> Any:
        """A copy of this function whose arguments go through ``pre`` and whose results (or items)
        through ``post`` on the caller's side, after the adaptations it already has."""
        for fn, what in ((pre, "contra_map"), (post, "map")):
            if fn is not None and not callable(fn):
                raise TypeError(f"{what} takes a function, not {fn!r}")
        base, old_pre, old_post = adaptation(self)
        adapted = copy.copy(base)
        # the new pre runs first (it makes the old one's arguments); the new post runs last
        new_pre = pre if old_pre is None else (_chain_pre(pre, old_pre) if pre is not None else old_pre)
        new_post = post if old_post is None else (chain(old_post, post) if post is not None else old_post)
        adapted._rp_adaptation = (base, new_pre, new_post)
        return adapted


def adaptation(f: Function[Any]) -> tuple[Function[Any], Callable[..., Any] | None, Callable[[Any], Any] | None]:
    """``(declared function, pre, post)`` of a function made by ``map``/``contra_map`` (``pre``
    takes the caller's arguments and returns the declared function's: a single value for a
    one-parameter function, else a tuple of positional arguments); ``(f, None, None)`` otherwise."""
    found = f._rp_adaptation
    return found if found is not None else (f, None, None)


def spread(value: Any, single: bool) -> tuple[Any, ...]:
    """The positional arguments that a contra_map function's ``value`` stands for: itself for a
    function of one parameter (``single``), else the tuple it must be."""
    if single:
        return (value,)
    if not isinstance(value, tuple):
        raise TypeError(f"a contra_map function of a function with several parameters must return a tuple of "
                        f"them, not {value!r}")
    return value


def _one_parameter(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` (a contra_map function) is called with one argument: it has at most one
    required positional parameter; a callable whose signature cannot be read (a builtin such as
    ``int``) counts as one."""
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        return True
    required = [p for p in params if p.kind is not p.VAR_POSITIONAL and p.default is p.empty]
    return len(required) <= 1 and not (not required and any(p.kind is p.VAR_POSITIONAL for p in params))


def chain(first: Callable[[Any], Any], then: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``then(first(value))``, as one function."""
    return lambda value: then(first(value))


def _chain_pre(outer: Callable[..., Any], inner: Callable[..., Any]) -> Callable[..., Any]:
    single = _one_parameter(inner)

    def chained(*args: Any, **kwargs: Any) -> Any:
        return inner(*spread(outer(*args, **kwargs), single))

    return chained


class RpcFunction(Function[P], Generic[P, R]):
    """A request/response function: ``run`` returns its result."""

    kind = Kind.RPC

    def map(self, fn: Callable[[R], R2]) -> RpcFunction[P, R2]:
        """OCaml ``Function.map``: the same function, its result passed through ``fn`` on the
        caller's side (``conn.run(Counter.incr.map(str), 1)`` is a str); works with ``run``,
        ``submit`` and ``rp.aio``."""
        return self._adapted(post=fn)  # type: ignore[no-any-return]

    def contra_map(self, fn: Callable[P2, Any]) -> RpcFunction[P2, R]:
        """OCaml ``Function.contra_map``: the same function, called with ``fn(*args, **kwargs)``
        (the argument of a one-parameter function, else a tuple of its positional arguments)."""
        return self._adapted(pre=fn)  # type: ignore[no-any-return]


class OneWayFunction(Function[P]):
    """A fire-and-forget function: ``run`` returns at once; failures go to ``on_failure``."""

    kind = Kind.ONE_WAY

    def contra_map(self, fn: Callable[P2, Any]) -> OneWayFunction[P2]:
        """The same function, called with ``fn(*args, **kwargs)`` (see ``RpcFunction.contra_map``)."""
        return self._adapted(pre=fn)  # type: ignore[no-any-return]


class PipeFunction(Function[P], Generic[P, T]):
    """A worker-to-caller stream: ``run`` returns an ``rp.Pipe`` of items."""

    kind = Kind.PIPE

    def map(self, fn: Callable[[T], T2]) -> PipeFunction[P, T2]:
        """The same function, each item passed through ``fn`` on the caller's side."""
        return self._adapted(post=fn)  # type: ignore[no-any-return]

    def contra_map(self, fn: Callable[P2, Any]) -> PipeFunction[P2, T]:
        """The same function, called with ``fn(*args, **kwargs)`` (see ``RpcFunction.contra_map``)."""
        return self._adapted(pre=fn)  # type: ignore[no-any-return]


class StateFunction(Function[P], Generic[P, S, U]):
    """An initial state then a stream of updates: ``run`` returns ``(state, Pipe)``."""

    kind = Kind.STATE

    def contra_map(self, fn: Callable[P2, Any]) -> StateFunction[P2, S, U]:
        """The same function, called with ``fn(*args, **kwargs)`` (see ``RpcFunction.contra_map``)."""
        return self._adapted(pre=fn)  # type: ignore[no-any-return]


class DirectPipeFunction(Function[P], Generic[P, T]):
    """The worker pushes items through a ``DirectWriter``; the caller gets them in ``on_update``."""

    kind = Kind.DIRECT_PIPE

    def map(self, fn: Callable[[T], T2]) -> DirectPipeFunction[P, T2]:
        """The same function, each ``Update``'s value passed through ``fn`` before ``on_update``."""
        return self._adapted(post=fn)  # type: ignore[no-any-return]

    def contra_map(self, fn: Callable[P2, Any]) -> DirectPipeFunction[P2, T]:
        """The same function, called with ``fn(*args, **kwargs)`` (see ``RpcFunction.contra_map``)."""
        return self._adapted(pre=fn)  # type: ignore[no-any-return]


class ReversePipeFunction(Function[P], Generic[P, R]):
    """The caller streams an iterable to the worker, which returns one result."""

    kind = Kind.REVERSE_PIPE

    def map(self, fn: Callable[[R], R2]) -> ReversePipeFunction[P, R2]:
        """The same function, its result passed through ``fn`` on the caller's side."""
        return self._adapted(post=fn)  # type: ignore[no-any-return]

    def contra_map(self, fn: Callable[P2, Any]) -> ReversePipeFunction[P2, R]:
        """The same function, called with ``fn(*args, **kwargs)`` (see ``RpcFunction.contra_map``)."""
        return self._adapted(pre=fn)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ForeignMethod:
    """A method of an existing ``.proto`` service that an ``rpc`` function implements (OCaml
    ``of_async_rpc``): its full gRPC name and its protobuf request and response classes."""

    method: str
    request: type[Any]
    response: type[Any]

    @property
    def service(self) -> str:
        return self.method.split("/")[1]

    @property
    def name(self) -> str:
        return self.method.split("/")[2]


_METHOD_NAME = re.compile(r"/[A-Za-z_][\w.]*/[A-Za-z_]\w*")


def _foreign(method: object, request: object, response: object) -> ForeignMethod:
    if not isinstance(method, str) or not _METHOD_NAME.fullmatch(method):
        raise TypeError(f"@rp.rpc(method=...) takes a gRPC method name such as '/pkg.Service/Method', not {method!r}")
    for what, cls in (("request", request), ("response", response)):
        if not (isinstance(cls, type) and hasattr(cls, "FromString") and hasattr(cls, "DESCRIPTOR")):
            raise TypeError(f"@rp.rpc({what}=...) takes a generated protobuf message class (a _pb2 module's), "
                            f"not {cls!r}")
    found = ForeignMethod(method, request, response)  # type: ignore[arg-type]
    declared = _declared_method(found)
    if declared is not None:
        for what, cls, expected in (("request", request, declared.input_type), ("response", response,
                                                                                 declared.output_type)):
            got = getattr(cls, "DESCRIPTOR").full_name  # noqa: B009 - (a message class, checked above)
            if got != expected.full_name:
                raise TypeError(f"@rp.rpc(method={method!r}): its .proto declares the {what} "
                                f"{expected.full_name}, not {got}")
    return found


def _declared_method(f: ForeignMethod) -> Any:
    """The method's descriptor, where the request's ``.proto`` file (or its pool) declares its
    service; ``TypeError`` if that service has no such method (a typo would be UNIMPLEMENTED)."""
    try:
        service = f.request.DESCRIPTOR.file.pool.FindServiceByName(f.service)
    except (KeyError, AttributeError):
        return None  # a service its _pb2 does not declare: nothing to check against
    method = service.methods_by_name.get(f.name)
    if method is None:
        raise TypeError(f"@rp.rpc(method={f.method!r}): service {f.service} has no method {f.name}; it has "
                        f"{', '.join(sorted(service.methods_by_name)) or 'none'}")
    return method


@overload
def rpc(f: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]], /) -> RpcFunction[P, R]: ...
@overload
def rpc(f: Callable[Concatenate[Any, P], R], /) -> RpcFunction[P, R]: ...
@overload
def rpc(*, method: str, request: type[M], response: type[N]
        ) -> Callable[[Callable[[Any, M], N | Coroutine[Any, Any, N]]], RpcFunction[[M], N]]: ...
def rpc(f: Callable[..., Any] | None = None, /, *, method: str | None = None, request: type[Any] | None = None,
        response: type[Any] | None = None) -> Any:
    """Declare a request/response function (unary gRPC method).

    ``@rp.rpc(method="/pkg.Service/Method", request=ReqPb2, response=RespPb2)`` implements a
    method of an existing ``.proto`` service instead (OCaml ``of_async_rpc``): the function takes
    and returns those protobuf messages, and is served under exactly that name, so the service's
    own stubs in any language call it (with the token in their metadata). It is not part of the
    worker type's generated service.
    """
    if f is not None:
        if method is not None or request is not None or response is not None:
            raise TypeError("@rp.rpc takes either a function or method=, request= and response=")
        return RpcFunction(f)
    foreign = _foreign(method, request, response)

    def declare(impl: Callable[..., Any]) -> RpcFunction[Any, Any]:
        declared: RpcFunction[Any, Any] = RpcFunction(impl)
        declared.foreign = foreign
        return declared

    return declare


def one_way(f: Callable[Concatenate[Any, P], None | Coroutine[Any, Any, None]]) -> OneWayFunction[P]:
    """Declare a fire-and-forget function: the caller does not wait for it to run."""
    return OneWayFunction(f)


@overload
def pipe(f: Callable[Concatenate[Any, P], AsyncIterable[T]]) -> PipeFunction[P, T]: ...
@overload
def pipe(f: Callable[Concatenate[Any, P], Iterable[T]]) -> PipeFunction[P, T]: ...
def pipe(f: Callable[..., Any]) -> PipeFunction[Any, Any]:
    """Declare a worker-to-caller stream; the function returns (or is) an iterator of items."""
    return PipeFunction(f)


@overload
def state(f: Callable[Concatenate[Any, P], Coroutine[Any, Any, tuple[S, AsyncIterable[U]]]]) -> StateFunction[P, S, U]: ...
@overload
def state(f: Callable[Concatenate[Any, P], tuple[S, Iterable[U]]]) -> StateFunction[P, S, U]: ...
def state(f: Callable[..., Any]) -> StateFunction[Any, Any, Any]:
    """Declare a state function: it returns ``(initial_state, iterator_of_updates)``."""
    return StateFunction(f)


def direct_pipe(
    f: Callable[Concatenate[Any, DirectWriter[T], P], None | Coroutine[Any, Any, None]],
) -> DirectPipeFunction[P, T]:
    """Declare a direct pipe: the function's first parameter is an ``rp.DirectWriter[T]``."""
    return DirectPipeFunction(f)


@overload
def reverse_pipe(f: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]) -> ReversePipeFunction[P, R]: ...
@overload
def reverse_pipe(f: Callable[Concatenate[Any, P], R]) -> ReversePipeFunction[P, R]: ...
def reverse_pipe(f: Callable[..., Any]) -> ReversePipeFunction[Any, Any]:
    """Declare a caller-to-worker stream: one parameter is an ``Iterator[T]`` of updates."""
    return ReversePipeFunction(f)
