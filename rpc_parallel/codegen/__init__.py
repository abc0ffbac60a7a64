"""rpcpar codegen: worker declarations -> schema model -> descriptors -> ``.proto`` and stubs.

``generate(module)`` returns every file of a worker module (``.proto``, protoc's ``_pb2`` outputs
and the typed client ``<module>_rpcpar.py``); ``write`` puts them on disk and ``check`` lists the
missing or stale ones. ``rpcpar gen`` is the command-line front end.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._client import client_module, client_path, render_client
    from ._descriptor import file_descriptor
    from ._generate import GeneratedFile, check, compile_protos, files_for, generate, import_module, module_root, write
    from ._proto_text import render_proto
    from ._protoc import ProtocError, protoc
    from ._schema import file_spec, service_spec

# Where each public name lives: imported on first use, so the runtime (which needs only the
# schema and descriptors) does not pay for the renderers, protoc and the generator at start-up.
_HOME = {
    "client_module": "_client", "client_path": "_client", "render_client": "_client",
    "file_descriptor": "_descriptor",
    "GeneratedFile": "_generate", "check": "_generate", "compile_protos": "_generate", "files_for": "_generate",
    "generate": "_generate", "import_module": "_generate", "module_root": "_generate", "write": "_generate",
    "render_proto": "_proto_text", "ProtocError": "_protoc", "protoc": "_protoc",
    "file_spec": "_schema", "service_spec": "_schema",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


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
