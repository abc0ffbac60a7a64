"""``python -m bench [--quick | --smoke] [--only NAME]... [--json PATH] [--png PATH | --no-png] [--replot JSON]``,
and ``python -m bench --remote [--quick]`` (remote workers: needs root, see bench/_remote.py)."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import grpc
import psutil

from . import _remote, _report
from ._workloads import SIZES, WORKLOADS, Env, wait_gone

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"  # git-ignored: a run never changes the work tree
DEFAULT_JSON = OUT / "results.json"
DEFAULT_PNG = OUT / "results.png"


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _our_processes() -> list[int]:
    """Our descendants, but for multiprocessing's resource tracker: it exits with us (at EOF on its pipe)."""
    pids = []
    for p in psutil.Process().children(recursive=True):
        try:
            if not any("multiprocessing.resource_tracker" in arg for arg in p.cmdline()):
                pids.append(p.pid)
        except psutil.NoSuchProcess:
            pass
    return pids


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench",
                                     description="rpc_parallel vs raw grpcio and multiprocessing, in one run")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_const", dest="mode", const="quick",
                      help="fewer calls, one repetition (under a minute)")
    mode.add_argument("--smoke", action="store_const", dest="mode", const="smoke",
                      help="tiny sizes, one repetition (seconds; used by the tests)")
    parser.add_argument("--only", action="append", choices=list(WORKLOADS), metavar="NAME",
                        help=f"run only this workload (repeatable): {', '.join(WORKLOADS)}")
    parser.add_argument("--repetitions", type=int, help="override the number of repetitions")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})")
    chart = parser.add_mutually_exclusive_group()
    chart.add_argument("--png", type=Path, help=f"chart file (default: {DEFAULT_PNG} for a full run, else none)")
    chart.add_argument("--no-png", action="store_true", help="draw no chart")
    parser.add_argument("--remote", action="store_true",
                        help="measure remote workers instead (ssh hosts in network namespaces, a Slurm cluster; root)")
    parser.add_argument("--replot", type=Path, metavar="JSON",
                        help="measure nothing: print the table and draw the chart of a saved results file")
    parser.set_defaults(mode="full")
    return parser.parse_args(argv)


def _title(mode: str, reps: int, cpus: object, grpcio: object) -> str:
    return f"rpc_parallel vs raw grpcio vs multiprocessing ({mode} run, medians of {reps}; {cpus} CPUs, grpcio {grpcio})"


def _replot(args: argparse.Namespace) -> int:
    doc = json.loads(args.replot.read_text())
    m = doc["machine"]
    header = (f"rpc_parallel benchmark, {doc['mode']} mode: medians of {doc['repetitions']} repetition(s); "
              f"{m['cpus']} CPUs, Python {m['python']}, grpcio {m['grpcio']}; load average "
              f"{m['load_average_before']:.2f} before, {m['load_average_after']:.2f} after; {doc['elapsed_s']:.0f} s")
    print(_report.render(doc["figures"], doc["runs"], doc["ratios"], doc["targets"], header,
                         doc["cut_short_by_time_cap"], doc["sizes"]["cap_s"]))
    png = None if args.no_png else args.png or DEFAULT_PNG
    if png is not None and _report.draw_chart(png, doc["figures"], doc["targets"],
                                              _title(doc["mode"], doc["repetitions"], m["cpus"], m["grpcio"])):
        _log(f"wrote {png}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.replot:
        return _replot(args)
    if args.remote:
        return _remote.main(quick=args.mode != "full", json_path=None if args.json == DEFAULT_JSON else args.json)
    sizes = SIZES[args.mode]
    reps = args.repetitions or sizes.repetitions
    names = args.only or list(WORKLOADS)
    start = time.monotonic()
    load_before = os.getloadavg()
    _log(f"{args.mode} run, {reps} repetition(s) of {', '.join(names)}")

    runs: dict[str, list[float]] = defaultdict(list)
    seconds: dict[str, list[float]] = defaultdict(list)
    env = Env()
    try:
        for rep in range(reps):
            for name in names:  # the workloads interleave, so drift hits all of them alike
                t0 = time.monotonic()
                for figure, value in WORKLOADS[name](env, sizes).items():
                    runs[figure].append(value)
                seconds[name].append(time.monotonic() - t0)
                _log(f"repetition {rep + 1}/{reps}: {name} took {seconds[name][-1]:.1f}s")
        pool_peak = env.pool_worker_peak_mib()
    finally:
        env.close()
    short = {name: f"{min(done)} of {env.asked[name]}" for name, done in env.counts.items()
             if min(done) < env.asked[name]}
    master_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    left = wait_gone(_our_processes(), timeout=10)
    if left:
        for pid in left:
            try:
                proc = psutil.Process(pid)
                _log(f"process {pid} still running after the run, killed: {' '.join(proc.cmdline())}")
                proc.kill()
            except psutil.NoSuchProcess:
                pass

    figures = _report.median_figures(runs)
    figures["rss_master_peak_mib"] = master_peak
    if pool_peak is not None:
        figures["rss_pool_worker_peak_mib"] = pool_peak
    ratios, targets = _report.derive(figures)
    elapsed = time.monotonic() - start
    load_after = os.getloadavg()
    header = (f"rpc_parallel benchmark, {args.mode} mode: medians of {reps} repetition(s); "
              f"{os.cpu_count()} CPUs, Python {platform.python_version()}, grpcio {grpc.__version__}; "
              f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; {elapsed:.0f} s")
    print(_report.render(figures, runs, ratios, targets, header, short, sizes.cap_s), flush=True)

    document: dict[str, Any] = {
        "mode": args.mode, "repetitions": reps, "workloads": names,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "elapsed_s": elapsed,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "grpcio": grpc.__version__,
                    "platform": platform.platform(), "load_average_before": load_before[0],
                    "load_average_after": load_after[0]},
        "sizes": vars(sizes),
        "figures": figures,
        "ratios": ratios,
        "targets": targets,
        "runs": dict(runs),
        "counts": {name: {"asked": env.asked[name], "done": done} for name, done in env.counts.items()},
        "cut_short_by_time_cap": short,
        "workload_seconds": dict(seconds),
        "leftover_processes": left,
    }
    _report.write_json(args.json, document)
    _log(f"wrote {args.json}")
    png = args.png or (DEFAULT_PNG if args.mode == "full" and not args.no_png else None)
    if png is not None and not args.no_png:
        if _report.draw_chart(png, figures, targets, _title(args.mode, reps, os.cpu_count(), grpc.__version__)):
            _log(f"wrote {png}")
        else:
            _log("matplotlib is not installed: no chart (pip install -e '.[bench]')")
    return 1 if left else 0
