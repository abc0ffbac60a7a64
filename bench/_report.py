"""Medians, derived figures, ratios and targets; the stdout table, results.json and the chart."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ("FIGURES", "TARGETS", "Target", "derive", "draw_chart", "median_figures", "render", "write_json")


@dataclass(frozen=True)
class Fig:
    name: str
    workload: str
    system: str  # rpc_parallel | grpc | multiprocessing
    label: str
    unit: str


def _grpc(prefix: str, suffix: str, unit: str, workload: str, label: str) -> list[Fig]:
    return [Fig(f"{prefix}_grpc_{s}_server_{c}_client_{suffix}", workload, "grpc", label.format(s=s, c=c), unit)
            for s in ("sync", "aio") for c in ("sync", "aio")]


# Every primary figure a full run produces, in table order.
FIGURES: list[Fig] = [
    Fig("spawn_rpc_parallel_s", "spawn", "rpc_parallel", "spawn x4 + one rpc each (threads)", "s"),
    Fig("spawn_multiprocessing_s", "spawn", "multiprocessing", "spawn-context Process + Pipe x4", "s"),
    Fig("cold_spawn_rpc_parallel_s", "spawn", "rpc_parallel", "cold: x4 from a fresh master (fork server start incl.)",
        "s"),
    Fig("cold_spawn_multiprocessing_s", "spawn", "multiprocessing", "cold: Process + Pipe x4 from a fresh process", "s"),
    Fig("cold_import_rpc_parallel_s", "spawn", "rpc_parallel", "cold: import rpc_parallel (before the spawn)", "s"),
    Fig("cold_import_multiprocessing_s", "spawn", "multiprocessing", "cold: import multiprocessing", "s"),
    Fig("rtt_rpc_parallel_sync_median_us", "rtt", "rpc_parallel", "conn.run (blocking)", "µs"),
    Fig("rtt_rpc_parallel_sync_p99_us", "rtt", "rpc_parallel", "conn.run (blocking), p99", "µs"),
    Fig("rtt_rpc_parallel_aio_median_us", "rtt", "rpc_parallel", "await rp.aio conn.run", "µs"),
    Fig("rtt_rpc_parallel_aio_p99_us", "rtt", "rpc_parallel", "await rp.aio conn.run, p99", "µs"),
    Fig("rtt_rpc_parallel_sync_async_fn_median_us", "rtt", "rpc_parallel", "conn.run of an async def (blocking)", "µs"),
    Fig("rtt_rpc_parallel_aio_async_fn_median_us", "rtt", "rpc_parallel", "await rp.aio conn.run of an async def",
        "µs"),
    *[f for s in ("sync", "aio") for c in ("sync", "aio") for f in (
        Fig(f"rtt_grpc_{s}_server_{c}_client_median_us", "rtt", "grpc", f"{s} server, {c} client", "µs"),
        Fig(f"rtt_grpc_{s}_server_{c}_client_p99_us", "rtt", "grpc", f"{s} server, {c} client, p99", "µs"),
        Fig(f"rtt_grpc_{s}_server_{c}_client_stream_median_us", "rtt", "grpc",
            f"{s} server, {c} client, ping-pong on an open bidi stream", "µs"))],
    Fig("relay_rtt_quiet_median_us", "relay", "rpc_parallel", "conn.run, the worker quiet", "µs"),
    Fig("relay_rtt_printing_median_us", "relay", "rpc_parallel", "conn.run, the worker printing 1,000 lines/s (relayed)",
        "µs"),
    Fig("relay_lines_relayed", "relay", "rpc_parallel", "lines relayed meanwhile", "lines"),
    Fig("calls_rpc_parallel_submit_per_s", "calls", "rpc_parallel", "conn.submit (sync)", "calls/s"),
    Fig("calls_rpc_parallel_aio_per_s", "calls", "rpc_parallel", "rp.aio gather + semaphore", "calls/s"),
    Fig("calls_grpc_sync_client_per_s", "calls", "grpc", "4 sync servers, sync client (.future())", "calls/s"),
    Fig("calls_grpc_aio_client_per_s", "calls", "grpc", "4 sync servers, aio client (gather)", "calls/s"),
    Fig("calls_multiprocessing_apply_async_per_s", "calls", "multiprocessing", "Pool(4).apply_async, same in flight",
        "calls/s"),
    Fig("payload_rpc_parallel_mb_s", "payload", "rpc_parallel", "conn.run(size, data)", "MB/s"),
    *_grpc("payload", "mb_s", "MB/s", "payload", "{s} server, {c} client"),
    Fig("pipe_rpc_parallel_items_s", "pipe", "rpc_parallel", "conn.run(ints, n) (pipe)", "items/s"),
    Fig("pipe_grpc_per_item_items_s", "pipe", "grpc", "server streaming, 1 int64/message", "items/s"),
    Fig("pipe_multiprocessing_items_s", "pipe", "multiprocessing", "Pipe, send per item", "items/s"),
    Fig("rss_idle_worker_mib", "rss", "rpc_parallel", "idle worker RSS", "MiB"),
    Fig("rss_idle_worker_peak_mib", "rss", "rpc_parallel", "idle worker peak RSS (VmHWM)", "MiB"),
    Fig("rss_multiprocessing_idle_child_mib", "rss", "multiprocessing", "idle spawn child RSS", "MiB"),
    Fig("memory_pipe_stopped_growth_mib", "memory", "rpc_parallel",
        "worker RSS growth, a 1 MiB-item pipe no longer read", "MiB"),
    Fig("memory_one_way_worker_peak_mib", "memory", "rpc_parallel", "worker peak RSS, 100 KB one_ways to a slow worker",
        "MiB"),
    Fig("memory_one_way_master_peak_mib", "memory", "rpc_parallel", "master RSS during those one_ways", "MiB"),
    Fig("mr_unordered_rp_items_s", "map_reduce", "rpc_parallel", "map_unordered, x -> x + 1", "items/s"),
    Fig("mr_unordered_pool_items_s", "map_reduce", "multiprocessing", "Pool.imap_unordered, x -> x + 1", "items/s"),
    Fig("mr_ordered_rp_items_s", "map_reduce", "rpc_parallel", "map (ordered), x -> x + 1", "items/s"),
    Fig("mr_ordered_pool_items_s", "map_reduce", "multiprocessing", "Pool.imap, x -> x + 1", "items/s"),
    Fig("mr_cpu_even_rp_efficiency", "map_reduce", "rpc_parallel", "efficiency, CPU-bound items of 5 ms", "ratio"),
    Fig("mr_cpu_even_pool_efficiency", "map_reduce", "multiprocessing", "efficiency, CPU-bound items of 5 ms",
        "ratio"),
    Fig("mr_cpu_uneven_rp_efficiency", "map_reduce", "rpc_parallel", "efficiency, uneven items (exponential, mean 5 ms)",
        "ratio"),
    Fig("mr_cpu_uneven_pool_efficiency", "map_reduce", "multiprocessing",
        "efficiency, uneven items (exponential, mean 5 ms)", "ratio"),
    Fig("mr_cpu_even_rp_item_ms", "map_reduce", "rpc_parallel", "mean time of a 5 ms item, where it ran", "ms"),
    Fig("mr_cpu_even_pool_item_ms", "map_reduce", "multiprocessing", "mean time of a 5 ms item, where it ran", "ms"),
    Fig("mr_first_result_warm_rp_s", "map_reduce", "rpc_parallel", "first result of map, warm Pool", "s"),
    Fig("mr_first_result_fresh_rp_s", "map_reduce", "rpc_parallel", "first result of map, fresh Pool (spawn)", "s"),
    Fig("mr_first_result_fresh_pool_s", "map_reduce", "multiprocessing", "first result of imap, fresh Pool", "s"),
]

# Figures derived from the medians (best raw-grpcio variant of each workload), and run-level figures.
DERIVED: list[Fig] = [
    Fig("rtt_grpc_floor_median_us", "rtt", "grpc", "floor: best raw variant", "µs"),
    Fig("rtt_grpc_aio_floor_median_us", "rtt", "grpc", "aio floor: best raw variant with a grpc.aio client", "µs"),
    Fig("rtt_grpc_stream_floor_median_us", "rtt", "grpc", "stream floor: best raw bidi ping-pong", "µs"),
    Fig("calls_grpc_best_per_s", "calls", "grpc", "best raw variant", "calls/s"),
    Fig("payload_grpc_best_mb_s", "payload", "grpc", "best raw variant", "MB/s"),
    Fig("rss_master_peak_mib", "rss", "rpc_parallel", "master peak RSS (whole run)", "MiB"),
    Fig("rss_pool_worker_peak_mib", "rss", "rpc_parallel", "pool worker peak RSS (after all workloads)", "MiB"),
]
FIG = {f.name: f for f in [*FIGURES, *DERIVED]}


@dataclass(frozen=True)
class Target:
    name: str
    figure: str
    baseline: str | None  # None: the target is on the figure itself
    target: float
    kind: str  # "max": value <= target; "min": value >= target
    workload: str


TARGETS: list[Target] = [
    # DESIGN.md section 8, as changed for issue 14
    Target("rtt_ratio_vs_grpc_floor", "rtt_rpc_parallel_sync_median_us", "rtt_grpc_floor_median_us", 0.6, "max",
           "rtt"),
    Target("rtt_aio_ratio_vs_grpc_aio_floor", "rtt_rpc_parallel_aio_median_us", "rtt_grpc_aio_floor_median_us", 0.6,
           "max", "rtt"),
    Target("submit_ratio_vs_multiprocessing", "calls_rpc_parallel_submit_per_s",
           "calls_multiprocessing_apply_async_per_s", 1.0, "min", "calls"),
    Target("aio_calls_ratio_vs_grpc_aio_client", "calls_rpc_parallel_aio_per_s", "calls_grpc_aio_client_per_s", 1.0,
           "min", "calls"),
    Target("payload_ratio_vs_grpc", "payload_rpc_parallel_mb_s", "payload_grpc_best_mb_s", 1.0, "min", "payload"),
    Target("pipe_ratio_vs_grpc_per_item", "pipe_rpc_parallel_items_s", "pipe_grpc_per_item_items_s", 5.0, "min",
           "pipe"),
    Target("cold_spawn_ratio_vs_multiprocessing", "cold_spawn_rpc_parallel_s", "cold_spawn_multiprocessing_s", 2.0,
           "max", "spawn"),
    Target("idle_worker_rss_mib", "rss_idle_worker_mib", None, 60.0, "max", "rss"),
    Target("stopped_pipe_growth_mib", "memory_pipe_stopped_growth_mib", None, 64.0, "max", "memory"),
    Target("one_way_worker_peak_mib", "memory_one_way_worker_peak_mib", None, 256.0, "max", "memory"),
    Target("one_way_master_peak_mib", "memory_one_way_master_peak_mib", None, 256.0, "max", "memory"),
    Target("map_unordered_ratio_vs_pool", "mr_unordered_rp_items_s", "mr_unordered_pool_items_s", 2.0, "min",
           "map_reduce"),
    Target("map_ordered_ratio_vs_pool", "mr_ordered_rp_items_s", "mr_ordered_pool_items_s", 2.0, "min", "map_reduce"),
    Target("map_cpu_efficiency", "mr_cpu_even_rp_efficiency", None, 0.9, "min", "map_reduce"),
    Target("map_cpu_efficiency_vs_pool", "mr_cpu_even_rp_efficiency", "mr_cpu_even_pool_efficiency", 1.0, "min",
           "map_reduce"),
    Target("map_uneven_efficiency", "mr_cpu_uneven_rp_efficiency", None, 0.85, "min", "map_reduce"),
]

# Ratios without a target, reported for context.
INFO_RATIOS: list[tuple[str, str, str]] = [
    ("rtt_aio_ratio_vs_grpc_floor", "rtt_rpc_parallel_aio_median_us", "rtt_grpc_floor_median_us"),
    # what any call on an open stream can reach here, and how close to it each variant comes
    ("rtt_grpc_stream_floor_vs_grpc_floor", "rtt_grpc_stream_floor_median_us", "rtt_grpc_floor_median_us"),
    ("rtt_ratio_vs_grpc_stream_floor", "rtt_rpc_parallel_sync_median_us", "rtt_grpc_stream_floor_median_us"),
    ("rtt_async_fn_ratio_vs_grpc_floor", "rtt_rpc_parallel_sync_async_fn_median_us", "rtt_grpc_floor_median_us"),
    ("rtt_aio_async_fn_ratio_vs_grpc_aio_floor", "rtt_rpc_parallel_aio_async_fn_median_us",
     "rtt_grpc_aio_floor_median_us"),
    ("spawn_ratio_vs_multiprocessing", "spawn_rpc_parallel_s", "spawn_multiprocessing_s"),
    ("submit_ratio_vs_best_grpc", "calls_rpc_parallel_submit_per_s", "calls_grpc_best_per_s"),
    ("relay_rtt_ratio_printing_vs_quiet", "relay_rtt_printing_median_us", "relay_rtt_quiet_median_us"),
    ("aio_calls_ratio_vs_best_grpc", "calls_rpc_parallel_aio_per_s", "calls_grpc_best_per_s"),
    ("pipe_ratio_vs_multiprocessing", "pipe_rpc_parallel_items_s", "pipe_multiprocessing_items_s"),
    ("payload_ratio_vs_grpc_sync_client", "payload_rpc_parallel_mb_s", "payload_grpc_sync_server_sync_client_mb_s"),
    ("map_first_result_warm_vs_fresh_pool", "mr_first_result_warm_rp_s", "mr_first_result_fresh_pool_s"),
    ("map_uneven_efficiency_vs_pool", "mr_cpu_uneven_rp_efficiency", "mr_cpu_uneven_pool_efficiency"),
    ("map_item_time_vs_pool", "mr_cpu_even_rp_item_ms", "mr_cpu_even_pool_item_ms"),
]


def median_figures(runs: Mapping[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in runs.items() if values}


def _pick(figures: Mapping[str, float], workload: str, unit_suffix: str, best: Any) -> float | None:
    values = [v for name, v in figures.items()
              if name.startswith(f"{workload}_grpc_") and name.endswith(f"_client_{unit_suffix}")]  # not derived
    return best(values) if values else None


def derive(figures: dict[str, float]) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """Add the derived figures to ``figures``; return (ratios, targets)."""
    aio = [v for name, v in figures.items() if name.startswith("rtt_grpc_") and name.endswith("_aio_client_median_us")]
    stream = [v for name, v in figures.items()
              if name.startswith("rtt_grpc_") and name.endswith("_client_stream_median_us")]
    best = {"rtt_grpc_floor_median_us": _pick(figures, "rtt", "median_us", min),
            "rtt_grpc_aio_floor_median_us": min(aio) if aio else None,
            "rtt_grpc_stream_floor_median_us": min(stream) if stream else None,
            "calls_grpc_best_per_s": _pick(figures, "calls", "per_s", max),
            "payload_grpc_best_mb_s": _pick(figures, "payload", "mb_s", max)}
    figures.update({name: value for name, value in best.items() if value is not None})
    ratios: dict[str, float] = {}
    targets: dict[str, dict[str, Any]] = {}
    for t in TARGETS:
        if t.figure not in figures or (t.baseline is not None and t.baseline not in figures):
            continue
        value = figures[t.figure] / figures[t.baseline] if t.baseline else figures[t.figure]
        if t.baseline:
            ratios[t.name] = value
        met = value <= t.target if t.kind == "max" else value >= t.target
        targets[t.name] = {"value": value, "target": t.target, "kind": t.kind, "met": bool(met),
                           "figure": t.figure, "baseline": t.baseline}
    for name, num, den in INFO_RATIOS:
        if num in figures and den in figures:
            ratios[name] = figures[num] / figures[den]
    return ratios, targets


# -- output ------------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _ratio(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _bound(t: Mapping[str, Any]) -> str:
    return ("≤ " if t["kind"] == "max" else "≥ ") + f"{t['target']:g}"


def render(figures: Mapping[str, float], runs: Mapping[str, list[float]], ratios: Mapping[str, float],
           targets: Mapping[str, Mapping[str, Any]], header: str, short: Mapping[str, str], cap_s: float) -> str:
    """The results as Markdown tables (figures with their runs, then targets and ratios); figures
    in ``short`` (name -> "done of asked") were measured over fewer calls than asked."""
    lines = [header, "", "| workload | system | variant | median | unit | runs |", "|---|---|---|---:|---|---|"]
    known = [f for f in [*FIGURES, *DERIVED] if f.name in figures]
    order = {w: i for i, w in enumerate(("spawn", "rtt", "relay", "calls", "payload", "pipe", "rss", "memory",
                                         "map_reduce"))}
    known.sort(key=lambda f: order[f.workload])  # stable: keeps table order inside a workload
    for f in known:
        rs = runs.get(f.name, [])
        mark = " ¹" if f.name in short or f.name.replace("_p99_", "_median_") in short else ""
        lines.append(f"| {f.workload} | {f.system} | {f.label}{mark} | {_fmt(figures[f.name])} | {f.unit} | "
                     f"{', '.join(_fmt(r) for r in rs) if len(rs) > 1 else ''} |")
    if short:
        lines += ["", f"¹ cut short by the {cap_s:g} s time cap per variant (fewest calls or items of a repetition): "
                  + "; ".join(f"{name} {what}" for name, what in short.items())]
    lines += ["", "| target | measured | target | met |", "|---|---:|---:|---|"]
    for name, t in targets.items():
        lines.append(f"| {name} | {_ratio(t['value'])} | {_bound(t)} | {'yes' if t['met'] else 'NO'} |")
    info = [n for n in ratios if n not in targets]
    if info:
        lines += ["", "| other ratio | value |", "|---|---:|"]
        lines += [f"| {n} | {_ratio(ratios[n])} |" for n in info]
    return "\n".join(lines)


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    for name, value in document["figures"].items():
        if not (isinstance(value, float | int) and math.isfinite(value)):
            raise ValueError(f"figure {name} is not a finite number: {value!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


_COLORS = {"rpc_parallel": "#1f77b4", "grpc": "#ff7f0e", "multiprocessing": "#2ca02c"}
_PANELS = [
    ("spawn", "spawn 4 workers + 1 call each (s, lower is better)", "cold_spawn_ratio_vs_multiprocessing"),
    ("rtt", "no-op call rtt, median (µs, lower is better)", "rtt_ratio_vs_grpc_floor"),
    ("calls", "small calls/s, 4 workers, 64 in flight (higher is better)", "submit_ratio_vs_multiprocessing"),
    ("payload", "16 MiB argument (MB/s, higher is better)", "payload_ratio_vs_grpc"),
    ("pipe", "ints streamed to the caller (items/s, log scale, higher is better)", "pipe_ratio_vs_grpc_per_item"),
    ("rss", "resident memory (MiB, lower is better)", "idle_worker_rss_mib"),
]


def draw_chart(path: Path, figures: Mapping[str, float], targets: Mapping[str, Mapping[str, Any]],
               title: str) -> bool:
    """Draw one bar panel per workload into ``path`` (PNG); False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(3, 2, figsize=(14, 13))
    for ax, (workload, panel_title, target_name) in zip(axes.flat, _PANELS, strict=True):
        rows = [f for f in [*FIGURES, *DERIVED] if f.workload == workload and f.name in figures
                and not f.name.endswith("_p99_us") and f.name not in ("calls_grpc_best_per_s",
                                                                     "payload_grpc_best_mb_s",
                                                                     "rtt_grpc_floor_median_us")]
        if not rows:
            ax.set_axis_off()
            continue
        labels = [f"{f.system}: {f.label}" for f in rows]
        values = [figures[f.name] for f in rows]
        ys = range(len(rows))
        ax.barh(ys, values, color=[_COLORS[f.system] for f in rows])
        ax.set_yticks(list(ys), labels, fontsize=8)
        ax.invert_yaxis()
        for y, v in zip(ys, values, strict=True):
            ax.text(v, y, " " + _fmt(v), va="center", fontsize=8)
        t = targets.get(target_name)
        sub = ""
        if t is not None:
            base = figures.get(t["baseline"]) if t["baseline"] else 1.0
            if base is not None:  # the value rpc_parallel must reach (min) or stay under (max)
                line = t["target"] * base
                ax.axvline(line, color="#d62728", linestyle="--", linewidth=1)
                ax.text(line, len(rows) - 0.5, f" target {_fmt(line)}", color="#d62728", fontsize=7, va="bottom")
                values.append(line)
            sub = f"\n{target_name} = {_ratio(t['value'])} (target {_bound(t)}): {'met' if t['met'] else 'NOT met'}"
        if workload == "pipe":  # rates two orders of magnitude apart
            ax.set_xscale("log")
            ax.set_xlim(min(values) / 2, max(values) * 8)
        else:
            ax.set_xlim(0, max(values) * 1.25)
        ax.set_title(panel_title + sub, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
