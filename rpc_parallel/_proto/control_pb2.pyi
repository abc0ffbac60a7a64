from rpc_parallel._proto import errors_pb2 as _errors_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ShutdownOn(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SHUTDOWN_ON_HEARTBEATER_TIMEOUT: _ClassVar[ShutdownOn]
    SHUTDOWN_ON_CONNECTION_CLOSED: _ClassVar[ShutdownOn]
    SHUTDOWN_ON_CALLED_SHUTDOWN_FUNCTION: _ClassVar[ShutdownOn]
SHUTDOWN_ON_HEARTBEATER_TIMEOUT: ShutdownOn
SHUTDOWN_ON_CONNECTION_CLOSED: ShutdownOn
SHUTDOWN_ON_CALLED_SHUTDOWN_FUNCTION: ShutdownOn

class InitWorkerRequest(_message.Message):
    __slots__ = ("worker_id", "arg", "shutdown_on", "connection_timeout")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ARG_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_ON_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    arg: bytes
    shutdown_on: ShutdownOn
    connection_timeout: float
    def __init__(self, worker_id: _Optional[str] = ..., arg: _Optional[bytes] = ..., shutdown_on: _Optional[_Union[ShutdownOn, str]] = ..., connection_timeout: _Optional[float] = ...) -> None: ...

class InitWorkerReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class OpenConnectionRequest(_message.Message):
    __slots__ = ("worker_id", "fingerprint", "functions", "arg", "service")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    FUNCTIONS_FIELD_NUMBER: _ClassVar[int]
    ARG_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    fingerprint: str
    functions: _containers.RepeatedCompositeFieldContainer[FunctionFingerprint]
    arg: bytes
    service: str
    def __init__(self, worker_id: _Optional[str] = ..., fingerprint: _Optional[str] = ..., functions: _Optional[_Iterable[_Union[FunctionFingerprint, _Mapping]]] = ..., arg: _Optional[bytes] = ..., service: _Optional[str] = ...) -> None: ...

class FunctionFingerprint(_message.Message):
    __slots__ = ("name", "fingerprint")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    name: str
    fingerprint: str
    def __init__(self, name: _Optional[str] = ..., fingerprint: _Optional[str] = ...) -> None: ...

class ConnectionEvent(_message.Message):
    __slots__ = ("connection_id",)
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    def __init__(self, connection_id: _Optional[str] = ...) -> None: ...

class ShutdownRequest(_message.Message):
    __slots__ = ("worker_id",)
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ...) -> None: ...

class ShutdownReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CloseServerRequest(_message.Message):
    __slots__ = ("worker_id",)
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ...) -> None: ...

class CloseServerReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SettingsRequest(_message.Message):
    __slots__ = ("worker_id",)
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ...) -> None: ...

class SettingsReply(_message.Message):
    __slots__ = ("settings_json",)
    SETTINGS_JSON_FIELD_NUMBER: _ClassVar[int]
    settings_json: str
    def __init__(self, settings_json: _Optional[str] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ("worker_id",)
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ...) -> None: ...

class DescribeReply(_message.Message):
    __slots__ = ("file_descriptor", "service", "functions", "message_defaults")
    FILE_DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    FUNCTIONS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    file_descriptor: bytes
    service: str
    functions: _containers.RepeatedCompositeFieldContainer[FunctionKind]
    message_defaults: _containers.RepeatedCompositeFieldContainer[MessageDefaults]
    def __init__(self, file_descriptor: _Optional[bytes] = ..., service: _Optional[str] = ..., functions: _Optional[_Iterable[_Union[FunctionKind, _Mapping]]] = ..., message_defaults: _Optional[_Iterable[_Union[MessageDefaults, _Mapping]]] = ...) -> None: ...

class MessageDefaults(_message.Message):
    __slots__ = ("message", "defaulted", "defaults")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DEFAULTED_FIELD_NUMBER: _ClassVar[int]
    DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    message: str
    defaulted: _containers.RepeatedScalarFieldContainer[str]
    defaults: bytes
    def __init__(self, message: _Optional[str] = ..., defaulted: _Optional[_Iterable[str]] = ..., defaults: _Optional[bytes] = ...) -> None: ...

class FunctionKind(_message.Message):
    __slots__ = ("name", "method", "kind", "updates_param", "defaulted", "defaults")
    NAME_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    UPDATES_PARAM_FIELD_NUMBER: _ClassVar[int]
    DEFAULTED_FIELD_NUMBER: _ClassVar[int]
    DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    method: str
    kind: str
    updates_param: str
    defaulted: _containers.RepeatedScalarFieldContainer[str]
    defaults: bytes
    def __init__(self, name: _Optional[str] = ..., method: _Optional[str] = ..., kind: _Optional[str] = ..., updates_param: _Optional[str] = ..., defaulted: _Optional[_Iterable[str]] = ..., defaults: _Optional[bytes] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("worker_id",)
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ...) -> None: ...

class WatchEvent(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LogsRequest(_message.Message):
    __slots__ = ("worker_id", "level")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    level: int
    def __init__(self, worker_id: _Optional[str] = ..., level: _Optional[int] = ...) -> None: ...

class LogRecord(_message.Message):
    __slots__ = ("time", "level", "logger", "message", "worker_id", "worker_name")
    TIME_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    LOGGER_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_NAME_FIELD_NUMBER: _ClassVar[int]
    time: float
    level: int
    logger: str
    message: str
    worker_id: str
    worker_name: str
    def __init__(self, time: _Optional[float] = ..., level: _Optional[int] = ..., logger: _Optional[str] = ..., message: _Optional[str] = ..., worker_id: _Optional[str] = ..., worker_name: _Optional[str] = ...) -> None: ...

class LogRecords(_message.Message):
    __slots__ = ("records", "dropped")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[LogRecord]
    dropped: int
    def __init__(self, records: _Optional[_Iterable[_Union[LogRecord, _Mapping]]] = ..., dropped: _Optional[int] = ...) -> None: ...

class PipelineCall(_message.Message):
    __slots__ = ("id", "method", "request")
    ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    id: int
    method: str
    request: bytes
    def __init__(self, id: _Optional[int] = ..., method: _Optional[str] = ..., request: _Optional[bytes] = ...) -> None: ...

class PipelineRequests(_message.Message):
    __slots__ = ("calls", "cancel")
    CALLS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[PipelineCall]
    cancel: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, calls: _Optional[_Iterable[_Union[PipelineCall, _Mapping]]] = ..., cancel: _Optional[_Iterable[int]] = ...) -> None: ...

class PipelineResult(_message.Message):
    __slots__ = ("id", "reply", "more", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: int
    reply: bytes
    more: bool
    error: _errors_pb2.ErrorInfo
    def __init__(self, id: _Optional[int] = ..., reply: _Optional[bytes] = ..., more: _Optional[bool] = ..., error: _Optional[_Union[_errors_pb2.ErrorInfo, _Mapping]] = ...) -> None: ...

class PipelineReplies(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[PipelineResult]
    def __init__(self, results: _Optional[_Iterable[_Union[PipelineResult, _Mapping]]] = ...) -> None: ...

class SplicedHeader(_message.Message):
    __slots__ = ("method", "message", "fields")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    method: str
    message: bytes
    fields: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, method: _Optional[str] = ..., message: _Optional[bytes] = ..., fields: _Optional[_Iterable[int]] = ...) -> None: ...
