"""mypy --strict accepts the generated clients against the runtime's real signatures."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import rpc_parallel as rp
from rpc_parallel.codegen import generate, write

from ._helpers import PYTHON, REPO

USAGE = '''\
from __future__ import annotations

from typing import assert_type

import rpc_parallel as rp
from rpc_parallel import aio
from tests.golden.decls.kinds_rpcpar import KindsAsyncClient, KindsClient, Mode, Point


def blocking(handle: rp.WorkerHandle) -> None:
    with KindsClient.connect(handle, "me") as client:
        assert_type(client.add(1, 2), int)
        assert_type(client.scale(Point(1.0), 2.0), Point)
        assert_type(client.count_to(3), rp.Pipe[int])
        assert_type(client.awatch(0.1), tuple[Point | None, rp.Pipe[Mode]])
        assert_type(client.ticks(0.1, on_update=print), rp.DirectPipeId)
        assert_type(client.total_of(iter([1, 2]), 3), int)
        client.log("line")


async def asynchronous(handle: rp.WorkerHandle) -> None:
    async with await KindsAsyncClient.connect(handle) as client:
        assert_type(await client.add(1), int)
        assert_type(await client.points(2), aio.Pipe[Point])
        assert_type(await client.concat(",", ["a", "b"]), str)
'''


@pytest.mark.skipif(not hasattr(rp, "Connection"), reason="the runtime API (rp.Connection, rp.connect) is not there")
@pytest.mark.timeout(180)
def test_generated_clients_pass_mypy_strict(tmp_path: Path) -> None:
    for module in ("tests.golden.decls.kinds", "tests.golden.decls.types", "tests.golden.decls.two_workers"):
        write([f for f in generate(module) if f.path.name.endswith("_rpcpar.py")], tmp_path)
    for package in ("tests", "tests/golden", "tests/golden/decls"):
        (tmp_path / package / "__init__.py").touch()
    usage = tmp_path / "usage.py"
    usage.write_text(USAGE)
    # errors inside rpc_parallel itself (including protoc's .pyi files) are not this test's business
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n\n[mypy-rpc_parallel.*]\nignore_errors = True\n")
    result = subprocess.run(
        [PYTHON, "-m", "mypy", "--config-file", str(config), "--no-error-summary",
         "--cache-dir", str(REPO / ".mypy_cache"), "tests/golden/decls", "usage.py"],
        cwd=tmp_path, env={**os.environ, "MYPYPATH": str(REPO)}, capture_output=True, text=True, timeout=170)
    assert result.returncode == 0, result.stdout + result.stderr
