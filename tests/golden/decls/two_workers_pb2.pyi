from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_LOW: _ClassVar[Priority]
    PRIORITY_HIGH: _ClassVar[Priority]
PRIORITY_LOW: Priority
PRIORITY_HIGH: Priority

class Job(_message.Message):
    __slots__ = ("id", "payload", "priority")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    id: int
    payload: bytes
    priority: Priority
    def __init__(self, id: _Optional[int] = ..., payload: _Optional[bytes] = ..., priority: _Optional[_Union[Priority, str]] = ...) -> None: ...

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

class ProducerInit(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProducerConnectionInit(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProducerJobsRequest(_message.Message):
    __slots__ = ("n", "priority")
    N_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    n: int
    priority: Priority
    def __init__(self, n: _Optional[int] = ..., priority: _Optional[_Union[Priority, str]] = ...) -> None: ...

class ProducerJobsResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, items: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class ConsumerInit(_message.Message):
    __slots__ = ("arg",)
    ARG_FIELD_NUMBER: _ClassVar[int]
    arg: WorkerHandle
    def __init__(self, arg: _Optional[_Union[WorkerHandle, _Mapping]] = ...) -> None: ...

class ConsumerConnectionInit(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConsumerConsumeRequest(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class ConsumerConsumeResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: int
    def __init__(self, value: _Optional[int] = ...) -> None: ...

class ConsumerLastRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConsumerLastResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: Job
    def __init__(self, value: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...
