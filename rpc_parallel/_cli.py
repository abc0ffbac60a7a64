"""The ``rpcpar`` command line (click): one group, one section per command.

Errors the user can fix (an invalid declaration, protoc rejecting a file, a module that cannot be
imported) print ``rpcpar: <message>`` on stderr and exit 2, without a traceback.
"""

from __future__ import annotations

import functools
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from ._errors import DeclarationError, RpcParallelError

__all__ = ("main",)

EXIT_STALE = 1
EXIT_ERROR = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """rpcpar: run typed Python functions in worker processes, over gRPC."""


def fail(message: str) -> NoReturn:
    """Print ``rpcpar: message`` on stderr and exit 2."""
    click.echo(f"rpcpar: {message}", err=True)
    sys.exit(EXIT_ERROR)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn errors the user can fix into ``fail(...)`` instead of a traceback."""
    try:
        yield
    except RpcParallelError as exc:
        fail(str(exc))
    except (ImportError, SyntaxError) as exc:
        fail(f"{type(exc).__name__}: {exc}")


def find_project(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (default: cwd) holding a ``pyproject.toml``."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "pyproject.toml").is_file():
            return directory
    raise DeclarationError(f"no pyproject.toml in {here} or above")


def project_config(project: Path) -> dict[str, Any]:
    """The ``[tool.rpcpar]`` table of ``project``'s ``pyproject.toml`` (empty when absent)."""
    with open(project / "pyproject.toml", "rb") as f:
        data = tomllib.load(f)
    table = data.get("tool", {}).get("rpcpar", {})
    if not isinstance(table, dict):
        raise DeclarationError(f"{project / 'pyproject.toml'}: [tool.rpcpar] must be a table")
    return table


# -- gen ---------------------------------------------------------------------------------------


@main.command()
@click.argument("targets", nargs=-1, metavar="MODULE[:CLASS]...")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output root (default: the sys.path root each module is imported from).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a generated file is missing or stale.")
@click.option("--all", "all_", is_flag=True,
              help="Also every module of [tool.rpcpar] modules in pyproject.toml, and proto/**/*.proto "
                   "(compiled with -Iproto into the project root).")
def gen(targets: tuple[str, ...], out: Path | None, check: bool, all_: bool) -> None:
    """Generate the .proto, _pb2 stubs and typed client of each worker module.

    MODULE is a dotted module name (or a path to a .py file) importable from the current
    directory; one .proto holds every worker type of a module, so :CLASS only checks that CLASS
    is one of them. Files go next to the module unless --out is given.
    """
    from . import codegen

    if not targets and not all_:
        raise click.UsageError("name at least one MODULE, or pass --all")
    jobs: list[tuple[Path, Callable[[], list[codegen.GeneratedFile]]]] = []
    with user_errors():
        modules = [_parse_target(t) for t in targets]
        if all_:
            project = find_project()
            configured = project_config(project).get("modules", [])
            if not isinstance(configured, list) or not all(isinstance(m, str) for m in configured):
                raise DeclarationError(f"{project / 'pyproject.toml'}: [tool.rpcpar] modules must be a list "
                                       "of module names")
            _on_path(project)
            modules += [(m, None) for m in configured]
            proto_root = project / "proto"
            jobs.append((out or project, functools.partial(codegen.compile_protos, proto_root)))
        seen: set[str] = set()
        for module, cls in modules:
            if cls is not None:
                _check_class(module, cls)
            if module in seen:
                continue
            seen.add(module)
            jobs.append((out or codegen.module_root(module), functools.partial(codegen.generate, module)))

        problems: list[str] = []
        written: list[Path] = []
        for root, make in jobs:
            files = make()
            if check:
                problems += codegen.check(files, root)
            else:
                written += codegen.write(files, root)
    if check:
        for problem in problems:
            click.echo(problem)
        if problems:
            sys.exit(EXIT_STALE)
        click.echo("up to date")
        return
    for path in written:
        click.echo(f"wrote {path}")
    if not written:
        click.echo("up to date")


def _parse_target(target: str) -> tuple[str, str | None]:
    """``pkg.mod:Class`` or ``pkg/mod.py`` -> (module name, class name or None)."""
    module, _, cls = target.partition(":")
    if module.endswith(".py"):
        path = Path(module)
        if path.is_absolute() and path.is_relative_to(Path.cwd()):
            path = path.relative_to(Path.cwd())
        module = ".".join(path.with_suffix("").parts)
    if not module or not all(part.isidentifier() for part in module.split(".")):
        raise DeclarationError(f"not a module name: {target!r} (expected MODULE or MODULE:CLASS)")
    return module, cls or None


def _check_class(module: str, cls: str) -> None:
    from ._declaration import workers_in_module
    from .codegen import import_module

    import_module(module)
    names = [w.__name__ for w in workers_in_module(module)]
    if cls not in names:
        raise DeclarationError(f"module {module} has no worker type {cls} (it declares: {', '.join(names) or 'none'})")


def _on_path(root: Path) -> None:
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))


if __name__ == "__main__":
    main()
