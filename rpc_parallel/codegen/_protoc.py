"""Run ``grpc_tools.protoc`` in this process on ``.proto`` texts; return the files it writes.

protoc reports errors on file descriptor 2, so the call runs with fd 2 redirected to a temporary
file (under a lock: one protoc at a time per process) and the text goes into ``ProtocError``.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from grpc_tools import protoc as grpc_protoc

from .._errors import ProtocError

__all__ = ("grpc_tools_include", "protoc")

OUTPUTS = ("--python_out", "--pyi_out", "--grpc_python_out")

_LOCK = threading.Lock()


def grpc_tools_include() -> Path:
    """The directory of the ``.proto`` files bundled with grpc_tools (``google/protobuf/*.proto``)."""
    return Path(str(importlib.resources.files("grpc_tools") / "_proto"))


def protoc(sources: Mapping[str, str], *, outputs: Sequence[str] = OUTPUTS) -> dict[str, str]:
    """Compile ``.proto`` texts and return what protoc writes, as relative path -> text.

    ``sources`` maps paths relative to the include root (``examples/counter.proto``) to their
    text; files may import each other by those paths, and the grpc_tools bundled protos. With the
    default ``outputs`` each file yields ``<stem>_pb2.py``, ``<stem>_pb2.pyi`` and
    ``<stem>_pb2_grpc.py`` beside its path. Raises ``ProtocError`` with protoc's stderr on failure.
    """
    if not sources:
        return {}
    with tempfile.TemporaryDirectory(prefix="rpcpar-protoc-") as tmp:
        src, out = Path(tmp, "src"), Path(tmp, "out")
        out.mkdir()
        for rel, text in sources.items():
            path = src / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        args = ["grpc_tools.protoc", f"-I{src}", f"-I{grpc_tools_include()}"]
        args += [f"{flag}={out}" for flag in outputs]
        args += sorted(sources)
        returncode, stderr = _run(args)
        # protoc names files by their absolute temp path in messages; show the relative one
        stderr = stderr.replace(f"{src}{os.sep}", "")
        if returncode != 0:
            raise ProtocError(f"protoc failed on {', '.join(sorted(sources))} (exit {returncode}):",
                              stderr=stderr, returncode=returncode)
        return {p.relative_to(out).as_posix(): p.read_text(encoding="utf-8")
                for p in sorted(out.rglob("*")) if p.is_file()}


def _run(args: list[str]) -> tuple[int, str]:
    with _LOCK, _stderr_to_text() as captured:
        returncode = int(grpc_protoc.main(args))
    return returncode, captured[0]


@contextlib.contextmanager
def _stderr_to_text() -> Iterator[list[str]]:
    """Redirect fd 2 to a temporary file for the block; the list gets the text written there."""
    captured = [""]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured[0] = tmp.read().decode("utf-8", "replace")
