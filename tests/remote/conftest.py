"""Fixtures of tests/remote: real ssh hosts (network namespaces with their own sshd) and a real Slurm
cluster, each started once per session on first use (tests/remote/cluster.py).

Every test here is marked ``remote``. Where the machine cannot run them (not root, no network
namespaces, sshd or Slurm not installed) they skip with the reason, or fail with it when ``CI=true``.
After each test: every host's namespace holds only its sshd, the cluster has no job left (when the
test used it), and nothing leaked locally (rp.testing's check); what is left is killed or cancelled
and the test fails naming it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import psutil
import pytest

from rpc_parallel.testing import no_leaked_workers

from .cluster import Hosts, SlurmCluster, Unavailable

_HERE = Path(__file__).resolve().parent
_STRAGGLERS = 20.0  # how long a test's remote processes and jobs get to go after it


class _Session:
    """The session's hosts and cluster, once started (for the after-test checks)."""

    hosts: Hosts | None = None
    slurm: SlurmCluster | None = None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.remote)


def unavailable(reason: str) -> NoReturn:
    """Skip the test for ``reason``, or fail it when running in CI (``CI=true``)."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{reason} (CI=true: the remote tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Iterator[None]:
    """A test that starts hosts or a cluster of its own skips (fails in CI) as the fixtures do."""
    try:
        return (yield)
    except Unavailable as e:
        unavailable(str(e))


def _session_of(start: Callable[[], Hosts | SlurmCluster], slot: str) -> Iterator[Any]:
    """A session fixture's body: ``start()`` (unavailable: skip, or fail in CI), known to the
    after-test checks as ``_Session.<slot>`` while it runs, closed at the end, nothing left."""
    try:
        started = start()
    except Unavailable as e:
        unavailable(str(e))
    setattr(_Session, slot, started)
    try:
        yield started
    finally:
        setattr(_Session, slot, None)
        started.close()
    left = started.leftovers()
    assert not left, f"{type(started).__name__}.close() left {left}"


@pytest.fixture(scope="session")
def hosts() -> Iterator[Hosts]:
    """Hosts h1 (10.200.0.2) and h2 (10.200.0.3) with sshd on port 22, bridge address 10.200.0.1."""
    yield from _session_of(Hosts.start, "hosts")


@pytest.fixture(scope="session")
def slurm() -> Iterator[SlurmCluster]:
    """A two-node Slurm cluster (n1, n2, partition debug); use it through ``slurm.env``."""
    yield from _session_of(SlurmCluster.start, "slurm")


@pytest.fixture
def slurm_environ(slurm: SlurmCluster, monkeypatch: pytest.MonkeyPatch) -> SlurmCluster:
    """The cluster, with its ``env`` in this test's ``os.environ`` (restored after the test)."""
    for key, value in slurm.env.items():
        monkeypatch.setenv(key, value)
    return slurm


@pytest.fixture(autouse=True)
def remote_clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it left a process on a host, a job in the cluster, ``SLURM_CONF`` in
    ``os.environ``, or a local child process or listening socket (``no_leaked_workers``)."""
    slurm_conf = os.environ.get("SLURM_CONF")
    problems: list[str] = []
    try:
        with no_leaked_workers(ignore=_ssh_connection_process):
            yield
            if os.environ.get("SLURM_CONF") != slurm_conf:
                problems.append(f"the test left SLURM_CONF={os.environ.get('SLURM_CONF')} in os.environ")
                if slurm_conf is None:
                    del os.environ["SLURM_CONF"]
                else:
                    os.environ["SLURM_CONF"] = slurm_conf
            problems += _remote_leftovers(_Session.hosts, _Session.slurm if "slurm" in request.fixturenames else None)
    except AssertionError as e:
        problems.append(str(e))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def _remote_leftovers(hosts: Hosts | None, slurm: SlurmCluster | None) -> list[str]:
    """Wait up to ``_STRAGGLERS`` s for the hosts to hold only their sshd and the cluster to have no
    job; then kill or cancel what is left and describe it. Every host's link is put back up."""
    if hosts is not None:
        for host in hosts.hosts:
            host.link_up()
    deadline = time.monotonic() + _STRAGGLERS
    while True:
        now = {h.name: (h.pids(), h.sshd_pid) for h in hosts.hosts} if hosts is not None else {}
        extra = {name: {p for p in pids - {sshd} if not _ssh_connection(p)} for name, (pids, sshd) in now.items()}
        jobs = slurm.squeue() if slurm is not None else []
        if not any(extra.values()) and not jobs or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    problems = [f"the sshd of {name} is gone" for name, (pids, sshd) in now.items() if sshd not in pids]
    for name, pids in extra.items():
        if pids:
            problems.append(f"processes left on {name} after {_STRAGGLERS:.0f} s: " + "; ".join(map(_cmdline, sorted(pids))))
            for pid in pids:
                try:
                    psutil.Process(pid).kill()  # in a namespace of ours: started by this test
                except psutil.NoSuchProcess:
                    pass
    if jobs and slurm is not None:
        problems.append(f"slurm jobs left after {_STRAGGLERS:.0f} s (cancelled): {jobs}")
        slurm.cancel_all()
    return problems


def _ssh_connection_process(p: psutil.Process) -> bool:
    """The hosts' sshd processes descend from this process (the fixtures started them): their
    sessions are checked host by host, not as local leaks."""
    return p.name() == "sshd"


def _ssh_connection(pid: int) -> bool:
    """Whether ``pid`` is sshd's side of an SSH connection (``sshd: root@notty``), not a command run
    through it: the master's shared connection to a host (ControlMaster) outlives the workers it
    started by a few seconds, by design, and is not a leak."""
    try:
        return psutil.Process(pid).name() == "sshd"
    except psutil.Error:
        return False


def _cmdline(pid: int) -> str:
    try:
        return f"{pid} {' '.join(psutil.Process(pid).cmdline())}"
    except psutil.Error:
        return f"{pid} (gone)"
