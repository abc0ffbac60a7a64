"""Golden tests: the generated ``.proto`` and typed client of each module in ``decls/`` must equal
the files committed next to it (the same files ``rpcpar gen --all --check`` verifies, so there is one
copy). ``--update-golden`` rewrites them, as ``make proto`` does."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rpc_parallel.codegen import check, file_descriptor, file_spec, generate, write

EXPECTED = Path(__file__).parents[2]  # the root the decls modules are imported from
MODULES = ["tests.golden.decls.kinds", "tests.golden.decls.types", "tests.golden.decls.two_workers"]
GOLDEN_SUFFIXES = (".proto", "_rpcpar.py")


@pytest.mark.parametrize("module", MODULES)
def test_generated_files_match_expected(module: str, update_golden: bool) -> None:
    files = [f for f in generate(module) if f.path.name.endswith(GOLDEN_SUFFIXES)]
    assert len(files) == 2
    if update_golden:
        write(files, EXPECTED)
    problems = check(files, EXPECTED)
    assert not problems, "\n".join([*problems, "(run `pytest tests/golden --update-golden` to accept the change)"])


@pytest.fixture
def expected_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], types.ModuleType]]:
    """Import a committed ``_rpcpar.py`` under a private name (the asyncio API may not exist yet)."""
    if importlib.util.find_spec("rpc_parallel.aio") is None:
        monkeypatch.setitem(sys.modules, "rpc_parallel.aio", types.ModuleType("rpc_parallel.aio"))
    loaded: list[str] = []

    def load(module: str) -> types.ModuleType:
        path = EXPECTED / (module.replace(".", "/") + "_rpcpar.py")
        name = f"_golden_{module.replace('.', '_')}_rpcpar"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        client = importlib.util.module_from_spec(spec)
        sys.modules[name] = client
        loaded.append(name)
        spec.loader.exec_module(client)
        return client

    yield load
    for name in loaded:
        sys.modules.pop(name, None)


@pytest.mark.parametrize("module", MODULES)
def test_expected_client_mirrors_the_declarations(module: str, expected_client: Callable[[str], types.ModuleType]) -> None:
    importlib.import_module(module)
    original = file_spec(module)
    mirror = file_spec(expected_client(module).__name__)
    assert [s.fingerprint for s in mirror.services] == [s.fingerprint for s in original.services]
    assert file_descriptor(mirror).SerializeToString() == file_descriptor(original).SerializeToString()
