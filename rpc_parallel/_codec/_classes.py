"""The protobuf message classes of a ``FileSpec``: a fresh generated ``_pb2`` module when one is
importable, otherwise classes built from the same descriptors in a private pool."""

from __future__ import annotations

import importlib
import threading

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message

from .._schema import FileSpec, file_descriptor

__all__ = ("message_classes",)

_CLASSES: dict[int, tuple[FileSpec, dict[str, type[Message]]]] = {}
_CLASSES_LOCK = threading.Lock()


def message_classes(spec: FileSpec) -> dict[str, type[Message]]:
    """The protobuf message classes of ``spec``, by message name (cached per ``FileSpec``).

    A generated ``<package>_pb2`` module is used when it is importable and its descriptor is
    byte-identical to ``spec``'s; otherwise the classes come from a private descriptor pool (never
    the default one, where the user's generated module may be imported later).
    """
    with _CLASSES_LOCK:
        hit = _CLASSES.get(id(spec))
        if hit is not None and hit[0] is spec:
            return hit[1]
        serialized = file_descriptor(spec).SerializeToString()
        classes = _generated_classes(spec, serialized)
        if classes is None:
            pool = descriptor_pool.DescriptorPool()
            pool.AddSerializedFile(serialized)
            prefix = f"{spec.package}." if spec.package else ""
            classes = {m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(prefix + m.name))
                       for m in spec.messages}
        _CLASSES[id(spec)] = (spec, classes)
        return classes


def _generated_classes(spec: FileSpec, serialized: bytes) -> dict[str, type[Message]] | None:
    name = spec.proto_file.removesuffix(".proto").replace("/", ".") + "_pb2"
    try:
        module = importlib.import_module(name)
    except Exception:  # absent, or present but broken (e.g. clashing with another file): build our own
        return None
    descriptor = getattr(module, "DESCRIPTOR", None)
    if descriptor is None or getattr(descriptor, "serialized_pb", None) != serialized:
        return None
    by_name = descriptor.message_types_by_name
    return {m.name: message_factory.GetMessageClass(by_name[m.name]) for m in spec.messages}
