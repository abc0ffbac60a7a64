"""``rpcpar gen`` through click's CliRunner: missing, fresh and stale files, --all, and errors."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from rpc_parallel._cli import main

SOURCE = """\
from collections.abc import Iterator

import rpc_parallel as rp


class Adder(rp.Worker):
    @rp.rpc
    def add(self, a: {t}, b: int) -> int:
        return a + b

    @rp.pipe
    def count(self, n: int) -> Iterator[int]:
        yield from range(n)
"""


@pytest.fixture
def src(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty current directory; sys.path (which ``gen`` extends with it) is restored after."""
    directory = tmp_path / "src"
    directory.mkdir()
    monkeypatch.chdir(directory)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    before = set(sys.modules)
    yield directory
    for name in set(sys.modules) - before:
        if name.startswith("cli_"):
            del sys.modules[name]


def write_module(directory: Path, name: str, source: str) -> None:
    path = directory / (name.replace(".", "/") + ".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    sys.modules.pop(name, None)  # a new `rpcpar gen` process would import the new text


def gen(*args: str) -> Result:
    return CliRunner().invoke(main, ["gen", *args])


def test_check_reports_missing_then_fresh_then_stale_files(src: Path) -> None:
    name = f"cli_{uuid.uuid4().hex[:8]}"
    out = src / "out"
    write_module(src, name, SOURCE.format(t="int"))

    result = gen(name, "--out", str(out), "--check")
    assert result.exit_code == 1, result.output
    for suffix in (".proto", "_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_rpcpar.py"):
        assert f"missing: {out / (name + suffix)}" in result.stdout

    result = gen(name, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out / (name + '.proto')}" in result.stdout
    assert (out / f"{name}_rpcpar.py").is_file()

    result = gen(name, "--out", str(out), "--check")
    assert (result.exit_code, result.stdout.strip()) == (0, "up to date"), result.output
    assert gen(name, "--out", str(out)).stdout.strip() == "up to date"

    write_module(src, name, SOURCE.format(t="float"))
    result = gen(name, "--out", str(out), "--check")
    assert result.exit_code == 1, result.output
    assert f"stale: {out / (name + '.proto')}" in result.stdout
    assert f"stale: {out / (name + '_rpcpar.py')}" in result.stdout
    assert "-  sint64 a = 1;" in result.stdout and "+  double a = 1;" in result.stdout
    assert "missing: " not in result.stdout


def test_files_go_next_to_the_module_by_default(src: Path) -> None:
    package = f"cli_{uuid.uuid4().hex[:8]}"
    write_module(src, f"{package}.workers", SOURCE.format(t="int"))
    (src / package / "__init__.py").touch()
    result = gen(f"{package}/workers.py:Adder")
    assert result.exit_code == 0, result.output
    generated = sorted(p.name for p in (src / package).iterdir() if p.name != "__pycache__")
    assert generated == ["__init__.py", "workers.proto", "workers.py", "workers_pb2.py", "workers_pb2.pyi",
                         "workers_pb2_grpc.py", "workers_rpcpar.py"]
    assert f"from {package} import workers_pb2" in (src / package / "workers_pb2_grpc.py").read_text()


def test_all_uses_pyproject_modules_and_framework_protos(src: Path) -> None:
    name = f"cli_{uuid.uuid4().hex[:8]}"
    write_module(src, name, SOURCE.format(t="int"))
    (src / "pyproject.toml").write_text(f'[tool.rpcpar]\nmodules = ["{name}"]\n')
    proto = src / "proto" / "demo" / "v1" / "thing.proto"
    proto.parent.mkdir(parents=True)
    proto.write_text('syntax = "proto3";\npackage demo.v1;\nmessage Thing { string id = 1; }\n'
                     "service Things { rpc Get(Thing) returns (Thing); }\n")

    result = gen("--all", "--check")
    assert result.exit_code == 1, result.output
    assert f"missing: {src / 'demo' / 'v1' / 'thing_pb2.py'}" in result.stdout
    assert f"missing: {src / 'demo' / 'v1' / 'thing_pb2_grpc.py'}" in result.stdout
    assert f"missing: {src / (name + '_rpcpar.py')}" in result.stdout

    assert gen("--all").exit_code == 0
    assert "from demo.v1 import thing_pb2" in (src / "demo" / "v1" / "thing_pb2_grpc.py").read_text()
    result = gen("--all", "--check")
    assert (result.exit_code, result.stdout.strip()) == (0, "up to date"), result.output


def test_all_without_protos_or_modules(src: Path) -> None:
    (src / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    result = gen("--all", "--check")
    assert (result.exit_code, result.stdout.strip()) == (0, "up to date"), result.output


@pytest.mark.parametrize("source, suffix, expected, located", [
    (SOURCE.format(t="set[int]"), "", "unsupported type set[int]", True),
    (SOURCE.format(t="int").replace("def add", "def spawn"), "", "reserved name", True),
    (SOURCE.format(t="int"), ":Nope", "has no worker type Nope", False),
    ("import nonexistent_dependency_xyz\n", "", "No module named 'nonexistent_dependency_xyz'", False),
    ("def broken(:\n", "", "SyntaxError", False),
])
def test_errors_exit_2_with_one_line(src: Path, source: str, suffix: str, expected: str, located: bool) -> None:
    name = f"cli_{uuid.uuid4().hex[:8]}"
    write_module(src, name, source)
    result = gen(name + suffix, "--check")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rpcpar: "), result.stderr
    assert "Traceback" not in result.stderr
    assert expected in lines[0]
    if located:
        assert f"{src / (name + '.py')}:" in lines[0]  # file:line of the declaration


def test_unknown_module_and_no_arguments(src: Path) -> None:
    result = gen("cli_does_not_exist")
    assert result.exit_code == 2 and result.stderr.startswith("rpcpar: cannot import module cli_does_not_exist")
    result = gen()
    assert result.exit_code == 2 and "name at least one MODULE" in result.stderr
    result = gen("not a module")
    assert result.exit_code == 2 and "not a module name" in result.stderr
