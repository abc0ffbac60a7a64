"""Golden declarations: nested dataclasses and enums, nested optional/list/dict types, fixed tuples and
unions, forward references."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

import rpc_parallel as rp


class Shape(enum.IntEnum):
    CIRCLE = 1
    SQUARE = 4


class Unit(enum.Enum):
    METRE = (1, "m")  # not a simple literal: mirrored as enum.auto()
    FOOT = (2, "ft")


@dataclass
class Tree:
    """A recursive message."""

    label: str
    children: list[Tree] = field(default_factory=list)
    parent_label: str | None = None


@dataclass
class Box:
    shape: Shape
    corners: list[Corner]
    meta: dict[str, list[int]]
    grid: list[list[float]]
    lookup: dict[int, dict[str, Unit]]
    maybe_list: list[int] | None
    list_of_maybe: list[int | None]
    owner: rp.WorkerHandle | None
    extra: rp.Pickled[object]
    unit: Unit = Unit.METRE
    label: str = "box"
    scale: float = field(default=1.0, kw_only=True)


@dataclass(frozen=True)
class Corner:
    x: int
    y: int


@dataclass
class Value:
    """Named like a union's oneof (its case there is value_case)."""

    v: int


@dataclass
class Reading:
    """Fixed tuples and unions as fields, one with a default."""

    at: tuple[float, float]
    value: int | float | str
    note: str | Shape | None = None
    tag: Value | int | None = None


class Shapes(rp.Worker, proto_package="tests.golden.decls.types"):
    """Worker over nested types (proto_package repeats the default to cover the keyword)."""

    def init_worker_state(self, boxes: dict[str, Box]) -> None:
        self.boxes = boxes

    @rp.rpc
    def get(self, name: str, default: Box | None = None) -> Box | None:
        return self.boxes.get(name, default)

    @rp.rpc
    def tree(self, depth: int, shapes: tuple[Shape, ...] = ()) -> Tree:
        return Tree(str(depth))

    @rp.rpc
    def nested(self, m: dict[str, dict[int, list[Corner | None]]], o: tuple[float, ...] | None) -> list[dict[str, Tree]]:
        return []

    @rp.pipe
    def walk(self, root: Tree) -> Iterator[Tree | None]:
        yield root

    @rp.state
    def corners(self) -> tuple[list[Corner], Iterator[dict[str, Corner]]]:
        return [], iter(())

    @rp.rpc
    def pick(self, choice: int | str | list[Corner] | Corner, pairs: list[tuple[str, Shape | None]]
             ) -> tuple[int, str | None] | Reading:
        if isinstance(choice, str):
            return len(pairs), choice or None
        return Reading((0.0, 1.0), choice if isinstance(choice, int) else len(pairs), note=Shape.SQUARE)
