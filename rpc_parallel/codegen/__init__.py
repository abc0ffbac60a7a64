"""rpcpar codegen: worker declarations -> schema model -> descriptors -> ``.proto`` and stubs.

``generate(module)`` returns every file of a worker module (``.proto``, protoc's ``_pb2`` outputs
and the typed client ``<module>_rpcpar.py``); ``write`` puts them on disk and ``check`` lists the
missing or stale ones. ``rpcpar gen`` is the command-line front end.
"""

from ._client import client_module, client_path, render_client
from ._descriptor import file_descriptor
from ._generate import GeneratedFile, check, compile_protos, files_for, generate, import_module, module_root, write
from ._proto_text import render_proto
from ._protoc import ProtocError, protoc
from ._schema import file_spec, service_spec

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
