"""Worker declarations: the ``Worker`` metaclass checks a class body and records its functions.

Structural rules (reserved names, duplicates, parameter shapes of the init functions) are checked
when the class is created. Type hints are resolved later, by ``codegen.schema_of``, because they
may name classes defined further down the module.
"""

from __future__ import annotations

import contextvars
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

from ._errors import DeclarationError
from ._function import Function

__all__ = ("CONNECTION_STATE", "RESERVED", "WorkerMeta", "declared_functions", "init_takes_arg",
           "install_declaration_check", "interactive_declaration", "is_worker_type", "location", "main_script", "main_source",
           "workers_in_module")

RESERVED = frozenset({
    "spawn", "serve", "connect", "spawn_in_foreground", "init_worker_state",
    "init_connection_state", "connection_state",
})

# the connection state of the call running in this thread or task (``Worker.connection_state``)
CONNECTION_STATE: contextvars.ContextVar[Any] = contextvars.ContextVar("rpc_parallel_connection_state")

# checks run when a worker class is created, installed by the schema layer (which this layer cannot import)
_DECLARATION_CHECKS: list[Callable[[type], None]] = []

# module name -> worker classes in definition order (a .proto file holds all of a module's workers)
_BY_MODULE: dict[str, list[type]] = {}


def location(obj: Any) -> str:
    """``file:line`` of a function or class, for error messages."""
    target = inspect.unwrap(obj) if callable(obj) else obj
    try:
        file = inspect.getsourcefile(target) or "<unknown>"
    except TypeError:
        file = "<unknown>"
    code = getattr(target, "__code__", None)
    if code is not None:
        return f"{file}:{code.co_firstlineno}"
    try:
        return f"{file}:{inspect.getsourcelines(target)[1]}"
    except (OSError, TypeError):
        return file


class _Namespace(dict[str, Any]):
    """A class-body namespace that refuses a second function with the same name."""

    def __init__(self, class_name: str) -> None:
        super().__init__()
        self._class_name = class_name

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, Function) and key in self and isinstance(self[key], Function):
            raise DeclarationError(
                f"{location(value.impl)}: in class {self._class_name}, function {key}: declared twice "
                f"(first at {location(self[key].impl)}); worker functions need distinct names")
        super().__setitem__(key, value)


class WorkerMeta(type):
    """Metaclass of ``rp.Worker``: validates the declaration and numbers its functions 1..n."""

    _rp_functions: tuple[Function[Any], ...]
    _rp_foreign: tuple[Function[Any], ...]
    _rp_proto_package: str | None
    _rp_abstract: bool

    @classmethod
    def __prepare__(mcs, name: str, bases: tuple[type, ...], /, **kwargs: Any) -> dict[str, Any]:
        return _Namespace(name)

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any],
                proto_package: str | None = None, _rp_abstract: bool = False, **kwargs: Any) -> WorkerMeta:
        cls = super().__new__(mcs, name, bases, dict(namespace), **kwargs)
        cls._rp_abstract = _rp_abstract  # a base class of the framework's (rp.MapFunction): no worker type
        inherited = [f for b in bases for f in getattr(b, "_rp_functions", ())]
        declared = [v for v in namespace.values() if isinstance(v, Function)]
        # rpcs implementing methods of an existing .proto service are not the worker type's own
        own = [f for f in declared if f.foreign is None]
        foreign = {f.name: f for b in bases for f in getattr(b, "_rp_foreign", ())}
        for f in declared:
            if f.foreign is not None:
                _check_function(name, f)
                same = [g for g in foreign.values() if g.foreign is not None and g.name != f.name
                        and g.foreign.method == f.foreign.method]
                if same:
                    raise DeclarationError(f"{location(f.impl)}: in class {name}, functions {same[0].name} and "
                                           f"{f.name} both implement {f.foreign.method}")
                foreign[f.name] = f
        cls._rp_foreign = tuple(foreign.values())
        functions: dict[str, Function[Any]] = {f.name: f for f in inherited if f.name not in foreign}
        for f in own:
            _check_function(name, f)
            functions[f.name] = f  # an override keeps the inherited position
        for i, f in enumerate(functions.values(), start=1):
            if f in own:
                f.id = i
        cls._rp_functions = tuple(functions.values())
        cls._rp_proto_package = proto_package or next(
            (getattr(b, "_rp_proto_package", None) for b in bases if getattr(b, "_rp_proto_package", None)), None)
        for init in ("init_worker_state", "init_connection_state"):
            if init in namespace:
                _check_init(name, init, namespace[init])
        if any(isinstance(b, WorkerMeta) for b in bases) and not _rp_abstract:
            _check_importable(cls)
            for check in _DECLARATION_CHECKS:
                check(cls)
            _BY_MODULE.setdefault(cls.__module__, []).append(cls)
        return cls


def _check_importable(cls: type) -> None:
    """A worker process finds its worker type by importing the module that declares it: refuse,
    when the class is created, a declaration no process could import."""
    if "<locals>" in cls.__qualname__:
        raise DeclarationError(
            f"{location(cls)}: worker type {cls.__qualname__} is declared inside a function; a worker process "
            "finds its worker type by importing its module, so declare worker types at the top level of a module")
    if cls.__module__ == "__main__" and main_source() == (None, None):
        raise DeclarationError(interactive_declaration(cls))


def _script_of_main() -> tuple[str, bytes] | None:
    """The path and source of the main script, if this process runs one (read when rpc_parallel
    is imported: the script may be renamed or deleted later, and workers still load it)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if getattr(getattr(main, "__spec__", None), "name", None) or not path or not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            return os.path.abspath(path), f.read()
    except OSError:
        return None


_MAIN_SCRIPT = _script_of_main()


def main_source() -> tuple[str | None, str | None]:
    """How this process's ``__main__`` was started: ``(module name, None)`` under ``python -m``,
    ``(None, absolute path)`` for a script file (also once renamed or deleted, if it was there when
    rpc_parallel was imported), ``(None, None)`` for an interactive session (the REPL, a notebook,
    ``python -c``, a script read from stdin)."""
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name:
        return str(name), None
    path = getattr(main, "__file__", None)
    if not path:
        return None, None
    path = os.path.abspath(path)
    kept = _MAIN_SCRIPT is not None and _MAIN_SCRIPT[0] == path
    return (None, path) if kept or os.path.isfile(path) else (None, None)


def main_script(path: str) -> bytes | None:
    """The source of the main script at ``path`` as it was when rpc_parallel was imported (None
    if it was not read then)."""
    return _MAIN_SCRIPT[1] if _MAIN_SCRIPT is not None and _MAIN_SCRIPT[0] == path else None


def interactive_declaration(cls: type) -> str:
    """The error for a worker type declared where no worker process can import it from."""
    return (f"worker type {cls.__qualname__} is declared in an interactive session (the REPL, a notebook cell, "
            "python -c or a script read from stdin), which a worker process cannot import: declare worker types "
            "in a module (a .py file) and import them, or run your program from a file")


def _check_function(class_name: str, f: Function[Any]) -> None:
    where = f"{location(f.impl)}: in class {class_name}, function {f.name}"
    if f.name in RESERVED:
        raise DeclarationError(f"{where}: '{f.name}' is a reserved name; reserved: {', '.join(sorted(RESERVED))}")
    if f.name.startswith("_"):
        raise DeclarationError(f"{where}: worker function names must not start with an underscore")
    params = list(inspect.signature(f.impl).parameters.values())
    if not params or params[0].kind not in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
        raise DeclarationError(f"{where}: a worker function must be a method taking self first")
    for p in params[1:]:
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise DeclarationError(f"{where}, parameter {p.name}: *args and **kwargs cannot be sent; "
                                   "declare each parameter")
    if f.foreign is not None and len(params) != 2:
        raise DeclarationError(f"{where}: it implements {f.foreign.method}, so it takes one parameter, the "
                               f"request message ({f.foreign.request.__name__}), after self")


def _check_init(class_name: str, name: str, impl: Callable[..., Any]) -> None:
    where = f"{location(impl)}: in class {class_name}, function {name}"
    if isinstance(impl, Function) or not callable(impl):
        raise DeclarationError(f"{where}: must be a plain method, not a worker function")
    params = list(inspect.signature(impl).parameters.values())[1:]
    if len(params) > 1 or any(p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD,
                                         inspect.Parameter.KEYWORD_ONLY) for p in params):
        got = ", ".join(p.name for p in params)
        raise DeclarationError(f"{where}: takes at most one argument besides self (got: {got}); "
                               "group several values in a dataclass")


def init_takes_arg(cls: type, name: str) -> bool:
    """Whether ``cls``'s ``init_worker_state``/``init_connection_state`` (``name``) takes an argument
    (the defaults do, and ignore it; a declared one may take none)."""
    return len(inspect.signature(getattr(cls, name)).parameters) > 1


def install_declaration_check(check: Callable[[type], None]) -> None:
    """Run ``check(cls)`` on every worker class when it is created (it raises to refuse it)."""
    _DECLARATION_CHECKS.append(check)


def is_worker_type(obj: object) -> bool:
    """Whether ``obj`` is a worker type: a subclass of ``rp.Worker`` (not that base class itself)."""
    return (isinstance(obj, WorkerMeta) and not obj._rp_abstract
            and any(isinstance(b, WorkerMeta) and not b._rp_abstract for b in obj.__mro__[1:]))


def declared_functions(cls: type) -> tuple[Function[Any], ...]:
    """The worker functions of ``cls`` in id order (its own service's)."""
    return getattr(cls, "_rp_functions", ())


def foreign_functions(cls: type) -> tuple[Function[Any], ...]:
    """The rpc functions of ``cls`` that implement methods of existing ``.proto`` services."""
    return getattr(cls, "_rp_foreign", ())


def workers_in_module(module: str) -> list[type]:
    """Worker classes declared in ``module``, in definition order."""
    return list(_BY_MODULE.get(module, ()))


def declared_workers() -> list[type]:
    """Every worker class declared in this process, latest first."""
    return [cls for classes in reversed(list(_BY_MODULE.values())) for cls in reversed(classes)]
