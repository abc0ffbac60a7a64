"""``rp.MapFunction`` and ``rp.MapReduceFunction``: a map (and combine) declared as a worker type.

A subclass declares ``map(self, x: T) -> U`` (and for a map-reduce ``combine(self, a: U, b: U) ->
U``), optionally ``init(self, param: P, worker_index: int)``. Its metaclass turns it into an
ordinary worker type whose functions work on batches of items (OCaml's one-function worker over
``Map x | Combine (a, b)``), so its hints are checked, and its ``.proto`` generated, like any
worker type's:

- ``init_worker_state(setup: tuple[P, int])`` calls ``init(param, worker_index)`` (without an
  ``init``: ``init_worker_state(worker_index: int)``);
- ``map_batch(start: int, xs: list[T]) -> tuple[list[U], float]``: the outputs, and the seconds the
  maps took (the scheduler sizes batches from it); ``start`` is the first item's index;
- for a map-reduce also ``reduce_batch(start, xs) -> tuple[U, float]`` (the batch folded in order)
  and ``combine_all(accs: list[U]) -> U`` (folded in order);
- ``failed_item(start) -> str``: what the batch from item ``start`` was doing when it raised
  (``mapping item 37``), for the error message.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import time
import typing
from collections.abc import Callable
from typing import Any

from .._declaration import WorkerMeta, location
from .._errors import DeclarationError
from .._function import Function, rpc
from .._worker import Worker

__all__ = ("MAP_KIND", "MapFunction", "MapFunctionMeta", "MapReduceFunction", "has_init", "is_map_reduce")

MAP_KIND = "_rp_map_kind"  # "map" or "map_reduce", on every map function class
_SYNTHESIZED = ("init_worker_state", "map_batch", "reduce_batch", "combine_all", "failed_item")


class MapFunctionMeta(WorkerMeta):
    """Turns ``map``/``combine``/``init`` into the batch functions of a worker type."""

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any],
                _rp_map_kind: str | None = None, **kwargs: Any) -> MapFunctionMeta:
        if _rp_map_kind is not None:  # rp.MapFunction or rp.MapReduceFunction itself
            namespace[MAP_KIND] = _rp_map_kind
            return typing.cast(MapFunctionMeta, super().__new__(mcs, name, bases, namespace, _rp_abstract=True,
                                                                **kwargs))
        kind = namespace.get(MAP_KIND) or next(getattr(b, MAP_KIND) for b in bases if hasattr(b, MAP_KIND))
        where = f"class {name}"
        for reserved in _SYNTHESIZED:
            if reserved in namespace:
                raise DeclarationError(f"{_loc(namespace[reserved])}: in {where}: a {_base(kind)} defines "
                                       f"map{', combine' if kind == 'map_reduce' else ''} and init, not {reserved}")
        impls = {n: _inherited(n, namespace, bases) for n in ("map", "combine", "init")}
        module = str(namespace.get("__module__", ""))
        map_impl = impls["map"]
        if map_impl is None:
            raise DeclarationError(f"{where}: a {_base(kind)} needs a method map(self, x: T) -> U")
        ((x_name, x_ann),), out_ann = _signature(map_impl, where, "map", 1, module)
        is_async = inspect.iscoroutinefunction(map_impl)
        synthesized: dict[str, Any] = {
            "init_worker_state": _init_worker_state(impls["init"], where, module),
            "map_batch": rpc(_relocated(_map_batch(list[x_ann], tuple[list[out_ann], float], is_async),  # type: ignore[valid-type]
                                        map_impl)),
            "failed_item": rpc(_relocated(_failed_item(), map_impl)),
        }
        if kind == "map_reduce":
            combine = impls["combine"]
            if combine is None:
                raise DeclarationError(f"{where}: a MapReduceFunction needs a method combine(self, a: U, b: U) -> U")
            _signature(combine, where, "combine", 2, module)
            if inspect.iscoroutinefunction(combine) != is_async:
                raise DeclarationError(f"{location(combine)}: in {where}: map and combine are both async "
                                       "(async def) or both not")
            synthesized["reduce_batch"] = rpc(_relocated(
                _reduce_batch(list[x_ann], tuple[out_ann, float], is_async), map_impl))  # type: ignore[valid-type]
            synthesized["combine_all"] = rpc(_relocated(_combine_all(list[out_ann], out_ann, is_async), combine))  # type: ignore[valid-type]
        for key, value in synthesized.items():
            impl = value.impl if isinstance(value, Function) else value
            impl.__name__, impl.__qualname__ = key, f"{name}.{key}"
            namespace[key] = value
        return typing.cast(MapFunctionMeta, super().__new__(mcs, name, bases, namespace, **kwargs))


def _base(kind: str) -> str:
    return "MapReduceFunction" if kind == "map_reduce" else "MapFunction"


def _loc(obj: Any) -> str:
    impl = obj.impl if isinstance(obj, Function) else obj
    return location(impl) if callable(impl) else "<unknown>"


def _inherited(name: str, namespace: dict[str, Any], bases: tuple[type, ...]) -> Callable[..., Any] | None:
    if name in namespace:
        value = namespace[name]
    else:
        value = next((getattr(b, name) for b in bases if hasattr(b, name)), None)
    if value is None:
        return None
    if isinstance(value, Function):
        raise DeclarationError(f"{_loc(value)}: {name} of a map function is a plain method, not an rp.{value.kind.value}")
    if not callable(value):
        raise DeclarationError(f"{name} of a map function must be a method, not {value!r}")
    return typing.cast(Callable[..., Any], value)


def _annotation(value: Any, module: str) -> Any:
    """An annotation as written (a string under ``from __future__ import annotations``), made
    resolvable from a function of this module: strings are resolved in the declaring module."""
    return typing.ForwardRef(value, module=module) if isinstance(value, str) else value


def _signature(impl: Callable[..., Any], where: str, name: str, count: int, module: str
               ) -> tuple[list[tuple[str, Any]], Any]:
    """The ``count`` parameters (name, annotation) and the result annotation of ``impl``."""
    fwhere = f"{location(impl)}: in {where}, function {name}"
    params = list(inspect.signature(impl).parameters.values())[1:]
    plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if len(params) != count or any(p.kind not in plain for p in params):
        raise DeclarationError(f"{fwhere}: takes {count} argument{'s' if count > 1 else ''} besides self, "
                               f"got ({', '.join(p.name for p in params)})")
    annotations = getattr(impl, "__annotations__", {})
    for p in params:
        if p.name not in annotations:
            raise DeclarationError(f"{fwhere}, parameter {p.name}: missing type annotation")
    if "return" not in annotations:
        raise DeclarationError(f"{fwhere}: missing return annotation")
    return ([(p.name, _annotation(annotations[p.name], module)) for p in params],
            _annotation(annotations["return"], module))


def _relocated(fn: Callable[..., Any], like: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with the source location of ``like`` (the user's method): errors about its hints
    point there."""
    code = getattr(like, "__code__", None)
    if code is not None:
        fn.__code__ = fn.__code__.replace(co_filename=code.co_filename, co_firstlineno=code.co_firstlineno)
    return fn


def _init_worker_state(init: Callable[..., Any] | None, where: str, module: str) -> Callable[..., None]:
    if init is None:
        def init_without_param(self: Any, worker_index: int) -> None:
            _serialize(self)
            self.worker_index = worker_index

        return init_without_param
    (_, param_ann), (_, index_ann) = _signature_loose(init, where, module)
    if index_ann not in (int, "int"):
        raise DeclarationError(f"{location(init)}: in {where}, function init: worker_index is an int, "
                               f"not {index_ann!r}")

    def init_with_param(self: Any, setup: tuple[Any, int]) -> None:
        param, worker_index = setup
        _serialize(self)
        self.worker_index = worker_index
        self.init(param, worker_index)

    fixed: Any = tuple
    init_with_param.__annotations__ = {"setup": fixed[param_ann, int], "return": None}
    return _relocated(init_with_param, init)


def _serialize(self: Any) -> None:
    """A worker maps one batch at a time (a map function need not be thread-safe): its next batch,
    already sent, waits for the lock rather than for a round trip."""
    self._rp_lock = threading.Lock()
    self._rp_async_lock = asyncio.Lock()


def _signature_loose(init: Callable[..., Any], where: str, module: str) -> list[tuple[str, Any]]:
    """``init(self, param: P, worker_index: int)``: its two parameters (worker_index may go unannotated)."""
    fwhere = f"{location(init)}: in {where}, function init"
    params = list(inspect.signature(init).parameters.values())[1:]
    if len(params) != 2 or any(p.kind not in (inspect.Parameter.POSITIONAL_ONLY,
                                              inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in params):
        raise DeclarationError(f"{fwhere}: takes (self, param, worker_index), got "
                               f"({', '.join(p.name for p in [*inspect.signature(init).parameters.values()])})")
    annotations = getattr(init, "__annotations__", {})
    param, index = params
    if param.name not in annotations:
        raise DeclarationError(f"{fwhere}, parameter {param.name}: missing type annotation")
    return [(param.name, _annotation(annotations[param.name], module)),
            (index.name, annotations.get(index.name, int))]


def _map_batch(items: Any, result: Any, is_async: bool) -> Callable[..., Any]:
    clock = time.perf_counter

    def map_batch(self: Any, start: int, xs: list[Any]) -> tuple[list[Any], float]:
        with self._rp_lock:
            return run(self, start, xs)

    def run(self: Any, start: int, xs: list[Any]) -> tuple[list[Any], float]:
        m = self.map
        began = clock()
        out: list[Any] = []
        add = out.append
        i = 0
        try:
            for i, x in enumerate(xs):  # noqa: B007 (i names the item that raised)
                add(m(x))
        except BaseException:
            _failed(self, start, f"mapping item {start + i}")
            raise
        return out, clock() - began

    async def map_batch_async(self: Any, start: int, xs: list[Any]) -> tuple[list[Any], float]:
        async with self._rp_async_lock:
            return await run_async(self, start, xs)

    async def run_async(self: Any, start: int, xs: list[Any]) -> tuple[list[Any], float]:
        m = self.map
        began = clock()
        out: list[Any] = []
        i = 0
        try:
            for i, x in enumerate(xs):  # noqa: B007
                out.append(await m(x))
        except BaseException:
            _failed(self, start, f"mapping item {start + i}")
            raise
        return out, clock() - began

    fn = map_batch_async if is_async else map_batch
    fn.__annotations__ = {"start": int, "xs": items, "return": result}
    return fn


def _reduce_batch(items: Any, result: Any, is_async: bool) -> Callable[..., Any]:
    clock = time.perf_counter

    def reduce_batch(self: Any, start: int, xs: list[Any]) -> tuple[Any, float]:
        with self._rp_lock:
            return run(self, start, xs)

    def run(self: Any, start: int, xs: list[Any]) -> tuple[Any, float]:
        m, c = self.map, self.combine
        began = clock()
        i, doing = 0, "mapping"
        try:
            acc = m(xs[0])
            for i in range(1, len(xs)):
                doing = "mapping"
                y = m(xs[i])
                doing = "combining"
                acc = c(acc, y)
        except BaseException:
            _failed(self, start, _failed_at(doing, start + i))
            raise
        return acc, clock() - began

    async def reduce_batch_async(self: Any, start: int, xs: list[Any]) -> tuple[Any, float]:
        async with self._rp_async_lock:
            return await run_async(self, start, xs)

    async def run_async(self: Any, start: int, xs: list[Any]) -> tuple[Any, float]:
        m, c = self.map, self.combine
        began = clock()
        i, doing = 0, "mapping"
        try:
            acc = await m(xs[0])
            for i in range(1, len(xs)):
                doing = "mapping"
                y = await m(xs[i])
                doing = "combining"
                acc = await c(acc, y)
        except BaseException:
            _failed(self, start, _failed_at(doing, start + i))
            raise
        return acc, clock() - began

    fn = reduce_batch_async if is_async else reduce_batch
    fn.__annotations__ = {"start": int, "xs": items, "return": result}
    return fn


def _failed_at(doing: str, index: int) -> str:
    return f"mapping item {index}" if doing == "mapping" else f"combining the output of item {index} with those before it"


def _combine_all(accs: Any, result: Any, is_async: bool) -> Callable[..., Any]:
    def combine_all(self: Any, accs: list[Any]) -> Any:
        with self._rp_lock:
            return functools.reduce(self.combine, accs)

    async def combine_all_async(self: Any, accs: list[Any]) -> Any:
        async with self._rp_async_lock:
            acc = accs[0]
            for a in accs[1:]:
                acc = await self.combine(acc, a)
            return acc

    fn = combine_all_async if is_async else combine_all
    fn.__annotations__ = {"accs": accs, "return": result}
    return fn


def _failed(self: Any, start: int, what: str) -> None:
    """Remember what the batch from item ``start`` was doing when it raised (for ``failed_item``)."""
    failures = self.__dict__.setdefault("_rp_failures", {})
    failures[start] = what
    while len(failures) > 64:  # the caller asks at once; keep only the latest
        del failures[next(iter(failures))]


def _failed_item() -> Callable[..., str]:
    def failed_item(self: Any, start: int) -> str:
        return str(self.__dict__.get("_rp_failures", {}).pop(start, ""))

    return failed_item


class MapFunction(Worker, metaclass=MapFunctionMeta, _rp_map_kind="map"):
    """Base class of a map: declare ``map(self, x: T) -> U`` and, optionally,
    ``init(self, param: P, worker_index: int)`` (run once per worker, with the ``param`` of the map
    and the worker's index, 0..n-1 per host group). Run it with ``rp.map_reduce.map`` and friends."""

    worker_index: int


class MapReduceFunction(Worker, metaclass=MapFunctionMeta, _rp_map_kind="map_reduce"):
    """Base class of a map-reduce: ``map(self, x: T) -> U`` and an associative
    ``combine(self, a: U, b: U) -> U`` (and an optional ``init`` as for ``MapFunction``). Run it with
    ``rp.map_reduce.map_reduce`` (order kept) or ``map_reduce_commutative``."""

    worker_index: int


def is_map_reduce(cls: type) -> bool:
    """Whether ``cls`` is a ``MapReduceFunction`` (it has ``combine``)."""
    return getattr(cls, MAP_KIND, None) == "map_reduce"


def has_init(cls: type) -> bool:
    """Whether ``cls`` declares ``init(param, worker_index)`` (it then takes a ``param``)."""
    return callable(getattr(cls, "init", None))
