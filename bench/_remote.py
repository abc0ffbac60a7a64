"""``python -m bench --remote``: the figures of remote workers, as ratios within one run.

The hosts are network namespaces on a bridge, each with its own sshd, and the cluster is a real
two-node Slurm cluster: the machinery of the remote tests (``tests/remote/cluster.py``, which needs
root). The "hosts" share this machine's cores, so the network is a veth pair, not a wire: the
figures show what rpc_parallel adds (ssh, TLS, srun), not what a network costs.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rpc_parallel as rp
from tests.remote.cluster import Hosts, SlurmCluster, Unavailable
from tests.remote.remote_workers import Probe

OUT = Path(__file__).resolve().parent / "out" / "remote.json"
MIB = 1 << 20


def _log(message: str) -> None:
    print(f"[bench --remote] {message}", file=sys.stderr, flush=True)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _spawn_many(how: rp.Local | rp.Ssh | rp.Slurm, n: int) -> tuple[float, list[rp.WorkerHandle]]:
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return _timed(lambda: list(pool.map(lambda i: Probe.spawn(i, how=how), range(n))))


def _stop(handles: list[rp.WorkerHandle]) -> None:
    for h in handles:
        h.shutdown()
    time.sleep(0.2)


def _rtt(handle: rp.WorkerHandle, calls: int) -> float:
    """Median seconds of one blocking rpc."""
    with Probe.connect(handle) as conn:
        for _ in range(50):
            conn.run(Probe.incr, 1)
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            conn.run(Probe.incr, 1)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _payload(handle: rp.WorkerHandle, reps: int) -> float:
    """MiB/s of a 16 MiB echo (sent and returned: 32 MiB moved per call), best of ``reps``."""
    data = os.urandom(16 * MIB)
    with Probe.connect(handle) as conn:
        conn.run(Probe.echo, data)
        best = min(_timed(lambda: conn.run(Probe.echo, data))[0] for _ in range(reps))
    return 32 / best


def measure(hosts: Hosts, slurm: SlurmCluster, reps: int, calls: int) -> dict[str, float]:
    h1 = hosts.hosts[0]

    def ssh(*extra: str, tls: bool = True) -> rp.Ssh:
        return rp.Ssh(h1.address, port=h1.port, user=h1.user, identity_file=h1.identity_file,
                      ssh_options=(*h1.ssh_options, *extra), tls=tls)

    runs: dict[str, list[float]] = {k: [] for k in (
        "spawn4_local_s", "spawn4_ssh_s", "spawn_ssh_first_s", "spawn_ssh_later_s", "spawn_srun_s")}
    for rep in range(reps):
        t, handles = _spawn_many(rp.Local(), 4)
        runs["spawn4_local_s"].append(t)
        _stop(handles)
        # a destination of its own per repetition (another ssh option): its first spawn opens the connection
        fresh = ssh(f"ConnectTimeout={20 + rep}")
        t, first = _timed(functools.partial(Probe.spawn, 0, how=fresh))
        runs["spawn_ssh_first_s"].append(t)
        t, later = _timed(functools.partial(Probe.spawn, 0, how=fresh))
        runs["spawn_ssh_later_s"].append(t)
        _stop([first, later])
        t, handles = _spawn_many(ssh(), 4)  # the shared connection is up: the steady state
        runs["spawn4_ssh_s"].append(t)
        _stop(handles)
        t, step = _timed(lambda: Probe.spawn(0, how=rp.Slurm()))
        runs["spawn_srun_s"].append(t)
        _stop([step])
        _log(f"spawns: repetition {rep + 1}/{reps} done")

    figures = {k: statistics.median(v) for k, v in runs.items()}
    local = Probe.spawn(0)
    tls = Probe.spawn(0, how=ssh())
    plain = Probe.spawn(0, how=ssh(tls=False))
    try:
        figures["rtt_local_us"] = _rtt(local, calls) * 1e6
        figures["rtt_remote_tls_us"] = _rtt(tls, calls) * 1e6
        figures["rtt_remote_plain_us"] = _rtt(plain, calls) * 1e6
        figures["payload16_remote_tls_mib_s"] = _payload(tls, reps)
        figures["payload16_remote_plain_mib_s"] = _payload(plain, reps)
    finally:
        _stop([local, tls, plain])
    return figures


def ratios(f: dict[str, float]) -> dict[str, float]:
    return {
        "spawn4 ssh / local": f["spawn4_ssh_s"] / f["spawn4_local_s"],
        "ssh spawn first / later (multiplexing)": f["spawn_ssh_first_s"] / f["spawn_ssh_later_s"],
        "rtt remote mTLS / plaintext (TLS cost)": f["rtt_remote_tls_us"] / f["rtt_remote_plain_us"],
        "16 MiB remote mTLS / plaintext throughput": f["payload16_remote_tls_mib_s"] / f["payload16_remote_plain_mib_s"],
        "srun spawn / local spawn of 4": f["spawn_srun_s"] / f["spawn4_local_s"],
    }


def main(quick: bool, json_path: Path | None) -> int:
    reps, calls = (2, 300) if quick else (5, 2000)
    try:
        hosts = Hosts.start()
    except Unavailable as exc:
        _log(f"cannot run: {exc}")
        return 2
    try:
        try:
            slurm = SlurmCluster.start()
        except Unavailable as exc:
            _log(f"cannot run: {exc}")
            return 2
        saved = dict(os.environ)
        os.environ.update(slurm.env)
        os.environ.pop("SLURM_JOB_ID", None)
        try:
            figures = measure(hosts, slurm, reps, calls)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            slurm.close()
    finally:
        hosts.close()
    derived = ratios(figures)
    print(f"remote workers, medians of {reps} repetitions ({calls} calls per rtt); hosts are network "
          f"namespaces on this machine ({os.cpu_count()} CPUs)")
    for name, value in figures.items():
        print(f"  {name:34} {value:10.4g}")
    for name, value in derived.items():
        print(f"  {name:44} {value:6.2f}")
    path = json_path or OUT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"figures": figures, "ratios": derived, "repetitions": reps, "calls": calls},
                               indent=2) + "\n")
    _log(f"wrote {path}")
    return 0
