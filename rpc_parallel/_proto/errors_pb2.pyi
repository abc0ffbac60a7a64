from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorInfo(_message.Message):
    __slots__ = ("kind", "type", "message", "traceback", "worker_id", "worker_name", "size", "limit")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        REMOTE: _ClassVar[ErrorInfo.Kind]
        PROTOCOL: _ClassVar[ErrorInfo.Kind]
        TOO_LARGE: _ClassVar[ErrorInfo.Kind]
        CONNECTION_CLOSED: _ClassVar[ErrorInfo.Kind]
        BAD_REQUEST: _ClassVar[ErrorInfo.Kind]
        NOT_HOSTED: _ClassVar[ErrorInfo.Kind]
    REMOTE: ErrorInfo.Kind
    PROTOCOL: ErrorInfo.Kind
    TOO_LARGE: ErrorInfo.Kind
    CONNECTION_CLOSED: ErrorInfo.Kind
    BAD_REQUEST: ErrorInfo.Kind
    NOT_HOSTED: ErrorInfo.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRACEBACK_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    kind: ErrorInfo.Kind
    type: str
    message: str
    traceback: str
    worker_id: str
    worker_name: str
    size: int
    limit: int
    def __init__(self, kind: _Optional[_Union[ErrorInfo.Kind, str]] = ..., type: _Optional[str] = ..., message: _Optional[str] = ..., traceback: _Optional[str] = ..., worker_id: _Optional[str] = ..., worker_name: _Optional[str] = ..., size: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...
