"""rpcpar codegen: worker declarations -> schema model -> descriptors -> ``.proto`` and stubs.

``generate(module)`` returns every file of a worker module (``.proto``, protoc's ``_pb2`` outputs
and the typed client ``<module>_rpcpar.py``); ``write`` puts them on disk and ``check`` lists the
missing or stale ones. ``rpcpar gen`` is the command-line front end. The schema model and the
descriptors come from the runtime's schema layer (``rpc_parallel._schema``, re-exported here); the
renderers here use only that layer and the errors, and the runtime never imports them.
"""

from .._errors import ProtocError as ProtocError
from .._schema import file_descriptor as file_descriptor, file_spec as file_spec, service_spec as service_spec
from ._client import client_module as client_module, client_path as client_path, render_client as render_client
from ._generate import (
    GeneratedFile as GeneratedFile,
    check as check,
    compile_protos as compile_protos,
    files_for as files_for,
    generate as generate,
    import_module as import_module,
    module_root as module_root,
    write as write,
)
from ._proto_text import render_proto as render_proto
from ._protoc import protoc as protoc

__all__ = (
    "GeneratedFile",
    "ProtocError",
    "check",
    "client_module",
    "client_path",
    "compile_protos",
    "file_descriptor",
    "file_spec",
    "files_for",
    "generate",
    "import_module",
    "module_root",
    "protoc",
    "render_client",
    "render_proto",
    "service_spec",
    "write",
)
