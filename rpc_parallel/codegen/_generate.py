"""The codegen pipeline: a worker module's name -> the files ``rpcpar gen`` writes or checks.

One module gives ``<package path>.proto``, the protoc outputs beside it (``_pb2.py``, ``_pb2.pyi``,
``_pb2_grpc.py``) and the typed client ``<module>_rpcpar.py``, all as paths relative to the
``sys.path`` root the module was imported from.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .._errors import DeclarationError
from .._schema import FileSpec, file_descriptor, file_spec
from ._client import client_path, render_client
from ._proto_text import render_proto
from ._protoc import protoc

__all__ = ("GeneratedFile", "check", "compile_protos", "files_for", "generate", "import_module", "module_root", "write")


@dataclass(frozen=True)
class GeneratedFile:
    """One generated file: ``path`` relative to the output root, and its full text."""

    path: Path
    text: str


def import_module(module: str) -> object:
    """Import ``module`` by name, with the current directory on ``sys.path`` as ``python -m`` has it."""
    cwd = os.getcwd()
    if not any(entry in ("", cwd) or _same_dir(entry, cwd) for entry in sys.path):
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module == exc.name or module.startswith(exc.name + ".")):
            raise DeclarationError(f"cannot import module {module}: {exc} (run from the directory it is "
                                   "importable from, or set PYTHONPATH)") from None
        raise


def module_root(module: str) -> Path:
    """The ``sys.path`` root ``module`` was imported from (its generated files go under it)."""
    mod = sys.modules.get(module) or import_module(module)
    file = getattr(mod, "__file__", None)
    if file is None:
        raise DeclarationError(f"module {module} has no file; pass --out")
    path = Path(file).resolve()
    depth = module.count(".") + (1 if path.name == "__init__.py" else 0)
    return path.parents[depth]


def generate(module: str, out: Path | None = None) -> list[GeneratedFile]:
    """Generate every file for the worker types of ``module`` (imported by name).

    Paths are relative to the output root: ``out``, by default ``module_root(module)``; the texts do
    not depend on it (imports in the generated code follow the package path). Raises ``DeclarationError`` (or its subclass ``UnsupportedTypeError``)
    for an invalid declaration and ``ProtocError`` if protoc rejects the rendered ``.proto``.
    """
    import_module(module)
    return files_for(file_spec(module))


def files_for(spec: FileSpec) -> list[GeneratedFile]:
    """The generated files of one schema, sorted by path."""
    proto = render_proto(spec, file_descriptor(spec), spec.module)
    outputs = protoc({spec.proto_file: proto})
    files = [GeneratedFile(Path(spec.proto_file), proto), GeneratedFile(Path(client_path(spec)), render_client(spec))]
    files += [GeneratedFile(Path(rel), text) for rel, text in outputs.items()]
    return sorted(files, key=lambda f: f.path.as_posix())


def compile_protos(proto_root: Path) -> list[GeneratedFile]:
    """protoc outputs of every ``.proto`` under ``proto_root``, relative to the output root.

    Compiled as ``protoc -I<proto_root> --python_out=. --pyi_out=. --grpc_python_out=.`` from the
    output root, so ``proto/rpc_parallel/_proto/x.proto`` yields ``rpc_parallel/_proto/x_pb2.py``.
    """
    if not proto_root.is_dir():
        return []
    sources = {p.relative_to(proto_root).as_posix(): p.read_text(encoding="utf-8")
               for p in sorted(proto_root.rglob("*.proto"))}
    return [GeneratedFile(Path(rel), text) for rel, text in sorted(protoc(sources).items())]


def write(files: Iterable[GeneratedFile], out: Path) -> list[Path]:
    """Write ``files`` under ``out``; only files whose text changed are rewritten. Returns those."""
    written: list[Path] = []
    for f in files:
        target = out / f.path
        if target.is_file() and target.read_text(encoding="utf-8") == f.text:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f.text, encoding="utf-8")
        written.append(target)
    return written


def check(files: Sequence[GeneratedFile], out: Path, *, context: int = 2, max_diff_lines: int = 40,
          max_line: int = 160) -> list[str]:
    """Problems with the files under ``out``: one entry per missing or stale file.

    An entry starts with ``missing: <path>`` or ``stale: <path>``; a stale one then has a short
    unified diff of the file on disk against the expected text (at most ``max_diff_lines`` lines,
    each cut to ``max_line`` characters: ``_pb2.py`` files hold their descriptor on one line).
    """
    problems: list[str] = []
    for f in files:
        target = out / f.path
        if not target.is_file():
            problems.append(f"missing: {target}")
            continue
        actual = target.read_text(encoding="utf-8")
        if actual == f.text:
            continue
        diff = list(difflib.unified_diff(actual.splitlines(), f.text.splitlines(), f"{target} (on disk)",
                                         f"{target} (generated)", n=context, lineterm=""))
        diff = [line if len(line) <= max_line else line[:max_line] + "..." for line in diff]
        if len(diff) > max_diff_lines:
            diff = [*diff[:max_diff_lines], f"... ({len(diff) - max_diff_lines} more diff lines)"]
        problems.append("\n".join([f"stale: {target}", *diff]))
    return problems


def _same_dir(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
