"""The layered layout's rules that import-linter (``make check``) does not see: no module of the
package imports inside a function, except the lazy ``rp.aio``/``rp.expert`` of the package root."""

from __future__ import annotations

import ast
from pathlib import Path

import rpc_parallel

ROOT = Path(rpc_parallel.__file__).parent
# module (relative path) -> functions allowed to import: the lazily loaded public tiers
ALLOWED = {"__init__.py": {"__getattr__"}}


def _function_imports(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[str] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
            elif isinstance(child, ast.Import | ast.ImportFrom) and function is not None:
                found.append(f"{function}:{child.lineno}")
            else:
                visit(child, function)

    visit(tree, None)
    allowed = ALLOWED.get(path.relative_to(root).as_posix(), set())
    return [f for f in found if f.split(":")[0] not in allowed]


def test_no_function_level_imports() -> None:
    modules = [p for p in ROOT.rglob("*.py") if not p.name.endswith(("_pb2.py", "_pb2_grpc.py"))]
    assert len(modules) > 40
    offenders = {p.relative_to(ROOT).as_posix(): hits for p in modules if (hits := _function_imports(p))}
    assert offenders == {}


def test_the_check_sees_a_function_level_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    import json\n    return json\n")
    assert _function_imports(module, tmp_path) == ["f:4"]
