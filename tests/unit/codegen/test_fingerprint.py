"""Fingerprints: stable across processes, sensitive to what the wire depends on, and equal for
identical declarations (including the mirrors in generated clients)."""

from __future__ import annotations

import os
import subprocess

import pytest

from rpc_parallel.codegen import service_spec

from ._helpers import PYTHON, REPO
from .conftest import MakeModule

SCRIPT = """\
from rpc_parallel.codegen import service_spec
import tests.golden.decls.kinds as k, tests.golden.decls.types as t
print(service_spec(k.Kinds).fingerprint, service_spec(t.Shapes).fingerprint)
"""

BASE = """\
from collections.abc import Iterator

import rpc_parallel as rp


class W(rp.Worker{package}):
    @rp.rpc
    def add(self, a: int, b: int) -> int:
        return a + b

    @rp.pipe
    def count(self, n: int) -> Iterator[int]:
        yield from range(n)

    @rp.rpc
    def note(self, line: str) -> None:
        pass
"""


def test_deterministic_across_processes_and_hash_seeds() -> None:
    import tests.golden.decls.kinds as k
    import tests.golden.decls.types as t

    here = f"{service_spec(k.Kinds).fingerprint} {service_spec(t.Shapes).fingerprint}"
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([PYTHON, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=30,
                             check=True)
        assert out.stdout.split() == here.split(), out.stderr


@pytest.mark.parametrize("change", [
    ("a: int, b: int", "a: int, b: float"),  # a parameter's type
    ("b: int)", "c: int)"),  # a parameter's name
    ("-> int:\n        return a + b", "-> int | None:\n        return a + b"),  # the result type
    ("@rp.rpc\n    def note", "@rp.one_way\n    def note"),  # a function's kind
    ("def count(self, n: int)", "def count(self, n: int, step: int = 1)"),  # a parameter added
])
def test_changes_that_alter_the_wire_change_it(make_module: MakeModule, change: tuple[str, str]) -> None:
    old, new = change
    source = BASE.format(package="")
    assert old in source
    before = service_spec(make_module(source).W)
    after = service_spec(make_module(source.replace(old, new)).W)
    assert before.fingerprint != after.fingerprint
    changed = [name for (name, fp), (_, fp2) in zip(before.function_fingerprints, after.function_fingerprints,
                                                    strict=True) if fp != fp2]
    assert len(changed) == 1


def test_declaration_order_changes_it(make_module: MakeModule) -> None:
    source = BASE.format(package="")
    add = source[source.index("    @rp.rpc"):source.index("    @rp.pipe")]
    swapped = source.replace(add, "") + "\n" + add
    before, after = service_spec(make_module(source).W), service_spec(make_module(swapped).W)
    assert [m.name for m in after.methods] == ["count", "note", "add"]
    assert before.fingerprint != after.fingerprint


def test_init_argument_types_change_it(make_module: MakeModule) -> None:
    source = BASE.format(package="")
    init = "    def init_worker_state(self, start: {t}) -> None:\n        pass\n\n"
    with_int = source.replace("    @rp.rpc", init.format(t="int") + "    @rp.rpc", 1)
    with_str = source.replace("    @rp.rpc", init.format(t="str") + "    @rp.rpc", 1)
    fingerprints = {service_spec(make_module(s).W).fingerprint for s in (source, with_int, with_str)}
    assert len(fingerprints) == 3


def test_identical_declarations_in_two_modules_agree(make_module: MakeModule) -> None:
    source = BASE.format(package=', proto_package="rpcpar.fingerprint.test"')
    a, b = service_spec(make_module(source).W), service_spec(make_module(source).W)
    assert a.py is not b.py
    assert a.fingerprint == b.fingerprint
    assert a.function_fingerprints == b.function_fingerprints


def test_implementation_details_do_not_change_it(make_module: MakeModule) -> None:
    source = BASE.format(package="")
    other = source.replace("return a + b", "return a * b").replace("    def add", "    async def add")
    assert service_spec(make_module(source).W).fingerprint == service_spec(make_module(other).W).fingerprint
