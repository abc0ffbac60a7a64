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


def _run_args(example: str, *args: str) -> list[str]:
    done = subprocess.run([sys.executable, str(REPO / "examples" / example), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_add_numbers_maps_in_order_and_unordered_with_indices() -> None:
    out = _run_args("add_numbers.py", "--nworkers", "2", "--count", "12")
    assert out[:-1] == [f"sum of 0..{n * 1000 - 1} = {sum(range(n * 1000))}" for n in range(1, 13)]
    assert out[-1] == "map_unordered: 12 results, indices ok"


def test_number_stats_two_stages_and_both_reductions_agree() -> None:
    out = _run_args("number_stats.py", "--blocks", "12", "--size", "2000")
    assert out[0] == "generated 12 blocks of 2000 numbers"
    ordered, commutative = out[1].split(": ", 1), out[2].split(": ", 1)
    assert ordered[0] == "map_reduce" and commutative[0] == "map_reduce_commutative"
    assert ordered[1] == commutative[1] and ordered[1].startswith("count 24000 mean 0.")


def test_side_arg_each_output_carries_its_worker_s_init() -> None:
    out = _run_args("side_arg.py", "bonjour")
    assert [line.split(":")[0] for line in out] == [str(i) for i in range(6)]
    assert all(line.split(": ", 1)[1] in ("bonjour from worker 0", "bonjour from worker 1") for line in out)
