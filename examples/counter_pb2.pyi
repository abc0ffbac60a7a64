from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Point(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class CounterInit(_message.Message):
    __slots__ = ("arg",)
    ARG_FIELD_NUMBER: _ClassVar[int]
    arg: int
    def __init__(self, arg: _Optional[int] = ...) -> None: ...

class CounterConnectionInit(_message.Message):
    __slots__ = ("arg",)
    ARG_FIELD_NUMBER: _ClassVar[int]
    arg: str
    def __init__(self, arg: _Optional[str] = ...) -> None: ...

class CounterIncrRequest(_message.Message):
    __slots__ = ("by",)
    BY_FIELD_NUMBER: _ClassVar[int]
    by: int
    def __init__(self, by: _Optional[int] = ...) -> None: ...

class CounterIncrResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: int
    def __init__(self, value: _Optional[int] = ...) -> None: ...

class CounterWhoamiRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CounterWhoamiResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: str
    def __init__(self, value: _Optional[str] = ...) -> None: ...

class CounterLogRequest(_message.Message):
    __slots__ = ("line",)
    LINE_FIELD_NUMBER: _ClassVar[int]
    line: str
    def __init__(self, line: _Optional[str] = ...) -> None: ...

class CounterLogResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CounterLoggedRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CounterLoggedResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, value: _Optional[_Iterable[str]] = ...) -> None: ...

class CounterCountToRequest(_message.Message):
    __slots__ = ("n",)
    N_FIELD_NUMBER: _ClassVar[int]
    n: int
    def __init__(self, n: _Optional[int] = ...) -> None: ...

class CounterCountToResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, items: _Optional[_Iterable[int]] = ...) -> None: ...

class CounterWatchRequest(_message.Message):
    __slots__ = ("n",)
    N_FIELD_NUMBER: _ClassVar[int]
    n: int
    def __init__(self, n: _Optional[int] = ...) -> None: ...

class CounterWatchResponse(_message.Message):
    __slots__ = ("state", "updates")
    STATE_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    state: int
    updates: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, state: _Optional[int] = ..., updates: _Optional[_Iterable[int]] = ...) -> None: ...

class CounterTicksRequest(_message.Message):
    __slots__ = ("n", "every")
    N_FIELD_NUMBER: _ClassVar[int]
    EVERY_FIELD_NUMBER: _ClassVar[int]
    n: int
    every: float
    def __init__(self, n: _Optional[int] = ..., every: _Optional[float] = ...) -> None: ...

class CounterTicksResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Point]
    def __init__(self, items: _Optional[_Iterable[_Union[Point, _Mapping]]] = ...) -> None: ...

class CounterTotalOfRequest(_message.Message):
    __slots__ = ("updates", "scale")
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    updates: _containers.RepeatedScalarFieldContainer[int]
    scale: int
    def __init__(self, updates: _Optional[_Iterable[int]] = ..., scale: _Optional[int] = ...) -> None: ...

class CounterTotalOfResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: int
    def __init__(self, value: _Optional[int] = ...) -> None: ...

class CounterBoomRequest(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class CounterBoomResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CounterSlowDoubleRequest(_message.Message):
    __slots__ = ("x", "delay")
    X_FIELD_NUMBER: _ClassVar[int]
    DELAY_FIELD_NUMBER: _ClassVar[int]
    x: int
    delay: float
    def __init__(self, x: _Optional[int] = ..., delay: _Optional[float] = ...) -> None: ...

class CounterSlowDoubleResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: int
    def __init__(self, value: _Optional[int] = ...) -> None: ...
