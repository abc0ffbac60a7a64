from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Shape(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SHAPE_CIRCLE: _ClassVar[Shape]
    SHAPE_SQUARE: _ClassVar[Shape]

class Unit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNIT_METRE: _ClassVar[Unit]
    UNIT_FOOT: _ClassVar[Unit]
SHAPE_CIRCLE: Shape
SHAPE_SQUARE: Shape
UNIT_METRE: Unit
UNIT_FOOT: Unit

class Corner(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: int
    y: int
    def __init__(self, x: _Optional[int] = ..., y: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("timeout", "send_every")
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    SEND_EVERY_FIELD_NUMBER: _ClassVar[int]
    timeout: float
    send_every: float
    def __init__(self, timeout: _Optional[float] = ..., send_every: _Optional[float] = ...) -> None: ...

class RpcSettings(_message.Message):
    __slots__ = ("max_message_size", "heartbeat", "handshake_timeout")
    MAX_MESSAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    HANDSHAKE_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    max_message_size: int
    heartbeat: Heartbeat
    handshake_timeout: float
    def __init__(self, max_message_size: _Optional[int] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., handshake_timeout: _Optional[float] = ...) -> None: ...

class WorkerHandle(_message.Message):
    __slots__ = ("worker_id", "address", "name", "settings", "token", "fingerprint", "pid", "ca", "host")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    CA_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    address: str
    name: str
    settings: RpcSettings
    token: str
    fingerprint: str
    pid: int
    ca: str
    host: str
    def __init__(self, worker_id: _Optional[str] = ..., address: _Optional[str] = ..., name: _Optional[str] = ..., settings: _Optional[_Union[RpcSettings, _Mapping]] = ..., token: _Optional[str] = ..., fingerprint: _Optional[str] = ..., pid: _Optional[int] = ..., ca: _Optional[str] = ..., host: _Optional[str] = ...) -> None: ...

class IntList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, items: _Optional[_Iterable[int]] = ...) -> None: ...

class FloatList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, items: _Optional[_Iterable[float]] = ...) -> None: ...

class StrUnitMap(_message.Message):
    __slots__ = ("items",)
    class ItemsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Unit
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Unit, str]] = ...) -> None: ...
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.ScalarMap[str, Unit]
    def __init__(self, items: _Optional[_Mapping[str, Unit]] = ...) -> None: ...

class IntOptional(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: int
    def __init__(self, value: _Optional[int] = ...) -> None: ...

class Box(_message.Message):
    __slots__ = ("shape", "corners", "meta", "grid", "lookup", "maybe_list", "list_of_maybe", "owner", "extra", "unit", "label", "scale")
    class MetaEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: IntList
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[IntList, _Mapping]] = ...) -> None: ...
    class LookupEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: StrUnitMap
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[StrUnitMap, _Mapping]] = ...) -> None: ...
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    CORNERS_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    GRID_FIELD_NUMBER: _ClassVar[int]
    LOOKUP_FIELD_NUMBER: _ClassVar[int]
    MAYBE_LIST_FIELD_NUMBER: _ClassVar[int]
    LIST_OF_MAYBE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    shape: Shape
    corners: _containers.RepeatedCompositeFieldContainer[Corner]
    meta: _containers.MessageMap[str, IntList]
    grid: _containers.RepeatedCompositeFieldContainer[FloatList]
    lookup: _containers.MessageMap[int, StrUnitMap]
    maybe_list: IntList
    list_of_maybe: _containers.RepeatedCompositeFieldContainer[IntOptional]
    owner: WorkerHandle
    extra: bytes
    unit: Unit
    label: str
    scale: float
    def __init__(self, shape: _Optional[_Union[Shape, str]] = ..., corners: _Optional[_Iterable[_Union[Corner, _Mapping]]] = ..., meta: _Optional[_Mapping[str, IntList]] = ..., grid: _Optional[_Iterable[_Union[FloatList, _Mapping]]] = ..., lookup: _Optional[_Mapping[int, StrUnitMap]] = ..., maybe_list: _Optional[_Union[IntList, _Mapping]] = ..., list_of_maybe: _Optional[_Iterable[_Union[IntOptional, _Mapping]]] = ..., owner: _Optional[_Union[WorkerHandle, _Mapping]] = ..., extra: _Optional[bytes] = ..., unit: _Optional[_Union[Unit, str]] = ..., label: _Optional[str] = ..., scale: _Optional[float] = ...) -> None: ...

class Tree(_message.Message):
    __slots__ = ("label", "children", "parent_label")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    PARENT_LABEL_FIELD_NUMBER: _ClassVar[int]
    label: str
    children: _containers.RepeatedCompositeFieldContainer[Tree]
    parent_label: str
    def __init__(self, label: _Optional[str] = ..., children: _Optional[_Iterable[_Union[Tree, _Mapping]]] = ..., parent_label: _Optional[str] = ...) -> None: ...

class IntCornerOptionalListMap(_message.Message):
    __slots__ = ("items",)
    class ItemsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: CornerOptionalList
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[CornerOptionalList, _Mapping]] = ...) -> None: ...
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.MessageMap[int, CornerOptionalList]
    def __init__(self, items: _Optional[_Mapping[int, CornerOptionalList]] = ...) -> None: ...

class CornerOptionalList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[CornerOptional]
    def __init__(self, items: _Optional[_Iterable[_Union[CornerOptional, _Mapping]]] = ...) -> None: ...

class CornerOptional(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: Corner
    def __init__(self, value: _Optional[_Union[Corner, _Mapping]] = ...) -> None: ...

class FloatTuple(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, items: _Optional[_Iterable[float]] = ...) -> None: ...

class StrTreeMap(_message.Message):
    __slots__ = ("items",)
    class ItemsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Tree
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Tree, _Mapping]] = ...) -> None: ...
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.MessageMap[str, Tree]
    def __init__(self, items: _Optional[_Mapping[str, Tree]] = ...) -> None: ...

class TreeOptional(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: Tree
    def __init__(self, value: _Optional[_Union[Tree, _Mapping]] = ...) -> None: ...

class StrCornerMap(_message.Message):
    __slots__ = ("items",)
    class ItemsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Corner
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Corner, _Mapping]] = ...) -> None: ...
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.MessageMap[str, Corner]
    def __init__(self, items: _Optional[_Mapping[str, Corner]] = ...) -> None: ...

class Value(_message.Message):
    __slots__ = ("v",)
    V_FIELD_NUMBER: _ClassVar[int]
    v: int
    def __init__(self, v: _Optional[int] = ...) -> None: ...

class FloatAndFloatTuple2(_message.Message):
    __slots__ = ("item_0", "item_1")
    ITEM_0_FIELD_NUMBER: _ClassVar[int]
    ITEM_1_FIELD_NUMBER: _ClassVar[int]
    item_0: float
    item_1: float
    def __init__(self, item_0: _Optional[float] = ..., item_1: _Optional[float] = ...) -> None: ...

class IntOrFloatOrStrUnion(_message.Message):
    __slots__ = ("int", "float", "str")
    INT_FIELD_NUMBER: _ClassVar[int]
    FLOAT_FIELD_NUMBER: _ClassVar[int]
    STR_FIELD_NUMBER: _ClassVar[int]
    int: int
    float: float
    str: str
    def __init__(self, int: _Optional[int] = ..., float: _Optional[float] = ..., str: _Optional[str] = ...) -> None: ...

class StrOrShapeUnion(_message.Message):
    __slots__ = ("str", "shape")
    STR_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    str: str
    shape: Shape
    def __init__(self, str: _Optional[str] = ..., shape: _Optional[_Union[Shape, str]] = ...) -> None: ...

class ValueOrIntUnion(_message.Message):
    __slots__ = ("value_case", "int")
    VALUE_CASE_FIELD_NUMBER: _ClassVar[int]
    INT_FIELD_NUMBER: _ClassVar[int]
    value_case: Value
    int: int
    def __init__(self, value_case: _Optional[_Union[Value, _Mapping]] = ..., int: _Optional[int] = ...) -> None: ...

class Reading(_message.Message):
    __slots__ = ("at", "value", "note", "tag")
    AT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    at: FloatAndFloatTuple2
    value: IntOrFloatOrStrUnion
    note: StrOrShapeUnion
    tag: ValueOrIntUnion
    def __init__(self, at: _Optional[_Union[FloatAndFloatTuple2, _Mapping]] = ..., value: _Optional[_Union[IntOrFloatOrStrUnion, _Mapping]] = ..., note: _Optional[_Union[StrOrShapeUnion, _Mapping]] = ..., tag: _Optional[_Union[ValueOrIntUnion, _Mapping]] = ...) -> None: ...

class IntOrStrOrCornerListOrCornerUnion(_message.Message):
    __slots__ = ("int", "str", "corner_list", "corner")
    INT_FIELD_NUMBER: _ClassVar[int]
    STR_FIELD_NUMBER: _ClassVar[int]
    CORNER_LIST_FIELD_NUMBER: _ClassVar[int]
    CORNER_FIELD_NUMBER: _ClassVar[int]
    int: int
    str: str
    corner_list: CornerList
    corner: Corner
    def __init__(self, int: _Optional[int] = ..., str: _Optional[str] = ..., corner_list: _Optional[_Union[CornerList, _Mapping]] = ..., corner: _Optional[_Union[Corner, _Mapping]] = ...) -> None: ...

class CornerList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Corner]
    def __init__(self, items: _Optional[_Iterable[_Union[Corner, _Mapping]]] = ...) -> None: ...

class StrAndShapeOptionalTuple2(_message.Message):
    __slots__ = ("item_0", "item_1")
    ITEM_0_FIELD_NUMBER: _ClassVar[int]
    ITEM_1_FIELD_NUMBER: _ClassVar[int]
    item_0: str
    item_1: Shape
    def __init__(self, item_0: _Optional[str] = ..., item_1: _Optional[_Union[Shape, str]] = ...) -> None: ...

class IntAndStrOptionalTuple2OrReadingUnion(_message.Message):
    __slots__ = ("int_and_str_optional_tuple2", "reading")
    INT_AND_STR_OPTIONAL_TUPLE2_FIELD_NUMBER: _ClassVar[int]
    READING_FIELD_NUMBER: _ClassVar[int]
    int_and_str_optional_tuple2: IntAndStrOptionalTuple2
    reading: Reading
    def __init__(self, int_and_str_optional_tuple2: _Optional[_Union[IntAndStrOptionalTuple2, _Mapping]] = ..., reading: _Optional[_Union[Reading, _Mapping]] = ...) -> None: ...

class IntAndStrOptionalTuple2(_message.Message):
    __slots__ = ("item_0", "item_1")
    ITEM_0_FIELD_NUMBER: _ClassVar[int]
    ITEM_1_FIELD_NUMBER: _ClassVar[int]
    item_0: int
    item_1: str
    def __init__(self, item_0: _Optional[int] = ..., item_1: _Optional[str] = ...) -> None: ...

class ShapesInit(_message.Message):
    __slots__ = ("arg",)
    class ArgEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Box
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Box, _Mapping]] = ...) -> None: ...
    ARG_FIELD_NUMBER: _ClassVar[int]
    arg: _containers.MessageMap[str, Box]
    def __init__(self, arg: _Optional[_Mapping[str, Box]] = ...) -> None: ...

class ShapesConnectionInit(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ShapesGetRequest(_message.Message):
    __slots__ = ("name", "default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    default: Box
    def __init__(self, name: _Optional[str] = ..., default: _Optional[_Union[Box, _Mapping]] = ...) -> None: ...

class ShapesGetResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: Box
    def __init__(self, value: _Optional[_Union[Box, _Mapping]] = ...) -> None: ...

class ShapesTreeRequest(_message.Message):
    __slots__ = ("depth", "shapes")
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    SHAPES_FIELD_NUMBER: _ClassVar[int]
    depth: int
    shapes: _containers.RepeatedScalarFieldContainer[Shape]
    def __init__(self, depth: _Optional[int] = ..., shapes: _Optional[_Iterable[_Union[Shape, str]]] = ...) -> None: ...

class ShapesTreeResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: Tree
    def __init__(self, value: _Optional[_Union[Tree, _Mapping]] = ...) -> None: ...

class ShapesNestedRequest(_message.Message):
    __slots__ = ("m", "o")
    class MEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: IntCornerOptionalListMap
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[IntCornerOptionalListMap, _Mapping]] = ...) -> None: ...
    M_FIELD_NUMBER: _ClassVar[int]
    O_FIELD_NUMBER: _ClassVar[int]
    m: _containers.MessageMap[str, IntCornerOptionalListMap]
    o: FloatTuple
    def __init__(self, m: _Optional[_Mapping[str, IntCornerOptionalListMap]] = ..., o: _Optional[_Union[FloatTuple, _Mapping]] = ...) -> None: ...

class ShapesNestedResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedCompositeFieldContainer[StrTreeMap]
    def __init__(self, value: _Optional[_Iterable[_Union[StrTreeMap, _Mapping]]] = ...) -> None: ...

class ShapesWalkRequest(_message.Message):
    __slots__ = ("root",)
    ROOT_FIELD_NUMBER: _ClassVar[int]
    root: Tree
    def __init__(self, root: _Optional[_Union[Tree, _Mapping]] = ...) -> None: ...

class ShapesWalkResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[TreeOptional]
    def __init__(self, items: _Optional[_Iterable[_Union[TreeOptional, _Mapping]]] = ...) -> None: ...

class ShapesCornersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ShapesCornersResponse(_message.Message):
    __slots__ = ("state", "updates")
    STATE_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    state: _containers.RepeatedCompositeFieldContainer[Corner]
    updates: _containers.RepeatedCompositeFieldContainer[StrCornerMap]
    def __init__(self, state: _Optional[_Iterable[_Union[Corner, _Mapping]]] = ..., updates: _Optional[_Iterable[_Union[StrCornerMap, _Mapping]]] = ...) -> None: ...

class ShapesPickRequest(_message.Message):
    __slots__ = ("choice", "pairs")
    CHOICE_FIELD_NUMBER: _ClassVar[int]
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    choice: IntOrStrOrCornerListOrCornerUnion
    pairs: _containers.RepeatedCompositeFieldContainer[StrAndShapeOptionalTuple2]
    def __init__(self, choice: _Optional[_Union[IntOrStrOrCornerListOrCornerUnion, _Mapping]] = ..., pairs: _Optional[_Iterable[_Union[StrAndShapeOptionalTuple2, _Mapping]]] = ...) -> None: ...

class ShapesPickResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: IntAndStrOptionalTuple2OrReadingUnion
    def __init__(self, value: _Optional[_Union[IntAndStrOptionalTuple2OrReadingUnion, _Mapping]] = ...) -> None: ...
