from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODE_FAST: _ClassVar[Mode]
    MODE_SAFE: _ClassVar[Mode]
MODE_FAST: Mode
MODE_SAFE: Mode

class Point(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

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

class KindsInit(_message.Message):
    __slots__ = ("arg",)
    ARG_FIELD_NUMBER: _ClassVar[int]
    arg: int
    def __init__(self, arg: _Optional[int] = ...) -> None: ...

class KindsConnectionInit(_message.Message):
    __slots__ = ("arg",)
    ARG_FIELD_NUMBER: _ClassVar[int]
    arg: str
    def __init__(self, arg: _Optional[str] = ...) -> None: ...

class KindsAddRequest(_message.Message):
    __slots__ = ("a", "b")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    a: int
    b: int
    def __init__(self, a: _Optional[int] = ..., b: _Optional[int] = ...) -> None: ...

class KindsAddResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: int
    def __init__(self, value: _Optional[int] = ...) -> None: ...

class KindsScaleRequest(_message.Message):
    __slots__ = ("p", "factor")
    P_FIELD_NUMBER: _ClassVar[int]
    FACTOR_FIELD_NUMBER: _ClassVar[int]
    p: Point
    factor: float
    def __init__(self, p: _Optional[_Union[Point, _Mapping]] = ..., factor: _Optional[float] = ...) -> None: ...

class KindsScaleResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: Point
    def __init__(self, value: _Optional[_Union[Point, _Mapping]] = ...) -> None: ...

class KindsEverythingRequest(_message.Message):
    __slots__ = ("i", "f", "flag", "s", "raw", "ints", "names", "by_name", "by_id", "maybe", "mode", "handle", "blob")
    class ByNameEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ByIdEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: Point
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[Point, _Mapping]] = ...) -> None: ...
    I_FIELD_NUMBER: _ClassVar[int]
    F_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    S_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    INTS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    BY_NAME_FIELD_NUMBER: _ClassVar[int]
    BY_ID_FIELD_NUMBER: _ClassVar[int]
    MAYBE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    BLOB_FIELD_NUMBER: _ClassVar[int]
    i: int
    f: float
    flag: bool
    s: str
    raw: bytes
    ints: _containers.RepeatedScalarFieldContainer[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    by_name: _containers.ScalarMap[str, float]
    by_id: _containers.MessageMap[int, Point]
    maybe: int
    mode: Mode
    handle: WorkerHandle
    blob: bytes
    def __init__(self, i: _Optional[int] = ..., f: _Optional[float] = ..., flag: _Optional[bool] = ..., s: _Optional[str] = ..., raw: _Optional[bytes] = ..., ints: _Optional[_Iterable[int]] = ..., names: _Optional[_Iterable[str]] = ..., by_name: _Optional[_Mapping[str, float]] = ..., by_id: _Optional[_Mapping[int, Point]] = ..., maybe: _Optional[int] = ..., mode: _Optional[_Union[Mode, str]] = ..., handle: _Optional[_Union[WorkerHandle, _Mapping]] = ..., blob: _Optional[bytes] = ...) -> None: ...

class KindsEverythingResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KindsLogRequest(_message.Message):
    __slots__ = ("line",)
    LINE_FIELD_NUMBER: _ClassVar[int]
    line: str
    def __init__(self, line: _Optional[str] = ...) -> None: ...

class KindsLogResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KindsAlogRequest(_message.Message):
    __slots__ = ("line", "level")
    LINE_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    line: str
    level: int
    def __init__(self, line: _Optional[str] = ..., level: _Optional[int] = ...) -> None: ...

class KindsAlogResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KindsCountToRequest(_message.Message):
    __slots__ = ("n",)
    N_FIELD_NUMBER: _ClassVar[int]
    n: int
    def __init__(self, n: _Optional[int] = ...) -> None: ...

class KindsCountToResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, items: _Optional[_Iterable[int]] = ...) -> None: ...

class KindsPointsRequest(_message.Message):
    __slots__ = ("n",)
    N_FIELD_NUMBER: _ClassVar[int]
    n: int
    def __init__(self, n: _Optional[int] = ...) -> None: ...

class KindsPointsResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Point]
    def __init__(self, items: _Optional[_Iterable[_Union[Point, _Mapping]]] = ...) -> None: ...

class KindsWatchRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KindsWatchResponse(_message.Message):
    __slots__ = ("state", "updates")
    STATE_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    state: int
    updates: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, state: _Optional[int] = ..., updates: _Optional[_Iterable[int]] = ...) -> None: ...

class KindsAwatchRequest(_message.Message):
    __slots__ = ("every",)
    EVERY_FIELD_NUMBER: _ClassVar[int]
    every: float
    def __init__(self, every: _Optional[float] = ...) -> None: ...

class KindsAwatchResponse(_message.Message):
    __slots__ = ("state", "updates")
    STATE_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    state: Point
    updates: _containers.RepeatedScalarFieldContainer[Mode]
    def __init__(self, state: _Optional[_Union[Point, _Mapping]] = ..., updates: _Optional[_Iterable[_Union[Mode, str]]] = ...) -> None: ...

class KindsTicksRequest(_message.Message):
    __slots__ = ("every",)
    EVERY_FIELD_NUMBER: _ClassVar[int]
    every: float
    def __init__(self, every: _Optional[float] = ...) -> None: ...

class KindsTicksResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, items: _Optional[_Iterable[int]] = ...) -> None: ...

class KindsAticksRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class KindsAticksResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, items: _Optional[_Iterable[str]] = ...) -> None: ...

class KindsTotalOfRequest(_message.Message):
    __slots__ = ("updates", "scale")
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    updates: _containers.RepeatedScalarFieldContainer[int]
    scale: int
    def __init__(self, updates: _Optional[_Iterable[int]] = ..., scale: _Optional[int] = ...) -> None: ...

class KindsTotalOfResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: int
    def __init__(self, value: _Optional[int] = ...) -> None: ...

class KindsConcatRequest(_message.Message):
    __slots__ = ("sep", "parts")
    SEP_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    sep: str
    parts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, sep: _Optional[str] = ..., parts: _Optional[_Iterable[str]] = ...) -> None: ...

class KindsConcatResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: str
    def __init__(self, value: _Optional[str] = ...) -> None: ...
