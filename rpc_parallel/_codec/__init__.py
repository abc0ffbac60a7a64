"""The runtime codec: Python values <-> the bytes of a worker type's protobuf messages.

This package owns four things, the first three driven by the schema model (``_schema``):

- the protobuf message classes of a ``FileSpec`` (``message_classes``): a fresh generated ``_pb2``
  module when one is importable, otherwise classes built from the same descriptors in a private pool;
- argument binding and deep type checks at the call site (``MethodCodec.bind``), and type checks of
  what a worker function returns or yields, so a wrong type is a ``TypeError`` naming the function;
- encoding and decoding of every request, response and stream message of the six function kinds,
  with large ``bytes`` values spliced around protobuf (``wire``, ``joined``, ``wire_size``);
- plain JSON <-> messages for callers without the worker's class, driven by message descriptors
  alone (``to_message``, ``to_plain``).

Everything is compiled once per method into closures chosen by field slot; a call does no
reflection over the model. Malformed or unexpected bytes raise ``ProtocolError``.

Each module imports only modules after it in this list (none imports this package):

- ``_service``: ``ServiceCodec`` (a worker type's methods and init messages) and ``codec_for``;
- ``_method``: ``MethodCodec``, binding and the messages of one function, by kind;
- ``_messages``: typed values in messages (one field, a value message, a batch) and decoders;
- ``_compiler``: field converters and message structs;
- ``_checks``: deep type checks and the error they raise;
- ``_splice``: large ``bytes`` values and the allocator warm-up;
- ``_classes``: message classes;
- ``_plain``: plain JSON <-> messages (imports nothing of the package).
"""

from ._classes import message_classes as message_classes
from ._method import MethodCodec as MethodCodec
from ._plain import (
    Defaults as Defaults,
    FieldDescriptor as FieldDescriptor,
    is_map as is_map,
    plain_field as plain_field,
    to_message as to_message,
    to_plain as to_plain,
)
from ._service import ServiceCodec as ServiceCodec, codec_for as codec_for
from ._splice import SPLICE_MIN as SPLICE_MIN, joined as joined, wire as wire, wire_size as wire_size

__all__ = (
    "SPLICE_MIN",
    "Defaults",
    "FieldDescriptor",
    "MethodCodec",
    "ServiceCodec",
    "codec_for",
    "is_map",
    "joined",
    "message_classes",
    "plain_field",
    "to_message",
    "to_plain",
    "wire",
    "wire_size",
)
