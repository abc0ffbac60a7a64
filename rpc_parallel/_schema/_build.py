"""From worker declarations to the schema model: type hints resolved, checked and mapped.

Every error names the file, line, class, function and parameter (or dataclass field) it is about.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import inspect
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._declaration import declared_functions, install_declaration_check, location, workers_in_module
from .._errors import DeclarationError, UnsupportedTypeError
from .._function import PICKLED, Function, Kind
from .._handle import WorkerHandle
from .._pipes import DirectWriter
from ._model import (
    SCALARS,
    EnumRef,
    EnumSpec,
    FieldSpec,
    FileSpec,
    ListT,
    MapT,
    MessageRef,
    MessageSpec,
    MethodSpec,
    NoneT,
    OptionalT,
    ParamInfo,
    PickledT,
    ServiceSpec,
    TupleT,
    TypeRef,
    UnionT,
    camel,
    describe,
    fingerprints,
    json_name,
    type_label,
    union_case,
    wrapper_fields,
    wrappers_for,
)

__all__ = ("MAIN_MODULES", "file_spec", "module_name", "service_spec")

MAIN_MODULES = ("__main__", "__mp_main__")

SUPPORTED = ("int, float, bool, str, bytes, None, list[T], tuple[T, ...], tuple[A, B, ...], dict[str|int, T], "
             "T | None, A | B | ..., enum.Enum, dataclasses, rp.WorkerHandle, rp.Pickled[T]")
_ITERATORS = (collections.abc.Iterator, collections.abc.Iterable, collections.abc.Generator)
_ASYNC_ITERATORS = (collections.abc.AsyncIterator, collections.abc.AsyncIterable, collections.abc.AsyncGenerator)


@dataclass(frozen=True)
class _Where:
    """Where a type hint was written, for error messages."""

    loc: str
    owner: str
    function: str | None = None
    param: str | None = None

    def __str__(self) -> str:
        text = f"{self.loc}: in {self.owner}"
        if self.function:
            text += f", function {self.function}"
        if self.param:
            text += f", {self.param}"
        return text

    def at(self, param: str) -> _Where:
        return dataclasses.replace(self, param=param)


def module_name(cls: type) -> str:
    """The importable name of the module declaring ``cls``.

    A script's ``__main__`` (in the master) and ``__mp_main__`` (the same script loaded by a worker)
    both give the script's module name or file stem, so master and worker agree on the proto package.
    """
    name = cls.__module__
    if name in MAIN_MODULES:
        main = sys.modules.get(name)
        spec = getattr(main, "__spec__", None)
        if spec is not None and spec.name and spec.name not in MAIN_MODULES:
            return str(spec.name)
        file = getattr(main, "__file__", None)
        return Path(file).stem if file else "main"
    return name


_CACHE: dict[tuple[str, tuple[type, ...]], FileSpec] = {}


def file_spec(module: str) -> FileSpec:
    """The schema of every worker type declared in ``module`` (by ``cls.__module__``)."""
    classes = _latest(workers_in_module(module))
    if not classes:
        raise DeclarationError(f"module {module} declares no rp.Worker subclass")
    key = (module, classes)
    if key not in _CACHE:
        _CACHE[key] = _Builder(classes).build()
    return _CACHE[key]


def _latest(classes: list[type]) -> tuple[type, ...]:
    """Drop classes a re-execution of their module replaced (``importlib.reload``, a re-import).

    A module-level class is superseded by a later class of the same qualified name; classes
    defined inside functions are all kept.
    """
    last = {c.__qualname__: i for i, c in enumerate(classes) if "<locals>" not in c.__qualname__}
    return tuple(c for i, c in enumerate(classes) if last.get(c.__qualname__, i) == i)


def check_declaration(cls: type) -> None:
    """Check ``cls`` when it is defined, as far as can be known then: every error of its schema
    (``UnsupportedTypeError``...) but an annotation naming a class defined later in its module,
    which is resolved, and checked, at first use."""
    try:
        _Builder((cls,)).build()
    except DeclarationError as exc:
        if not isinstance(exc.__cause__, NameError):
            raise


install_declaration_check(check_declaration)


def service_spec(cls: type) -> ServiceSpec:
    """The schema of one worker type."""
    return file_spec(cls.__module__).service(cls.__name__)


class _Builder:
    def __init__(self, classes: tuple[type, ...]) -> None:
        self.classes = classes
        self.enums: dict[str, EnumSpec] = {}
        self.shared: dict[str, MessageSpec] = {}  # dataclasses, handles, wrappers
        self.claims: dict[str, tuple[object, str]] = {}  # proto name -> (origin, where)
        self.in_progress: set[str] = set()

    def build(self) -> FileSpec:
        module = module_name(self.classes[0])
        packages = {c._rp_proto_package for c in self.classes if getattr(c, "_rp_proto_package", None)}  # type: ignore[attr-defined]
        if len(packages) > 1:
            raise DeclarationError(f"module {module}: worker classes name different proto packages {sorted(packages)}")
        package = packages.pop() if packages else module
        services: list[ServiceSpec] = []
        service_messages: list[MessageSpec] = []
        for cls in self.classes:
            self._claim(cls.__name__, ("service", cls), f"{location(cls)}: class {cls.__name__}")
        for cls in self.classes:
            service, messages = self._service(cls, package)
            services.append(service)
            service_messages += messages
        return FileSpec(
            module=module, package=package, proto_file=package.replace(".", "/") + ".proto",
            services=tuple(services), messages=tuple(self.shared.values()) + tuple(service_messages),
            enums=tuple(self.enums.values()))

    # -- names ---------------------------------------------------------------------------------

    def _claim(self, name: str, origin: object, where: str) -> None:
        if name in self.claims:
            other, other_where = self.claims[name]
            if other != origin:
                generated = [isinstance(o, tuple) and o[:1] == ("wrapper",) for o in (origin, other)]
                fix = ("wrap one of the two in a dataclass" if all(generated)
                       else "rename one of them" if not any(generated) else "rename the class")
                raise DeclarationError(
                    f"{where}: proto name '{name}' is already used by {other_where}; two different types "
                    f"cannot share one name in a .proto file: {fix}")
            return
        self.claims[name] = (origin, where)

    # -- services and methods ------------------------------------------------------------------

    def _service(self, cls: type, package: str) -> tuple[ServiceSpec, list[MessageSpec]]:
        name = cls.__name__
        messages: list[MessageSpec] = []
        init = self._init_message(cls, "init_worker_state", f"{name}Init")
        conn_init = self._init_message(cls, "init_connection_state", f"{name}ConnectionInit")
        messages += [init, conn_init]
        methods: list[MethodSpec] = []
        rpc_names: dict[str, str] = {}
        for f in declared_functions(cls):
            method = self._method(cls, f)
            if method.rpc_name in rpc_names:
                raise DeclarationError(
                    f"{location(f.impl)}: in class {name}, function {f.name}: its gRPC name {method.rpc_name} "
                    f"is also the name of function {rpc_names[method.rpc_name]}")
            rpc_names[method.rpc_name] = f.name
            methods.append(method)
            messages += [method.request, method.response]
        all_messages = {m.name: m for m in (*self.shared.values(), *messages)}
        fp, per = fingerprints(name, tuple(methods), init, conn_init, all_messages, self.enums)
        service = ServiceSpec(name=name, package=package, methods=tuple(methods), init=init,
                              connection_init=conn_init, fingerprint=fp, function_fingerprints=per, py=cls)
        return service, messages

    def _init_message(self, cls: type, init: str, message: str) -> MessageSpec:
        impl = getattr(cls, init, None)
        arg: TypeRef = NoneT()
        if impl is not None and not getattr(impl, "_rp_default", False):  # the base class's: takes None
            where = _Where(location(impl), f"class {cls.__name__}", init)
            hints = self._hints(impl, where)
            params = list(inspect.signature(impl).parameters.values())[1:]
            if len(params) > 1:
                raise DeclarationError(f"{where}: takes at most one argument besides self")
            if params and params[0].name not in hints:
                raise DeclarationError(f"{where.at('parameter ' + params[0].name)}: missing type annotation")
            if params:  # none: spawned (or connected) without an argument, like the default
                arg = self._convert(hints[params[0].name], where.at("parameter " + params[0].name), allow_none=True)
        self._claim(message, ("init", cls, init), f"the {init} message of class {cls.__name__} ({location(cls)})")
        return MessageSpec(message, self._fields([("arg", arg)]), "request")

    def _method(self, cls: type, f: Function[Any]) -> MethodSpec:
        where = _Where(location(f.impl), f"class {cls.__name__}", f.name)
        hints = self._hints(f.impl, where)
        params = list(inspect.signature(f.impl).parameters.values())[1:]
        for p in params:
            if p.name not in hints:
                raise DeclarationError(f"{where.at('parameter ' + p.name)}: missing type annotation")
        ret = hints.get("return", inspect.Parameter.empty)
        kind = f.kind
        update: TypeRef | None = None
        updates_param: str | None = None

        if kind is Kind.DIRECT_PIPE:
            if not params or typing.get_origin(hints[params[0].name]) is not DirectWriter:
                raise DeclarationError(f"{where}: a direct_pipe's first parameter must be the writer, "
                                       "annotated rp.DirectWriter[T]")
            (item_hint,) = typing.get_args(hints[params[0].name]) or (Any,)
            result = self._convert(item_hint, where.at(f"parameter {params[0].name} (the writer's item type)"))
            self._expect_none_result(ret, where, kind)
            params = params[1:]
        elif kind is Kind.PIPE:
            result = self._iterator_item(ret, where, "a pipe must return an iterator: annotate it Iterator[T] "
                                                     "(or AsyncIterator[T] for an async generator)")
        elif kind is Kind.STATE:
            args = typing.get_args(ret) if typing.get_origin(ret) is tuple else ()
            if len(args) != 2:
                raise DeclarationError(f"{where}: a state function must return tuple[S, Iterator[U]] "
                                       f"(the initial state and the updates), not {_show(ret)}")
            result = self._convert(args[0], where.at("the state type"), allow_none=True)
            update = self._iterator_item(args[1], where, "the second element of a state's result must be "
                                                         "an Iterator[U] of updates")
        elif kind is Kind.ONE_WAY:
            self._expect_none_result(ret, where, kind)
            result = NoneT()
        else:  # RPC, REVERSE_PIPE
            if ret is inspect.Parameter.empty:
                raise DeclarationError(f"{where}: missing return annotation (use -> None for no result)")
            result = self._convert(ret, where.at("the result"), allow_none=True)

        infos: list[ParamInfo] = []
        for p in params:
            hint = hints[p.name]
            pw = where.at("parameter " + p.name)
            if _is_iterator_hint(hint):
                if kind is not Kind.REVERSE_PIPE:
                    raise UnsupportedTypeError(f"{pw}: an iterator parameter streams to the worker only in a "
                                               "@rp.reverse_pipe function")
                if updates_param is not None:
                    raise DeclarationError(f"{pw}: a reverse_pipe takes one iterator of updates "
                                           f"(already: {updates_param})")
                updates_param = p.name
                (elem,) = typing.get_args(hint) or (Any,)
                t: TypeRef = ListT(self._convert(elem, pw))
            else:
                t = self._convert(hint, pw)
            has_default = p.default is not inspect.Parameter.empty
            infos.append(ParamInfo(p.name, t, has_default, p.default if has_default else None))
        if kind is Kind.REVERSE_PIPE and updates_param is None:
            raise DeclarationError(f"{where}: a reverse_pipe needs one parameter annotated Iterator[T] "
                                   "for the updates the caller streams")

        stem = f"{cls.__name__}{camel(f.name)}"
        request = MessageSpec(f"{stem}Request", self._fields([(p.name, p.type) for p in infos]), "request")
        response_fields: list[tuple[str, TypeRef]]
        if kind in (Kind.PIPE, Kind.DIRECT_PIPE):
            response_fields = [("items", ListT(result))]
        elif kind is Kind.STATE:
            assert update is not None
            response_fields = [("state", result), ("updates", ListT(update))]
        else:
            response_fields = [("value", result)]
        response = MessageSpec(f"{stem}Response", self._fields(response_fields), "response")
        for msg in (request, response):
            self._claim(msg.name, ("method", cls, f.name), f"{where} ({msg.name})")
        return MethodSpec(id=f.id, name=f.name, rpc_name=camel(f.name), kind=kind, params=tuple(infos),
                          result=result, request=request, response=response, update=update,
                          updates_param=updates_param, is_async=f.is_async)

    def _fields(self, items: list[tuple[str, TypeRef]]) -> tuple[FieldSpec, ...]:
        """Number fields 1..n in order; a ``None``-typed one keeps its number but has no field."""
        out = []
        for number, (name, t) in enumerate(items, start=1):
            if isinstance(t, NoneT):
                continue
            out.append(FieldSpec(name, number, t))
            self._add_wrappers(t)
        return tuple(out)

    def _expect_none_result(self, ret: Any, where: _Where, kind: Kind) -> None:
        if ret is not inspect.Parameter.empty and ret is not None and ret is not type(None):
            raise DeclarationError(f"{where}: a {kind.value} function returns nothing (-> None), not {_show(ret)}")

    def _iterator_item(self, hint: Any, where: _Where, message: str) -> TypeRef:
        if not _is_iterator_hint(hint):
            raise DeclarationError(f"{where}: {message}; got {_show(hint)}")
        args = typing.get_args(hint)
        if not args:
            raise UnsupportedTypeError(f"{where}: {_show(hint)} needs an item type, e.g. Iterator[int]")
        return self._convert(args[0], where.at("the item type"))

    def _hints(self, obj: Callable[..., Any] | type, where: _Where) -> dict[str, Any]:
        try:
            return typing.get_type_hints(obj, include_extras=True)
        except NameError as exc:  # kept as the cause: at class definition it may name a later class
            raise DeclarationError(f"{where}: cannot resolve a type annotation: {exc}") from exc
        except Exception as exc:  # a malformed annotation string, an unsupported typing form
            raise DeclarationError(f"{where}: invalid type annotation: {type(exc).__name__}: {exc}") from None

    # -- types ---------------------------------------------------------------------------------

    def _convert(self, hint: Any, where: _Where, *, allow_none: bool = False) -> TypeRef:
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if origin is typing.Annotated:
            if any(m is PICKLED for m in hint.__metadata__):
                return PickledT(args[0])
            return self._convert(args[0], where, allow_none=allow_none)
        if hint is None or hint is type(None):
            if allow_none:
                return NoneT()
            raise UnsupportedTypeError(f"{where}: None is only allowed as a result or in T | None")
        if isinstance(hint, type) and hint in SCALARS:
            return SCALARS[hint]
        if origin in (typing.Union, types.UnionType):
            return self._union(hint, args, where)
        if origin is list and len(args) == 1:
            return ListT(self._convert(args[0], where))
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return ListT(self._convert(args[0], where), as_tuple=True)
        if origin is tuple:
            if not args or args == ((),) or Ellipsis in args:
                raise UnsupportedTypeError(f"{where}: unsupported type {_show(hint)}: a tuple type is "
                                           "tuple[T, ...] (any length) or tuple[A, B, ...] (one type per position)")
            return TupleT(tuple(self._convert(a, where) for a in args))
        if origin is dict and len(args) == 2:
            key = args[0]
            if key not in (str, int):
                raise UnsupportedTypeError(f"{where}: unsupported type {_show(hint)}: dict keys must be str or int")
            return MapT(SCALARS[key], self._convert(args[1], where))
        if hint in (list, tuple, dict):
            raise UnsupportedTypeError(f"{where}: {hint.__name__} needs type parameters, e.g. list[int]")
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return self._enum(hint, where)
        if hint is WorkerHandle:
            return self._dataclass(hint, where, "handle")
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return self._dataclass(hint, where, "dataclass")
        raise UnsupportedTypeError(f"{where}: unsupported type {_show(hint)}; supported: {SUPPORTED}")

    def _union(self, hint: Any, args: tuple[Any, ...], where: _Where) -> TypeRef:
        """``A | B | ...`` as a ``UnionT`` (wrapped in ``OptionalT`` when ``None`` is a member)."""
        optional = type(None) in args
        members: list[TypeRef] = []
        for a in args:
            if a is type(None):
                continue
            m = self._convert(a, where)
            if isinstance(m, OptionalT):  # an annotated member that is itself optional
                optional, m = True, m.inner
            if m not in members:
                members.append(m)
        if len(members) == 1:  # e.g. rp.Pickled[A] | rp.Pickled[B]: both pickled
            return OptionalT(members[0]) if optional else members[0]
        cases: dict[str, TypeRef] = {}
        for m in members:
            case = union_case(m)
            other = cases.setdefault(json_name(case).lower(), m)
            if other is not m:
                raise UnsupportedTypeError(f"{where}: unsupported type {_show(hint)}: its members {describe(other)} "
                                           f"and {describe(m)} would have the same case name ('{case}') in the "
                                           "union's oneof: rename one of the two classes")
        union = UnionT(tuple(members))
        return OptionalT(union) if optional else union

    def _enum(self, cls: type[enum.Enum], where: _Where) -> EnumRef:
        name = cls.__name__
        self._claim(name, cls, f"enum {cls.__module__}.{cls.__qualname__} ({location(cls)})")
        if name not in self.enums:
            members = tuple(m.name for m in cls)
            if not members:
                raise UnsupportedTypeError(f"{where}: enum {name} has no members")
            self.enums[name] = EnumSpec(name, members, cls)
        return EnumRef(name, cls)

    def _dataclass(self, cls: type, where: _Where, role: typing.Literal["dataclass", "handle"]) -> MessageRef:
        name = cls.__name__
        self._claim(name, cls, f"dataclass {cls.__module__}.{cls.__qualname__} ({location(cls)})")
        if name in self.shared or name in self.in_progress:
            return MessageRef(name, cls)
        self.in_progress.add(name)
        fwhere = _Where(location(cls), f"dataclass {cls.__qualname__}")
        hints = self._hints(cls, fwhere)
        items: list[tuple[str, TypeRef]] = []
        for f in dataclasses.fields(cls):
            if f.name not in hints:
                raise DeclarationError(f"{fwhere.at('field ' + f.name)}: missing type annotation")
            items.append((f.name, self._convert(hints[f.name], fwhere.at("field " + f.name))))
        self.shared[name] = MessageSpec(name, self._fields(items), role, py=cls)
        self.in_progress.discard(name)
        return MessageRef(name, cls)

    def _add_wrappers(self, t: TypeRef) -> None:
        for w in wrappers_for(t):
            name = type_label(w)
            self._claim(name, ("wrapper", w), f"the generated wrapper message for {describe(w)}")
            if name not in self.shared:
                self.shared[name] = MessageSpec(name, wrapper_fields(w), "wrapper", wraps=w)


def _is_iterator_hint(hint: Any) -> bool:
    return typing.get_origin(hint) in (*_ITERATORS, *_ASYNC_ITERATORS)


def _show(hint: Any) -> str:
    if hint is inspect.Parameter.empty:
        return "no annotation"
    if isinstance(hint, type):
        return hint.__qualname__
    return repr(hint).replace("typing.", "")
