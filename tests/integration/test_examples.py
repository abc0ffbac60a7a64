"""Each example in examples/ runs, as its own program, and prints what its docstring promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(example: str) -> list[str]:
    done = subprocess.run([sys.executable, str(REPO / "examples" / example)], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_demo_runs_every_function_kind() -> None:
    out = _run("demo.py")
    assert out[0].startswith("spawned demo-counter (pid ")
    assert "rpc         incr(5)        -> 15" in out
    assert "pipe        count_to(5)    -> [1, 2, 3, 4, 5]" in out
    assert "reverse_pipe total_of      -> 10100" in out
    assert out[-1] == "shut down; failures reported: []"


def test_async_log_two_subscribers_then_one() -> None:
    assert _run("async_log.py") == ["a got: hello", "b got: hello", "b got: world",
                                    "a closed: True - its last record was hello"]
