"""Workers as Slurm job steps on a real two-node cluster (munge, slurmctld, two slurmd), and one
map spread over local, ssh and Slurm workers."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

import rpc_parallel as rp
from tests.integration.conftest import Failures

from .cluster import Hosts, SlurmCluster
from .masters import line, master_script, running, ssh
from .remote_workers import Probe, Square


@pytest.fixture
def on_slurm(slurm: SlurmCluster, monkeypatch: pytest.MonkeyPatch) -> SlurmCluster:
    """The cluster, with this process's environment pointing at it (srun and scontrol read it)."""
    for key, value in slurm.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    return slurm


def _no_jobs(slurm: SlurmCluster, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not slurm.squeue():
            return True
        time.sleep(0.2)
    return False


def test_a_worker_runs_as_a_job_step(on_slurm: SlurmCluster) -> None:
    handle = Probe.spawn(2, how=rp.Slurm(partition=on_slurm.partition), name="stepped")
    try:
        assert handle.host in on_slurm.nodes
        assert handle.ca
        assert len(on_slurm.squeue()) == 1  # its own job, running
        with Probe.connect(handle) as conn:
            assert conn.run(Probe.incr, 3) == 5
            assert conn.run(Probe.where)["SLURMD_NODENAME"] == handle.host
    finally:
        handle.shutdown()
    assert _no_jobs(on_slurm, 10)


def test_credentials_never_cross_the_network_in_the_clear(on_slurm: SlurmCluster) -> None:
    """srun's I/O to the step is plaintext TCP: the config (the worker's key, the token) is sealed
    with munge. Every packet on the loopback interface during a spawn is captured and searched."""
    captured = bytearray()
    stop = threading.Event()
    sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL
    sniffer.bind(("lo", 0))
    sniffer.settimeout(0.1)

    def sniff() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                captured.extend(sniffer.recv(65535))

    thread = threading.Thread(target=sniff)
    thread.start()
    try:
        handle = Probe.spawn(1, how=rp.Slurm(), env={"SPAWN_ENV": "not-for-the-wire"})
    finally:
        stop.set()
        thread.join()
        sniffer.close()
    try:
        with Probe.connect(handle) as conn:
            assert conn.run(Probe.where)["SPAWN_ENV"] == "not-for-the-wire"
        assert len(captured) > 10_000  # the spawn's traffic was seen
        for secret in (b"PRIVATE KEY", handle.token.encode(), b"not-for-the-wire"):
            assert secret not in captured
    finally:
        handle.shutdown()
    assert _no_jobs(on_slurm, 10)


def test_a_bad_partition_is_a_spawn_error_with_srun_s_words(on_slurm: SlurmCluster) -> None:
    with pytest.raises(rp.SpawnError, match=r"(?s)srun failed.*Invalid partition name"):
        Probe.spawn(0, how=rp.Slurm(partition="nonexistent"))
    assert _no_jobs(on_slurm, 10)


def test_killing_the_master_ends_its_steps(on_slurm: SlurmCluster, tmp_path: Path) -> None:
    script = master_script(tmp_path, """
        handle = Probe.spawn(1, how=rp.Slurm(), settings=FAST)
        print(handle.host, flush=True)
        time.sleep(600)
    """)
    with running(script, tmp_path) as master:
        assert line(master).strip() in on_slurm.nodes
        assert len(on_slurm.squeue()) == 1
        master.kill()  # kill -9
        master.wait()
        assert _no_jobs(on_slurm, 20)  # the worker's heartbeat ended it, and its step with it


def test_killing_srun_ends_the_worker(on_slurm: SlurmCluster) -> None:
    failures = Failures()
    handle = Probe.spawn(0, how=rp.Slurm(), on_failure=failures)
    (srun,) = [p for p in psutil.Process().children() if p.name() == "srun"]
    srun.kill()
    assert "its launcher (srun) was killed" in str(failures.first(20))
    assert _no_jobs(on_slurm, 10)
    assert not psutil.pid_exists(handle.pid) or psutil.Process(handle.pid).status() == psutil.STATUS_ZOMBIE


def test_inside_an_allocation_workers_are_steps_of_it(on_slurm: SlurmCluster, tmp_path: Path) -> None:
    script = master_script(tmp_path, """
        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            handles = list(pool.map(lambda i: Probe.spawn(i, how=rp.Slurm()), range(2)))
        for h in handles:
            with Probe.connect(h) as conn:
                print(h.host, conn.run(Probe.where)["SLURMD_NODENAME"], flush=True)
            h.shutdown()
        print("job", os.environ["SLURM_JOB_ID"], flush=True)
    """)
    out = subprocess.run(["salloc", "-N2", "-n2", sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert sorted(line.split()[0] for line in lines[:2]) == sorted(on_slurm.nodes)  # both steps at once
    assert all(line.split()[0] == line.split()[1] for line in lines[:2])
    assert lines[2].startswith("job ")
    assert _no_jobs(on_slurm, 10)


def test_one_map_over_local_ssh_and_slurm_workers(on_slurm: SlurmCluster, hosts: Hosts) -> None:
    h1 = hosts.hosts[0]
    config = rp.map_reduce.Config(local=1, remote=[(ssh(h1), 2), (rp.Slurm(), 2)])
    assert config.workers == 5
    out = list(rp.map_reduce.map(Square, range(2000), config=config))
    assert [o[0] for o in out] == [x * x for x in range(2000)]
    places = {o[1] for o in out}
    assert "h1" in places and places & set(on_slurm.nodes), places
    assert _no_jobs(on_slurm, 10)


def test_remote_config_takes_only_launchers() -> None:
    with pytest.raises(TypeError, match="is not a launcher"):
        rp.map_reduce.Config(remote=[("h1", 2)])  # type: ignore[list-item]
