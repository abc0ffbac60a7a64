"""Smoke test of the benchmark: ``python -m bench --smoke`` runs every workload, writes every figure,
ratio and target, and leaves no process behind. No timing is asserted."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from bench import _cli, _remote

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TAG_VAR = "RPC_PARALLEL_BENCH_SMOKE_TAG"  # inherited by every process the bench starts

FIGURES = [
    "spawn_rpc_parallel_s", "spawn_multiprocessing_s", "cold_spawn_rpc_parallel_s", "cold_spawn_multiprocessing_s",
    "cold_import_rpc_parallel_s", "cold_import_multiprocessing_s",
    "rtt_rpc_parallel_sync_median_us", "rtt_rpc_parallel_sync_p99_us",
    "rtt_rpc_parallel_aio_median_us", "rtt_rpc_parallel_aio_p99_us",
    *[f"rtt_grpc_{s}_server_{c}_client_{q}_us" for s in ("sync", "aio") for c in ("sync", "aio")
      for q in ("median", "p99")],
    "rtt_grpc_floor_median_us", "rtt_grpc_aio_floor_median_us",
    "relay_rtt_quiet_median_us", "relay_rtt_printing_median_us", "relay_lines_relayed",
    "calls_rpc_parallel_submit_per_s", "calls_rpc_parallel_aio_per_s",
    "calls_grpc_sync_client_per_s", "calls_grpc_aio_client_per_s", "calls_grpc_best_per_s",
    "calls_multiprocessing_apply_async_per_s",
    "payload_rpc_parallel_mb_s",
    *[f"payload_grpc_{s}_server_{c}_client_mb_s" for s in ("sync", "aio") for c in ("sync", "aio")],
    "payload_grpc_best_mb_s",
    "pipe_rpc_parallel_items_s", "pipe_grpc_per_item_items_s", "pipe_multiprocessing_items_s",
    "rss_idle_worker_mib", "rss_idle_worker_peak_mib", "rss_multiprocessing_idle_child_mib",
    "rss_master_peak_mib", "rss_pool_worker_peak_mib",
    "memory_pipe_stopped_growth_mib", "memory_one_way_worker_peak_mib", "memory_one_way_master_peak_mib",
]
TARGETS = {
    "rtt_ratio_vs_grpc_floor": (0.6, "max"),
    "rtt_aio_ratio_vs_grpc_aio_floor": (0.6, "max"),
    "submit_ratio_vs_multiprocessing": (1.0, "min"),
    "aio_calls_ratio_vs_grpc_aio_client": (1.0, "min"),
    "payload_ratio_vs_grpc": (1.0, "min"),
    "pipe_ratio_vs_grpc_per_item": (5.0, "min"),
    "cold_spawn_ratio_vs_multiprocessing": (2.0, "max"),
    "idle_worker_rss_mib": (60.0, "max"),
    "stopped_pipe_growth_mib": (64.0, "max"),
    "one_way_worker_peak_mib": (256.0, "max"),
    "one_way_master_peak_mib": (256.0, "max"),
}
RATIOS = [name for name in TARGETS if not name.endswith("_mib")] + [
    "rtt_aio_ratio_vs_grpc_floor", "relay_rtt_ratio_printing_vs_quiet", "aio_calls_ratio_vs_best_grpc",
    "pipe_ratio_vs_multiprocessing", "spawn_ratio_vs_multiprocessing", "submit_ratio_vs_best_grpc",
]


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _tagged(tag: str) -> list[str]:
    """Live processes started (directly or not) by the bench run marked with ``tag``."""
    found = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get(TAG_VAR) == tag and p.status() != psutil.STATUS_ZOMBIE:
                found.append(f"{p.pid}: {' '.join(p.cmdline())}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


@pytest.mark.timeout(180)
def test_bench_smoke_writes_every_figure_and_leaves_no_process(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    out = tmp_path / "results.json"
    png = tmp_path / "results.png"
    chart = ["--png", str(png)] if importlib.util.find_spec("matplotlib") else ["--no-png"]
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--json", str(out), *chart],
                          cwd=ROOT, env={**os.environ, TAG_VAR: tag}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-5000:]

    doc = json.loads(out.read_text())
    assert doc["mode"] == "smoke"
    figures = doc["figures"]
    for name in FIGURES:
        assert _positive(figures.get(name)), (name, figures.get(name))
    for name in RATIOS:
        assert _positive(doc["ratios"].get(name)), (name, doc["ratios"].get(name))
    for name, (target, kind) in TARGETS.items():
        t = doc["targets"][name]
        assert _positive(t["value"]), (name, t)
        assert t["target"] == target and t["kind"] == kind, (name, t)
        assert isinstance(t["met"], bool), (name, t)
    assert doc["leftover_processes"] == []
    if chart[0] == "--png":
        assert png.stat().st_size > 10_000
    assert "rtt_ratio_vs_grpc_floor" in proc.stdout  # the table went to stdout

    deadline = time.monotonic() + 15
    while True:
        children = [p.pid for p in psutil.Process().children(recursive=True) if p.pid not in children_before]
        left = _tagged(tag)
        if not children and not left:
            break
        assert time.monotonic() < deadline, f"processes left behind: children {children}, tagged {left}"
        time.sleep(0.1)


def test_a_run_writes_only_to_an_ignored_folder() -> None:
    """``make bench`` leaves the work tree clean: its default outputs are in git-ignored bench/out/."""
    for path in (_cli.DEFAULT_JSON, _cli.DEFAULT_PNG, _remote.OUT):
        assert path.parent == ROOT / "bench" / "out"
        ignored = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=ROOT, check=False)
        assert ignored.returncode == 0, f"{path} is not git-ignored"
