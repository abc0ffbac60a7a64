"""Fixtures of the codegen tests: declaration modules written to temporary files and imported."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import textwrap
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rpc_parallel import DeclarationError

MakeModule = Callable[..., types.ModuleType]


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeModule]:
    """``make_module(source, name=None)`` writes ``source`` to ``<tmp>/<name>.py`` and imports it.

    Names default to a fresh ``decl_<hex>`` so worker classes of different tests never share a
    module (a module's workers share one ``.proto``). Modules are removed from ``sys.modules`` after.
    """
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    created: list[str] = []

    def make(source: str, name: str | None = None, defer: bool = False) -> types.ModuleType:
        """``defer``: a ``DeclarationError`` raised by the import (when a class is defined) is kept
        as the ``declaration_error`` of a stand-in module with the same name and file."""
        name = name or f"decl_{uuid.uuid4().hex[:10]}"
        path = tmp_path / (name.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        importlib.invalidate_caches()
        sys.modules.pop(name, None)
        created.append(name)
        try:
            return importlib.import_module(name)
        except DeclarationError as exc:
            if not defer:
                raise
            stand_in = types.ModuleType(name)
            stand_in.__file__ = str(path)
            stand_in.declaration_error = exc  # type: ignore[attr-defined]
            return stand_in

    yield make
    for name in created:
        sys.modules.pop(name, None)


@pytest.fixture
def aio_stub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``from rpc_parallel import aio`` (in generated clients) work before the asyncio API exists."""
    if importlib.util.find_spec("rpc_parallel.aio") is None:
        monkeypatch.setitem(sys.modules, "rpc_parallel.aio", types.ModuleType("rpc_parallel.aio"))

