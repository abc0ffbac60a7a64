# mypy: disable-error-code="empty-body"
"""Worker declarations exercising every type shape and function kind, for the codec tests."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

import rpc_parallel as rp


class Color(enum.Enum):
    RED = "r"
    GREEN = "g"
    BLUE = "b"


@dataclass
class Point:
    x: float
    y: float


@dataclass
class Empty:
    pass


@dataclass
class Value:
    """Named like a union's oneof: its case is value_case."""

    v: int


@dataclass
class Tree:
    value: int
    children: list[Tree] = field(default_factory=list)
    parent: Tree | None = None


@dataclass
class Derived:
    a: int
    doubled: int = field(init=False)

    def __post_init__(self) -> None:
        self.doubled = self.a * 2


@dataclass(frozen=True)
class Positive:
    n: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError(f"n must be positive, got {self.n}")


@dataclass
class Everything:
    i: int
    f: float
    b: bool
    s: str
    raw: bytes
    color: Color
    maybe_int: int | None
    maybe_color: Color | None
    maybe_point: Point | None
    ints: list[int]
    words: tuple[str, ...]
    nested: list[list[int]]
    optionals: list[int | None]
    dict_of_lists: dict[str, list[int]]
    by_id: dict[int, Point]
    maybe_list: list[int] | None
    colors: list[Color]
    pickled: rp.Pickled[set[int]]
    handle: rp.WorkerHandle | None


class Codec(rp.Worker):
    def init_worker_state(self, start: int) -> None: ...

    def init_connection_state(self, who: Point | None) -> None: ...

    @rp.rpc
    def incr(self, by: int) -> int: ...

    @rp.rpc
    def everything(self, e: Everything) -> Everything: ...

    @rp.rpc
    def mixed(self, a: int, b: str = "x", *, c: float = 1.5) -> None: ...

    @rp.rpc
    def posonly(self, a: int, /, b: int) -> int: ...

    @rp.rpc
    def kwonly(self, a: int, *, b: int, c: int) -> int: ...

    @rp.rpc
    def three(self, a: int, b: int, c: int) -> int: ...

    @rp.one_way
    def log(self, line: str) -> None: ...

    @rp.pipe
    def count_to(self, n: int) -> Iterator[int]: ...

    @rp.pipe
    def points(self, n: int) -> Iterator[Point | None]: ...

    @rp.state
    def watch(self) -> tuple[int, Iterator[str]]: ...

    @rp.state
    def watch_point(self, p: Point) -> tuple[Point | None, Iterator[Color]]: ...

    @rp.state
    def watch_list(self) -> tuple[list[int], Iterator[int]]: ...

    @rp.state
    def watch_none(self) -> tuple[None, Iterator[int]]: ...

    @rp.direct_pipe
    def ticks(self, writer: rp.DirectWriter[float], every: float) -> None: ...

    @rp.reverse_pipe
    def total_of(self, updates: Iterator[int], scale: int) -> int: ...

    @rp.reverse_pipe
    def collect(self, scale: int, updates: Iterator[Point]) -> None: ...

    @rp.rpc
    def tree(self, t: Tree) -> Tree: ...

    @rp.rpc
    def maybe(self, x: int | None, xs: list[int] | None, p: Point | None) -> dict[str, list[int | None]]: ...

    @rp.rpc
    def maps(self, m: dict[str, int], colors: dict[int, Color]) -> dict[str, dict[str, int]]: ...

    @rp.rpc
    def pick(self, v: rp.Pickled[set[int]]) -> rp.Pickled[object]: ...

    @rp.rpc
    def handle(self, h: rp.WorkerHandle) -> rp.WorkerHandle: ...

    @rp.rpc
    def empty(self, e: Empty, d: Derived) -> Empty: ...

    @rp.rpc
    def positive(self, p: Positive) -> Positive: ...

    @rp.rpc
    def floats(self, xs: list[float], maybe: float | None) -> float: ...

    @rp.rpc
    def raw(self, b: bytes, bs: list[bytes]) -> bytes: ...

    @rp.rpc
    def optional_points(self, ps: list[Point | None]) -> tuple[Point | None, ...]: ...

    @rp.rpc
    def list_of_maps(self, ms: list[dict[str, int]]) -> list[tuple[int, ...]]: ...

    @rp.rpc
    def maybe_color(self, c: Color | None) -> Color: ...

    @rp.rpc
    def nothing(self) -> None: ...

    @rp.rpc
    def pickles(self, xs: list[rp.Pickled[object]], m: dict[str, rp.Pickled[object]],
                o: rp.Pickled[object] | None) -> None: ...

    @rp.rpc
    def sparse(self, m: dict[str, int | None], lo: list[list[str] | None],
               deep: list[list[int]] | None) -> dict[int, list[Point]]: ...

    @rp.rpc
    def fixed(self, p: tuple[int, str, Point | None]) -> tuple[float, ...] | tuple[int, int]: ...

    @rp.rpc
    def choice(self, v: int | float | bool | str | bytes | Color | Point | list[int] | tuple[int, ...]
               | dict[str, int] | tuple[str, int]) -> list[int | str | None]: ...

    @rp.rpc
    def pickled_or_int(self, v: int | rp.Pickled[object], o: list[str] | Point | None = None) -> None: ...

    @rp.rpc
    def pickled_none(self, v: rp.Pickled[object] | int, t: tuple[rp.Pickled[object] | int, int]) -> rp.Pickled[object] | int: ...

    @rp.rpc
    def big_or_float(self, v: float | int) -> None: ...

    @rp.rpc
    def nested_tuples(self, row: tuple[int, tuple[str, ...]], rows: tuple[tuple[int, str], ...]) -> Value | int: ...
