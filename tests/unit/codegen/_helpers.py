"""Helpers shared by the codegen tests."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PYTHON = sys.executable


def line_of(path: str | Path, marker: str) -> int:
    """The 1-based number of the first line of ``path`` containing ``marker``."""
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if marker in line:
            return number
    raise AssertionError(f"{marker!r} not in {path}")


def assert_not_from_protobuf(exc: BaseException) -> None:
    """The error was raised by our checks, not from inside protobuf or protoc."""
    frames = traceback.extract_tb(exc.__traceback__)
    assert not any("google/protobuf" in f.filename or "grpc_tools" in f.filename for f in frames), frames
