from rpc_parallel._proto import control_pb2 as _control_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegisterRequest(_message.Message):
    __slots__ = ("worker_id", "address", "pid", "fingerprint", "functions", "code", "host")
    class CodeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    FUNCTIONS_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    address: str
    pid: int
    fingerprint: str
    functions: _containers.RepeatedCompositeFieldContainer[_control_pb2.FunctionFingerprint]
    code: _containers.ScalarMap[str, str]
    host: str
    def __init__(self, worker_id: _Optional[str] = ..., address: _Optional[str] = ..., pid: _Optional[int] = ..., fingerprint: _Optional[str] = ..., functions: _Optional[_Iterable[_Union[_control_pb2.FunctionFingerprint, _Mapping]]] = ..., code: _Optional[_Mapping[str, str]] = ..., host: _Optional[str] = ...) -> None: ...

class RegisterReply(_message.Message):
    __slots__ = ("proceed", "reason")
    PROCEED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    proceed: bool
    reason: str
    def __init__(self, proceed: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class FailureReport(_message.Message):
    __slots__ = ("worker_id", "worker_name", "type", "message", "traceback")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRACEBACK_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    worker_name: str
    type: str
    message: str
    traceback: str
    def __init__(self, worker_id: _Optional[str] = ..., worker_name: _Optional[str] = ..., type: _Optional[str] = ..., message: _Optional[str] = ..., traceback: _Optional[str] = ...) -> None: ...

class FailureAck(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("worker_id",)
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ...) -> None: ...

class HeartbeatReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IdentityRequest(_message.Message):
    __slots__ = ("worker_id", "ca")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    CA_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    ca: str
    def __init__(self, worker_id: _Optional[str] = ..., ca: _Optional[str] = ...) -> None: ...

class IdentityReply(_message.Message):
    __slots__ = ("found", "ca", "cert", "key", "server_name")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    CA_FIELD_NUMBER: _ClassVar[int]
    CERT_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    SERVER_NAME_FIELD_NUMBER: _ClassVar[int]
    found: bool
    ca: str
    cert: str
    key: str
    server_name: str
    def __init__(self, found: _Optional[bool] = ..., ca: _Optional[str] = ..., cert: _Optional[str] = ..., key: _Optional[str] = ..., server_name: _Optional[str] = ...) -> None: ...
