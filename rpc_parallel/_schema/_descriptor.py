"""Schema model -> ``FileDescriptorProto``, byte-identical to what protoc makes of the ``.proto`` text.

The runtime loads these descriptors when no fresh generated ``_pb2`` module is on disk; a test
proves the two are the same bytes.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2

from ._model import EnumRef, EnumSpec, FileSpec, MessageRef, MessageSpec, PickledT, Scalar, Slot, camel, json_name

__all__ = ("file_descriptor", "map_entry_name")

_FD = descriptor_pb2.FieldDescriptorProto
_SCALAR_TYPES = {
    "sint64": _FD.TYPE_SINT64,
    "double": _FD.TYPE_DOUBLE,
    "bool": _FD.TYPE_BOOL,
    "string": _FD.TYPE_STRING,
    "bytes": _FD.TYPE_BYTES,
}


def map_entry_name(field_name: str) -> str:
    """The nested entry message protoc creates for a map field (``items`` -> ``ItemsEntry``)."""
    return camel(field_name) + "Entry"


def file_descriptor(spec: FileSpec, *, json_names: bool = False) -> descriptor_pb2.FileDescriptorProto:
    """The descriptor of ``spec``'s ``.proto`` file.

    Without ``json_names`` it is byte-identical to the one protoc embeds in ``_pb2`` modules; with
    them, to protoc's ``--descriptor_set_out``.
    """
    fdp = descriptor_pb2.FileDescriptorProto(name=spec.proto_file, syntax="proto3")
    if spec.package:
        fdp.package = spec.package
    prefix = f".{spec.package}." if spec.package else "."
    for enum in spec.enums:
        fdp.enum_type.append(_enum(enum))
    for msg in spec.messages:
        fdp.message_type.append(_message(msg, prefix, json_names))
    for service in spec.services:
        sdp = fdp.service.add(name=service.name)
        for m in service.methods:
            mdp = sdp.method.add(name=m.rpc_name, input_type=prefix + m.request.name,
                                 output_type=prefix + m.response.name)
            if m.client_streaming:
                mdp.client_streaming = True
            if m.server_streaming:
                mdp.server_streaming = True
    return fdp


def _enum(enum: EnumSpec) -> descriptor_pb2.EnumDescriptorProto:
    edp = descriptor_pb2.EnumDescriptorProto(name=enum.name)
    for number, member in enumerate(enum.members):
        edp.value.add(name=enum.value_name(member), number=number)
    return edp


def _message(msg: MessageSpec, prefix: str, json_names: bool) -> descriptor_pb2.DescriptorProto:
    dp = descriptor_pb2.DescriptorProto(name=msg.name)
    oneofs = list(dict.fromkeys(f.oneof for f in msg.fields if f.oneof is not None))  # protoc: real ones first
    synthetic: list[str] = []
    for f in msg.fields:
        slot = f.slot
        fd = dp.field.add(name=f.name, number=f.number)
        if slot.label == "map":
            entry = map_entry_name(f.name)
            assert slot.key is not None
            ed = dp.nested_type.add(name=entry)
            ed.options.map_entry = True
            key = ed.field.add(name="key", number=1, label=_FD.LABEL_OPTIONAL)
            _set_type(key, slot.key, prefix)
            value = ed.field.add(name="value", number=2, label=_FD.LABEL_OPTIONAL)
            _set_type(value, slot.base, prefix)
            if json_names:
                key.json_name, value.json_name = "key", "value"
            fd.label = _FD.LABEL_REPEATED
            fd.type = _FD.TYPE_MESSAGE
            fd.type_name = f"{prefix}{msg.name}.{entry}"
            if json_names:
                fd.json_name = json_name(f.name)
            continue
        fd.label = _FD.LABEL_REPEATED if slot.label == "repeated" else _FD.LABEL_OPTIONAL
        _set_type(fd, slot.base, prefix)
        if json_names:
            fd.json_name = json_name(f.name)
        if f.oneof is not None:
            fd.oneof_index = oneofs.index(f.oneof)
        elif slot.label == "optional":
            fd.proto3_optional = True
            fd.oneof_index = len(oneofs) + len(synthetic)
            synthetic.append(f"_{f.name}")
    for name in (*oneofs, *synthetic):
        dp.oneof_decl.add(name=name)
    return dp


def _set_type(fd: descriptor_pb2.FieldDescriptorProto, base: Slot | Scalar | EnumRef | MessageRef | PickledT,
              prefix: str) -> None:
    if isinstance(base, Scalar):
        fd.type = _SCALAR_TYPES[base.proto]
    elif isinstance(base, PickledT):
        fd.type = _FD.TYPE_BYTES
    elif isinstance(base, EnumRef):
        fd.type = _FD.TYPE_ENUM
        fd.type_name = prefix + base.name
    elif isinstance(base, MessageRef):
        fd.type = _FD.TYPE_MESSAGE
        fd.type_name = prefix + base.name
    else:
        raise TypeError(f"not a field base: {base!r}")
