"""Worker functions: the six kinds, their decorators, and the typed ``Function`` handles.

A decorator turns a method of a :class:`~rpc_parallel.Worker` subclass into a ``Function``
descriptor. Accessed on the class (``Counter.incr``) it is the handle passed to
``Connection.run``; accessed on an instance it is the plain bound method, so worker code can call
its own functions directly.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import AsyncIterable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Annotated, Any, Concatenate, Generic, ParamSpec, TypeAlias, TypeVar, overload

if TYPE_CHECKING:
    from ._pipes import DirectWriter

__all__ = (
    "DirectPipeFunction",
    "Function",
    "Kind",
    "OneWayFunction",
    "Pickled",
    "PipeFunction",
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
R = TypeVar("R")
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
        return f"<rpc_parallel {self.kind.value} {self.qualname}>"


class RpcFunction(Function[P], Generic[P, R]):
    """A request/response function: ``run`` returns its result."""

    kind = Kind.RPC


class OneWayFunction(Function[P]):
    """A fire-and-forget function: ``run`` returns at once; failures go to ``on_failure``."""

    kind = Kind.ONE_WAY


class PipeFunction(Function[P], Generic[P, T]):
    """A worker-to-caller stream: ``run`` returns an ``rp.Pipe`` of items."""

    kind = Kind.PIPE


class StateFunction(Function[P], Generic[P, S, U]):
    """An initial state then a stream of updates: ``run`` returns ``(state, Pipe)``."""

    kind = Kind.STATE


class DirectPipeFunction(Function[P], Generic[P, T]):
    """The worker pushes items through a ``DirectWriter``; the caller gets them in ``on_update``."""

    kind = Kind.DIRECT_PIPE


class ReversePipeFunction(Function[P], Generic[P, R]):
    """The caller streams an iterable to the worker, which returns one result."""

    kind = Kind.REVERSE_PIPE


@overload
def rpc(f: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]) -> RpcFunction[P, R]: ...
@overload
def rpc(f: Callable[Concatenate[Any, P], R]) -> RpcFunction[P, R]: ...
def rpc(f: Callable[..., Any]) -> RpcFunction[Any, Any]:
    """Declare a request/response function (unary gRPC method)."""
    return RpcFunction(f)


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
