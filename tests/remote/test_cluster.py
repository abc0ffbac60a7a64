"""The remote test fixtures are real: each host is its own network namespace with its own hostname and
a real sshd; the hosts and the master reach each other over TCP; Slurm runs real jobs on its two nodes;
closing leaves nothing behind, and what a crashed run left is cleaned at the next start."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from .cluster import Hosts, SlurmCluster, processes_of, require

REPO = Path(__file__).resolve().parents[2]


def _bash(script: str) -> str:
    """A remote command running ``script`` with bash (root's login shell may be any)."""
    return shlex.join(["bash", "-c", script])


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_each_host_answers_ssh_with_its_own_hostname(hosts: Hosts) -> None:
    assert [(h.name, h.address, h.port, h.user) for h in hosts.hosts] == [
        ("h1", "10.200.0.2", 22, "root"), ("h2", "10.200.0.3", 22, "root")]
    for host in hosts.hosts:
        assert host.ssh_options == ("StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LogLevel=ERROR")
        assert os.path.isfile(host.identity_file) and host.netns == f"rpt-{host.name}"
        logins = host.accepted_logins()
        done = host.run("hostname")
        assert (done.returncode, done.stdout.strip()) == (0, host.name), done.stderr
        assert host.accepted_logins() == logins + 1  # one handshake, counted from sshd's log


def test_each_host_is_its_own_network_namespace(hosts: Hosts) -> None:
    ours = os.readlink("/proc/self/ns/net")
    seen = set()
    for host in hosts.hosts:
        assert host.pids() == {host.sshd_pid}  # between tests only the listener lives there
        assert psutil.Process(host.sshd_pid).exe() == "/usr/sbin/sshd"
        done = host.run("readlink /proc/self/ns/net")
        assert done.returncode == 0, done.stderr
        seen.add(done.stdout.strip())
    assert len(seen) == 2 and ours not in seen
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert {"rpt-h1", "rpt-h2"} <= {line.split()[0] for line in names.splitlines()}


def test_h1_reaches_h2_over_tcp(hosts: Hosts) -> None:
    h1, h2 = hosts["h1"], hosts["h2"]
    done = h1.run(_bash(f"exec 3<>/dev/tcp/{h2.address}/{h2.port} && head -c 8 <&3"))
    assert (done.returncode, done.stdout) == (0, "SSH-2.0-"), done.stderr


def test_a_server_on_the_master_address_is_reachable_from_every_host_but_loopback_is_not(hosts: Hosts) -> None:
    assert hosts.master_address == "10.200.0.1"
    with socket.create_server((hosts.master_address, 0)) as server, socket.create_server(("127.0.0.1", 0)) as lo:
        port, lo_port = server.getsockname()[1], lo.getsockname()[1]

        def serve() -> None:
            for _ in hosts.hosts:
                conn, (peer, _) = server.accept()
                with conn:
                    conn.sendall(f"hello {peer}\n".encode())

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        for host in hosts.hosts:
            done = host.run(_bash(f"exec 3<>/dev/tcp/{hosts.master_address}/{port} && cat <&3"))
            assert (done.returncode, done.stdout) == (0, f"hello {host.address}\n"), done.stderr
            # the root namespace's 127.0.0.1 is not the host's: nothing listens on that port there
            done = host.run(_bash(f"exec 3<>/dev/tcp/127.0.0.1/{lo_port}"))
            assert done.returncode != 0 and "Connection refused" in done.stderr
        thread.join(5)
        assert not thread.is_alive()


def test_link_down_cuts_a_host_off_until_link_up(hosts: Hosts) -> None:
    h1, h2 = hosts["h1"], hosts["h2"]
    h2.link_down()
    try:
        with pytest.raises(OSError):  # TimeoutError: the SYN goes unanswered
            socket.create_connection((h2.address, h2.port), timeout=1).close()
        done = h1.run(_bash(f"timeout 1 bash -c 'exec 3<>/dev/tcp/{h2.address}/{h2.port}'"))
        assert done.returncode != 0  # nor can h1 reach it
    finally:
        h2.link_up()
    done = h2.run("hostname")
    assert (done.returncode, done.stdout.strip()) == (0, "h2"), done.stderr


def test_srun_runs_tasks_on_the_nodes_of_the_partition(slurm: SlurmCluster) -> None:
    assert (slurm.nodes, slurm.partition, slurm.env) == (["n1", "n2"], "debug", {"SLURM_CONF": slurm.conf})
    done = slurm.run("srun", "-N1", "-n1", "hostname")
    assert (done.returncode, done.stdout.strip()) == (0, socket.gethostname()), done.stderr  # nodes are this machine
    done = slurm.run("srun", "-N2", "-p", slurm.partition, "sh", "-c", "echo $SLURMD_NODENAME $SLURM_JOB_PARTITION")
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == ["n1 debug", "n2 debug"]
    done = slurm.run("srun", "-p", "nosuch", "true")
    assert done.returncode != 0 and "invalid partition" in done.stderr.lower(), done.stderr
    assert slurm.squeue() == []


def test_srun_passes_the_callers_environment(slurm: SlurmCluster) -> None:
    done = subprocess.run(["srun", "-n1", "sh", "-c", "echo $RPT_PROBE"], capture_output=True, text=True,
                          env={**os.environ, **slurm.env, "RPT_PROBE": "carried"}, timeout=30, check=False)
    assert (done.returncode, done.stdout) == (0, "carried\n"), done.stderr


def test_sbatch_runs_a_batch_job(slurm: SlurmCluster, tmp_path: Path) -> None:
    out = tmp_path / "job.out"
    done = slurm.run("sbatch", "--parsable", f"--output={out}", "--wrap", "echo $SLURM_JOB_ID $SLURMD_NODENAME")
    assert done.returncode == 0, done.stderr
    job = done.stdout.strip()
    _wait_for(lambda: not any(line.split()[0] == job for line in slurm.squeue()))  # sbatch --wait polls every 10 s
    assert re.fullmatch(rf"{job} n[12]\n", out.read_text())


def test_salloc_runs_steps_in_its_allocation(slurm: SlurmCluster) -> None:
    done = slurm.run("salloc", "-N2", "-n2", "srun", "sh", "-c", "echo $SLURMD_NODENAME $SLURM_JOB_ID")
    assert done.returncode == 0, done.stderr
    lines = sorted(done.stdout.splitlines())
    assert [line.split()[0] for line in lines] == ["n1", "n2"]
    assert len({line.split()[1] for line in lines}) == 1  # both steps in one job
    assert "Granted job allocation" in done.stderr


def test_squeue_lists_a_running_job_until_it_is_cancelled(slurm: SlurmCluster) -> None:
    done = slurm.run("sbatch", "--parsable", "--job-name=sleeper", "--output=/dev/null", "--wrap", "sleep 300")
    job = done.stdout.strip()
    assert done.returncode == 0, done.stderr
    try:
        assert any(line.split()[:2] == [job, "sleeper"] for line in slurm.squeue())
    finally:
        slurm.cancel_all()
    # remote_clean waits for the job to go


def test_the_cluster_stays_out_of_this_process_environment(slurm: SlurmCluster) -> None:
    assert os.environ.get("SLURM_CONF") != slurm.conf


def test_slurm_environ_puts_it_in_this_test_environment(slurm_environ: SlurmCluster) -> None:
    assert os.environ["SLURM_CONF"] == slurm_environ.conf
    done = subprocess.run(["srun", "-n1", "true"], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr


def test_close_leaves_nothing_behind() -> None:
    """Hosts and a cluster of their own (tag rptx, next to the session's): used, left with a stray
    process on a host and a running job, then closed."""
    hosts = Hosts.start(names=["t1"], tag="rptx", subnet="10.200.0.128/28")
    slurm = SlurmCluster.start(tag="rptx", ctld_port=16818, node_port=17011)
    try:
        (t1,) = hosts.hosts
        assert t1.address == "10.200.0.130" and t1.run("hostname").stdout == "t1\n"
        stray = t1.run("setsid sleep 300 > /dev/null 2>&1 < /dev/null &")
        assert stray.returncode == 0, stray.stderr
        started_job = Path(slurm.directory) / "job-started"
        job = slurm.run("sbatch", "--output=/dev/null", "--wrap", f"touch {started_job}; sleep 300")
        assert job.returncode == 0, job.stderr
        _wait_for(started_job.exists)
        started = [*hosts.processes(), *slurm.processes()]
        assert _kinds(hosts.processes()) == {"sshd", "sleep"}
        assert _kinds(slurm.processes()) == {"munged", "slurmctld", "slurmd", "slurmstepd", "sh", "sleep"}
    finally:
        slurm.close()
        hosts.close()
    assert (hosts.leftovers(), slurm.leftovers()) == ([], [])
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    assert "rptx" not in netns and "rptx" not in links
    assert [pid for pid in started if not _gone(pid)] == []
    assert not os.path.exists(hosts.directory) and not os.path.exists(slurm.directory)


_CRASH = textwrap.dedent("""
    import json, os, signal, time
    from tests.remote.cluster import Hosts, SlurmCluster
    hosts = Hosts.start(names=["z1"], tag="rptz", subnet="10.200.0.144/28")
    slurm = SlurmCluster.start(nodes=1, tag="rptz", ctld_port=16819, node_port=17021)
    (z1,) = hosts.hosts
    z1.run("setsid sleep 300 > /dev/null 2>&1 < /dev/null &")
    started = os.path.join(slurm.directory, "job-started")
    slurm.run("sbatch", "--output=/dev/null", "--wrap", f"touch {started}; sleep 300")
    while not os.path.exists(started):
        time.sleep(0.05)
    print(json.dumps({"dirs": [hosts.directory, slurm.directory], "sshd": z1.sshd_pid}), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no atexit: what a crash leaves
""")


def test_what_a_crashed_run_left_is_cleaned_at_the_next_start() -> None:
    require()  # before the crashing process leaves anything
    crashed = subprocess.run([sys.executable, "-c", _CRASH], cwd=REPO, capture_output=True, text=True, timeout=30,
                             check=False)
    assert crashed.returncode == -9, crashed.stderr
    left = json.loads(crashed.stdout)
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert "rptz-z1" in netns and all(os.path.isdir(d) for d in left["dirs"])  # the crash left all that
    in_netns = subprocess.run(["ip", "netns", "pids", "rptz-z1"], capture_output=True, text=True, check=True).stdout
    orphans = [*map(int, in_netns.split()), *(pid for d in left["dirs"] for pid in processes_of(d))]
    assert left["sshd"] in orphans
    assert _kinds(orphans) == {"sshd", "sleep", "munged", "slurmctld", "slurmd", "slurmstepd", "sh"}
    with Hosts.start(names=["z1"], tag="rptz", subnet="10.200.0.144/28") as hosts, \
            SlurmCluster.start(nodes=1, tag="rptz", ctld_port=16819, node_port=17021) as slurm:  # the same ports
        assert [pid for pid in orphans if not _gone(pid)] == []
        assert not any(os.path.exists(d) for d in left["dirs"])
        assert hosts.hosts[0].pids() == {hosts.hosts[0].sshd_pid}  # the stray sleep died with its namespace
        assert slurm.squeue() == []  # a fresh cluster: the old job is not known
    assert (hosts.leftovers(), slurm.leftovers()) == ([], [])


def _kinds(pids: list[int]) -> set[str]:
    """What these processes run: "sshd", "slurmstepd", "sleep"... (their command's first word)."""
    kinds = set()
    for pid in pids:
        try:
            kinds.add(os.path.basename(" ".join(psutil.Process(pid).cmdline()).split()[0]).rstrip(":"))
        except (psutil.Error, IndexError):
            kinds.add(f"{pid} (gone)")
    return kinds


def _wait_for(ready: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "not ready in time"
        time.sleep(0.05)
