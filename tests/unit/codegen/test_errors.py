"""Invalid declarations: each error has the right type, names file:line, class, function and
parameter, and comes from our checks (never from inside protobuf or protoc)."""

from __future__ import annotations

import re
import types

import pytest

from rpc_parallel import DeclarationError, UnsupportedTypeError
from rpc_parallel.codegen import file_spec, generate

from ._helpers import assert_not_from_protobuf, line_of
from .conftest import MakeModule

HEADER = """\
import enum
from collections.abc import Iterator
from dataclasses import dataclass

import rpc_parallel as rp
"""


def generate_error(module: types.ModuleType, expected: type[Exception]) -> str:
    """The error of ``module``'s declaration: raised when its class was defined (``make_module(...,
    defer=True)`` kept it), or else by the whole pipeline. It must be an ``expected``; returns the
    message."""
    early = getattr(module, "declaration_error", None)
    if early is not None:
        assert isinstance(early, expected), early
        assert_not_from_protobuf(early)
        return str(early)
    with pytest.raises(expected) as info:
        generate(module.__name__)
    assert_not_from_protobuf(info.value)
    return str(info.value)


def assert_names(message: str, module: types.ModuleType | str, marker: str, *fragments: str) -> None:
    path = module if isinstance(module, str) else module.__file__
    assert path is not None
    assert re.search(f"{re.escape(path)}:{line_of(path, marker)}[:)]", message), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


@pytest.mark.parametrize("hint", ["set[int]", "tuple[()]", "tuple[int, None]", "int | set[int]",
                                  "dict[float, int]", "list", "list[set[int]]",
                                  "dict[str, int | set[int]] | None"])
def test_unsupported_parameter_type(make_module: MakeModule, hint: str) -> None:
    mod = make_module(HEADER + f"""
class W(rp.Worker):
    @rp.rpc  # here
    def f(self, ok: int, x: {hint}) -> int:
        return 0
""", defer=True)
    message = generate_error(mod, UnsupportedTypeError)
    assert_names(message, mod, "# here", "class W", "function f", "parameter x")
    assert "parameter ok" not in message


def test_unsupported_result_type(make_module: MakeModule) -> None:
    mod = make_module(HEADER + """
class W(rp.Worker):
    @rp.rpc  # here
    def f(self) -> set[int]:
        return set()
""", defer=True)
    assert_names(generate_error(mod, UnsupportedTypeError), mod, "# here", "class W", "function f", "the result")


def test_unsupported_dataclass_field(make_module: MakeModule) -> None:
    mod = make_module(HEADER + """
@dataclass  # here
class Bag:
    items: set[int]


class W(rp.Worker):
    @rp.rpc
    def f(self, bag: Bag) -> None: ...
""", defer=True)
    assert_names(generate_error(mod, UnsupportedTypeError), mod, "# here", "dataclass Bag", "field items", "set[int]")


def test_unsupported_init_argument(make_module: MakeModule) -> None:
    mod = make_module(HEADER + """
class W(rp.Worker):
    def init_worker_state(self, arg: frozenset[int]) -> None:  # here
        pass
""", defer=True)
    assert_names(generate_error(mod, UnsupportedTypeError), mod, "# here", "class W", "function init_worker_state",
                 "parameter arg")


def test_missing_annotation(make_module: MakeModule) -> None:
    mod = make_module(HEADER + """
class W(rp.Worker):
    @rp.rpc  # here
    def f(self, x, y: int) -> int:
        return 0
""", defer=True)
    message = generate_error(mod, DeclarationError)
    assert_names(message, mod, "# here", "class W", "function f", "parameter x", "missing type annotation")


def test_missing_return_annotation(make_module: MakeModule) -> None:
    mod = make_module(HEADER + """
class W(rp.Worker):
    @rp.rpc  # here
    def f(self, y: int):
        return 0
""", defer=True)
    assert_names(generate_error(mod, DeclarationError), mod, "# here", "class W", "function f", "return annotation")


def test_unresolvable_forward_reference(make_module: MakeModule) -> None:
    mod = make_module("from __future__ import annotations\n" + HEADER + """
class W(rp.Worker):
    @rp.rpc  # here
    def f(self, x: Missing) -> int:
        return 0
""", defer=True)
    assert_names(generate_error(mod, DeclarationError), mod, "# here", "class W", "function f", "Missing")


@pytest.mark.parametrize("name", ["spawn", "serve", "connect", "spawn_in_foreground", "connection_state",
                                  "init_worker_state", "init_connection_state"])
def test_reserved_names(make_module: MakeModule, name: str) -> None:
    with pytest.raises(DeclarationError) as info:
        make_module(HEADER + f"""
class W(rp.Worker):
    @rp.rpc  # here
    def {name}(self) -> int:
        return 0
""", name=f"decl_reserved_{name}")
    assert_not_from_protobuf(info.value)
    path = str(info.value).split(":", 1)[0]
    assert path.endswith(f"decl_reserved_{name}.py")
    assert_names(str(info.value), path, "# here", "class W", f"function {name}", "reserved")


def test_two_functions_with_one_name(make_module: MakeModule) -> None:
    with pytest.raises(DeclarationError) as info:
        make_module(HEADER + """
class W(rp.Worker):
    @rp.rpc  # first
    def f(self) -> int:
        return 0

    @rp.pipe  # here
    def f(self, n: int) -> Iterator[int]:
        yield n
""", name="decl_twice")
    message = str(info.value)
    path = message.split(":", 1)[0]
    assert_names(message, path, "# here", "class W", "function f", "declared twice", f"{path}:{line_of(path, '# first')}")


def test_pipe_must_return_an_iterator(make_module: MakeModule) -> None:
    mod = make_module(HEADER + """
class W(rp.Worker):
    @rp.pipe  # here
    def f(self, n: int) -> list[int]:
        return []
""", defer=True)
    assert_names(generate_error(mod, DeclarationError), mod, "# here", "class W", "function f", "iterator")


def test_state_must_return_a_pair(make_module: MakeModule) -> None:
    mod = make_module(HEADER + """
class W(rp.Worker):
    @rp.state  # here
    def f(self) -> int:
        return 0
""", defer=True)
    assert_names(generate_error(mod, DeclarationError), mod, "# here", "class W", "function f", "tuple[S, Iterator[U]]")


def test_direct_pipe_needs_a_writer(make_module: MakeModule) -> None:
    mod = make_module(HEADER + """
class W(rp.Worker):
    @rp.direct_pipe  # here
    def f(self, every: float) -> None:
        pass
""", defer=True)
    assert_names(generate_error(mod, DeclarationError), mod, "# here", "class W", "function f", "rp.DirectWriter[T]")


def test_reverse_pipe_needs_an_iterator_parameter(make_module: MakeModule) -> None:
    mod = make_module(HEADER + """
class W(rp.Worker):
    @rp.reverse_pipe  # here
    def f(self, x: int) -> int:
        return x
""", defer=True)
    assert_names(generate_error(mod, DeclarationError), mod, "# here", "class W", "function f", "Iterator[T]")


def test_iterator_parameter_outside_reverse_pipe(make_module: MakeModule) -> None:
    mod = make_module(HEADER + """
class W(rp.Worker):
    @rp.rpc  # here
    def f(self, xs: Iterator[int]) -> int:
        return 0
""", defer=True)
    assert_names(generate_error(mod, UnsupportedTypeError), mod, "# here", "class W", "function f", "parameter xs",
                 "reverse_pipe")


def test_init_worker_state_takes_at_most_one_argument(make_module: MakeModule) -> None:
    with pytest.raises(DeclarationError) as info:
        make_module(HEADER + """
class W(rp.Worker):
    def init_worker_state(self, a: int, b: int) -> None:  # here
        pass
""", name="decl_init_two")
    message = str(info.value)
    path = message.split(":", 1)[0]
    assert_names(message, path, "# here", "class W", "function init_worker_state", "at most one argument", "a, b")


def test_dataclasses_named_alike_from_two_modules(make_module: MakeModule) -> None:
    a = make_module(HEADER + """
@dataclass  # here
class Point:
    x: int
""", defer=True)
    b = make_module(HEADER + """
@dataclass  # here
class Point:
    x: float
""", defer=True)
    mod = make_module(HEADER + f"""
import {a.__name__} as a
import {b.__name__} as b


class W(rp.Worker):
    @rp.rpc
    def f(self, p: a.Point, q: b.Point) -> None: ...
""", defer=True)
    message = generate_error(mod, DeclarationError)
    assert_names(message, a, "# here", f"{a.__name__}.Point")
    assert_names(message, b, "# here", f"{b.__name__}.Point")


@pytest.mark.parametrize("name, signature", [
    ("WFRequest", "def f(self, r: WFRequest) -> None: ..."),  # the request message of W.f
    ("WFResponse", "def f(self) -> WFResponse: ..."),
    ("WInit", "def f(self, r: WInit) -> None: ..."),  # W's init_worker_state message
    ("IntList", "def f(self, r: IntList, grid: list[list[int]]) -> None: ..."),  # the wrapper of list[int]
    ("W", "def f(self, r: W) -> None: ..."),  # the service itself
])
def test_dataclass_named_like_a_generated_message(make_module: MakeModule, name: str, signature: str) -> None:
    mod = make_module(HEADER + f"""
@dataclass  # here
class {name}:
    x: int


class W(rp.Worker):
    @rp.rpc
    {signature}
""", defer=True)
    message = generate_error(mod, DeclarationError)
    assert_names(message, mod, "# here", f"'{name}'", f"dataclass {mod.__name__}.{name}")


def test_enum_without_members(make_module: MakeModule) -> None:
    mod = make_module(HEADER + """
class Empty(enum.Enum):
    pass


class W(rp.Worker):
    @rp.rpc  # here
    def f(self, e: Empty) -> None: ...
""", defer=True)
    assert_names(generate_error(mod, UnsupportedTypeError), mod, "# here", "function f", "parameter e", "no members")


@pytest.mark.parametrize("name", ["close", "connection", "aclose"])
def test_function_named_like_a_client_method(make_module: MakeModule, name: str) -> None:
    mod = make_module(HEADER + f"""
class W(rp.Worker):
    @rp.rpc  # here
    def {name}(self) -> None: ...
""", defer=True)
    assert_names(generate_error(mod, DeclarationError), mod, "# here", "class W", f"function {name}", "WClient")


def test_direct_pipe_parameter_named_on_update(make_module: MakeModule) -> None:
    mod = make_module(HEADER + """
class W(rp.Worker):
    @rp.direct_pipe  # here
    def f(self, writer: rp.DirectWriter[int], on_update: int) -> None: ...
""", defer=True)
    assert_names(generate_error(mod, DeclarationError), mod, "# here", "class W", "function f", "parameter on_update")


def test_declared_name_clashing_with_a_client_import(make_module: MakeModule) -> None:
    mod = make_module(HEADER + """
class Any(enum.Enum):
    A = 1


class W(rp.Worker):
    @rp.rpc
    def f(self, a: Any, blob: rp.Pickled[object]) -> None: ...
""", defer=True)
    message = generate_error(mod, DeclarationError)
    assert "Any" in message and "clashes" in message, message


def test_forward_references_with_future_annotations(make_module: MakeModule) -> None:
    mod = make_module("from __future__ import annotations\n" + HEADER + """
class W(rp.Worker):
    def init_worker_state(self, root: Node) -> None:
        self.root = root

    @rp.rpc
    def find(self, label: str, where: list[Node] | None = None) -> Node | None:
        return None


@dataclass
class Node:
    label: str
    children: list[Node]
    colour: Colour | None = None


class Colour(enum.Enum):
    RED = "red"
""")
    spec = file_spec(mod.__name__)
    assert [m.name for m in spec.messages][:1] == ["Node"]
    assert [e.name for e in spec.enums] == ["Colour"]
    generate(mod.__name__)


def test_reimported_module_replaces_its_classes(make_module: MakeModule) -> None:
    """A worker module executed again (reload, re-import) is described by its latest classes."""
    source = HEADER + """
class W(rp.Worker):
    @rp.rpc
    def f(self, x: {hint}) -> None: ...
"""
    first = make_module(source.format(hint="int"), name="decl_reimported")
    before = file_spec(first.__name__).services[0].fingerprint
    second = make_module(source.format(hint="float"), name="decl_reimported")
    after = file_spec(second.__name__)
    assert len(after.services) == 1 and after.services[0].py is second.W
    assert after.services[0].fingerprint != before


def test_dataclass_named_like_a_generated_client(make_module: MakeModule) -> None:
    mod = make_module(HEADER + """
@dataclass
class WClient:
    x: int


class W(rp.Worker):
    @rp.rpc
    def f(self, c: WClient) -> None: ...
""", defer=True)
    message = generate_error(mod, DeclarationError)
    assert f"dataclass {mod.__name__}.WClient" in message and "the generated client of W" in message, message


def test_an_unsupported_type_is_an_error_when_the_class_is_defined(make_module: MakeModule) -> None:
    with pytest.raises(UnsupportedTypeError, match="parameter x"):
        make_module(HEADER + """
class W(rp.Worker):
    @rp.rpc
    def f(self, x: set[int]) -> int:
        return 0
""")


def test_a_hint_naming_a_later_class_is_checked_at_first_use(make_module: MakeModule) -> None:
    mod = make_module("from __future__ import annotations\n" + HEADER + """
class W(rp.Worker):
    @rp.rpc
    def f(self, p: Later) -> int:
        return p.x

@dataclass
class Later:
    x: int
""")
    assert [p.name for p in file_spec(mod.__name__).service("W").methods[0].params] == ["p"]
