"""The rendered ``.proto`` stands alone, and the in-memory descriptors equal protoc's, byte for byte."""

from __future__ import annotations

import importlib
import re
import subprocess
import uuid
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from rpc_parallel.codegen import ProtocError, file_descriptor, file_spec, files_for, protoc, write
from rpc_parallel.codegen._protoc import grpc_tools_include

from ._helpers import PYTHON, REPO
from .conftest import MakeModule

DECLS = REPO / "tests" / "golden" / "decls"
GOLDEN = ["kinds", "types", "two_workers"]


def _with_package(source: str, package: str) -> str:
    """A golden declaration module's source with every worker class in proto package ``package``."""
    source = re.sub(r'proto_package="[^"]*"', f'proto_package="{package}"', source)
    return source.replace("(rp.Worker):", f'(rp.Worker, proto_package="{package}"):')


@pytest.mark.parametrize("name", GOLDEN)
def test_generated_proto_compiles_alone(tmp_path: Path, name: str) -> None:
    module = importlib.import_module(f"tests.golden.decls.{name}")
    spec = file_spec(module.__name__)
    proto = next(f for f in files_for(spec) if f.path.suffix == ".proto")
    src = tmp_path / "src"
    write([proto], src)
    out = tmp_path / "set.pb"
    result = subprocess.run(
        [PYTHON, "-m", "grpc_tools.protoc", f"-I{src}", f"-I{grpc_tools_include()}",
         f"--descriptor_set_out={out}", proto.path.as_posix()],
        cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    (fdp,) = fds.file
    assert fdp.SerializeToString() == file_descriptor(spec, json_names=True).SerializeToString()
    assert [s.name for s in fdp.service] == [s.name for s in spec.services]
    for sdp, service in zip(fdp.service, spec.services, strict=True):
        assert [m.name for m in sdp.method] == [m.rpc_name for m in service.methods]
        for mdp, m in zip(sdp.method, service.methods, strict=True):
            assert (mdp.client_streaming, mdp.server_streaming) == (m.client_streaming, m.server_streaming)


def test_standalone_descriptor_details() -> None:
    """Spot checks of the kinds module: streaming flags, field numbers, maps, optionals."""
    from tests.golden.decls import kinds

    fdp = file_descriptor(file_spec(kinds.__name__), json_names=True)
    (service,) = fdp.service
    flags = {m.name: (m.client_streaming, m.server_streaming) for m in service.method}
    assert list(flags) == ["Add", "Scale", "Everything", "Log", "Alog", "CountTo", "Points", "Watch", "Awatch",
                           "Ticks", "Aticks", "TotalOf", "Concat"]
    assert flags["Add"] == flags["Log"] == (False, False)
    assert flags["CountTo"] == flags["Watch"] == flags["Ticks"] == (False, True)
    assert flags["TotalOf"] == flags["Concat"] == (True, False)
    messages = {m.name: m for m in fdp.message_type}
    everything = messages["KindsEverythingRequest"]
    assert [(f.name, f.number) for f in everything.field] == [
        (n, i) for i, n in enumerate(["i", "f", "flag", "s", "raw", "ints", "names", "by_name", "by_id", "maybe",
                                      "mode", "handle", "blob"], start=1)]
    fields = {f.name: f for f in everything.field}
    FD = descriptor_pb2.FieldDescriptorProto
    assert fields["i"].type == FD.TYPE_SINT64 and fields["blob"].type == FD.TYPE_BYTES
    assert fields["ints"].label == FD.LABEL_REPEATED
    assert fields["maybe"].proto3_optional
    assert fields["by_id"].type_name.endswith("KindsEverythingRequest.ByIdEntry")
    # fields follow parameter order, a reverse pipe's updates included
    assert [(f.name, f.number) for f in messages["KindsConcatRequest"].field] == [("sep", 1), ("parts", 2)]
    assert [(f.name, f.number) for f in messages["KindsWatchResponse"].field] == [("state", 1), ("updates", 2)]


@pytest.mark.parametrize("name", GOLDEN)
def test_in_memory_descriptor_equals_generated_pb2(make_module: MakeModule, tmp_path: Path, name: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # a unique proto package: the generated _pb2 registers its file in the default descriptor pool
    package = f"rpcpar_bytes_{uuid.uuid4().hex[:8]}.{name}"
    module = make_module(_with_package((DECLS / f"{name}.py").read_text(), package))
    spec = file_spec(module.__name__)
    assert spec.package == package
    out = tmp_path / "generated"
    write(files_for(spec), out)
    monkeypatch.syspath_prepend(str(out))
    pb2 = importlib.import_module(package + "_pb2")
    assert pb2.DESCRIPTOR.serialized_pb == file_descriptor(spec).SerializeToString()
    assert pb2.DESCRIPTOR.name == spec.proto_file
    importlib.import_module(package + "_pb2_grpc")


def test_protoc_error_carries_its_stderr() -> None:
    with pytest.raises(ProtocError) as info:
        protoc({"bad/one.proto": 'syntax = "proto3";\nmessage X { int32 a = 1; int32 b = 1; }\n'})
    assert info.value.returncode != 0
    assert "bad/one.proto:2" in info.value.stderr
    assert "already been used" in str(info.value)
    assert "rpcpar-protoc-" not in str(info.value)  # temp paths are stripped


def test_protoc_compiles_files_that_import_each_other() -> None:
    outputs = protoc({
        "pkg/a.proto": 'syntax = "proto3";\npackage pkg;\nimport "pkg/b.proto";\nimport "google/protobuf/empty.proto";\n'
                       "message A { B b = 1; google.protobuf.Empty e = 2; }\n",
        "pkg/b.proto": 'syntax = "proto3";\npackage pkg;\nmessage B { string s = 1; }\n'
                       "service S { rpc Call(B) returns (B); }\n",
    })
    assert sorted(outputs) == ["pkg/a_pb2.py", "pkg/a_pb2.pyi", "pkg/a_pb2_grpc.py", "pkg/b_pb2.py",
                               "pkg/b_pb2.pyi", "pkg/b_pb2_grpc.py"]
    assert "from pkg import b_pb2" in outputs["pkg/a_pb2.py"]
    assert "class SStub" in outputs["pkg/b_pb2_grpc.py"]
