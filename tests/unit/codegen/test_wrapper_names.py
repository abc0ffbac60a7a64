"""Wrapper message names follow the boxed shape, and different shapes never share a name."""

from __future__ import annotations

import sys
import types

from rpc_parallel._schema import file_spec

SOURCE = '''
from __future__ import annotations
import rpc_parallel as rp

class Shapes(rp.Worker):
    @rp.rpc
    def f(self, a: dict[str, list[int | None]], b: list[list[int] | None], c: list[int] | None) -> None: ...
'''


def test_optional_list_and_list_of_optionals_get_distinct_wrappers() -> None:
    module = types.ModuleType("wrapper_names_decl")
    sys.modules[module.__name__] = module
    try:
        exec(compile(SOURCE, "<wrapper_names_decl>", "exec"), module.__dict__)
        spec = file_spec(module.__name__)
    finally:
        del sys.modules[module.__name__]
    wrappers = {m.name: m.fields[0] for m in spec.messages if m.role == "wrapper"}
    # a: list[int | None] boxed as a map value; int | None boxed as a list element
    assert wrappers["IntOptionalList"].name == "items"
    assert wrappers["IntOptional"].name == "value"
    # b: list[int] | None boxed as a list element, whose inner list[int] is boxed too
    assert wrappers["IntListOptional"].name == "value"
    assert wrappers["IntList"].name == "items"
