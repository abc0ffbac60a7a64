"""Workers on other hosts through the system OpenSSH client: real sshd servers in network
namespaces (tests/remote/cluster.py), the master in the root namespace, mutual TLS between them."""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import psutil
import pytest

import rpc_parallel as rp
from rpc_parallel._pki import Authority
from rpc_parallel._proto import control_pb2, control_pb2_grpc
from rpc_parallel._protocol import TOKEN_KEY
from rpc_parallel._transport import open_channel
from tests.integration.conftest import Failures

from .cluster import Host, Hosts
from .masters import REPO, line, master_script, running, ssh
from .remote_workers import Probe

FAST = rp.RpcSettings(heartbeat=rp.Heartbeat(timeout=3.0, send_every=0.5), handshake_timeout=5.0)


def gone(host: Host, pid: int, within: float) -> bool:
    """Whether process ``pid`` has left ``host`` within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if pid not in host.pids():
            return True
        time.sleep(0.1)
    return False


def test_a_worker_runs_on_its_host_and_serves_there(hosts: Hosts) -> None:
    h1 = hosts.hosts[0]
    handle = Probe.spawn(5, how=ssh(h1), name="on-h1")
    try:
        assert handle.host == "h1"
        assert handle.address.startswith(h1.address + ":")  # it serves on h1's interface
        assert handle.ca  # over mutual TLS
        assert handle.pid in h1.pids()  # the pid is h1's worker process, not the local ssh client
        with Probe.connect(handle) as conn:
            assert conn.run(Probe.incr, 2) == 7
            where = conn.run(Probe.where)
            assert where["hostname"] == "h1" and int(where["pid"]) == handle.pid
            assert list(conn.run(Probe.count, 3)) == [0, 1, 2]
            big = os.urandom(4 << 20)
            assert conn.run(Probe.echo, big) == big
    finally:
        handle.shutdown()
    assert gone(h1, handle.pid, 10)


def test_a_handle_works_from_another_host(hosts: Hosts) -> None:
    h1, h2 = hosts.hosts[:2]
    a = Probe.spawn(100, how=ssh(h1))
    b = Probe.spawn(0, how=ssh(h2))
    try:
        with Probe.connect(b) as conn:  # the worker on h2 dials the one on h1 directly
            assert conn.run(Probe.call_other, a, 1) == 101
        with Probe.connect(a) as conn:
            assert conn.run(Probe.calls_so_far) == 1
    finally:
        a.shutdown()
        b.shutdown()


def test_spawns_on_one_host_share_one_ssh_connection(hosts: Hosts) -> None:
    h1 = hosts.hosts[0]
    before = h1.accepted_logins()
    # an option no other test uses: a destination of its own, so its first spawn opens a new connection
    how = rp.Ssh(h1.address, port=h1.port, user=h1.user, identity_file=h1.identity_file,
                 ssh_options=(*h1.ssh_options, "ConnectTimeout=13"))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        handles = list(pool.map(lambda i: Probe.spawn(i, how=how), range(8)))
    try:
        assert len({h.pid for h in handles}) == 8
        assert h1.accepted_logins() - before == 1  # one SSH handshake for eight workers
    finally:
        for h in handles:
            h.shutdown()


def test_config_and_secrets_never_show_on_the_command_line_or_in_the_environment(hosts: Hosts) -> None:
    h1 = hosts.hosts[0]
    handle = Probe.spawn(0, how=ssh(h1), env={"SPAWN_ENV": "secret-ish"})
    try:
        with Probe.connect(handle) as conn:
            assert conn.run(Probe.where)["SPAWN_ENV"] == "secret-ish"  # env= reached the worker
        remote = psutil.Process(handle.pid)  # namespaces share the pid namespace: we can look
        listing = " ".join(remote.cmdline()) + "\n" + "\n".join(f"{k}={v}" for k, v in remote.environ().items())
        local = "\n".join(" ".join(p.cmdline()) for p in psutil.Process().children(recursive=True)
                          if p.is_running())
        for secret in (handle.token, "secret-ish", "BEGIN PRIVATE KEY"):
            assert secret not in listing
            assert secret not in local
    finally:
        handle.shutdown()


def _control(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...]) -> control_pb2.SettingsReply:
    reply: control_pb2.SettingsReply = control_pb2_grpc.ControlStub(channel).Settings(
        control_pb2.SettingsRequest(), metadata=metadata, timeout=5)
    return reply


def test_clients_without_the_ca_or_the_token_are_refused_before_user_code(hosts: Hosts) -> None:
    h1 = hosts.hosts[0]
    handle = Probe.spawn(0, how=ssh(h1))
    token = ((TOKEN_KEY, handle.token),)
    try:
        with grpc.insecure_channel(handle.address) as plain, pytest.raises(grpc.RpcError) as refused:
            _control(plain, token)  # plaintext, with the token: refused at the handshake
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE

        stranger = Authority().issue("stranger")  # a certificate from another CA
        credentials = grpc.ssl_channel_credentials(root_certificates=stranger.ca, private_key=stranger.key,
                                                   certificate_chain=stranger.cert)
        options = (("grpc.ssl_target_name_override", stranger.server_name),)
        with grpc.secure_channel(handle.address, credentials, options=options) as other, \
                pytest.raises(grpc.RpcError) as refused:
            _control(other, token)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE

        with open_channel(handle.address, handle.settings, ca=handle.ca) as ours:
            with pytest.raises(grpc.RpcError) as refused:
                _control(ours, ())
            assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert _control(ours, token).settings_json  # and with it: accepted

        with Probe.connect(handle) as conn:
            assert conn.run(Probe.calls_so_far) == 0  # none of the refused calls reached the worker
    finally:
        handle.shutdown()


def test_plaintext_only_when_asked(hosts: Hosts) -> None:
    h1 = hosts.hosts[0]
    handle = Probe.spawn(1, how=ssh(h1, tls=False))
    try:
        assert handle.ca == ""
        with grpc.insecure_channel(handle.address) as plain:  # the token still guards it
            with pytest.raises(grpc.RpcError) as refused:
                _control(plain, ())
            assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with Probe.connect(handle) as conn:
            assert conn.run(Probe.incr, 1) == 2
    finally:
        handle.shutdown()


def test_your_own_pki(hosts: Hosts, tmp_path: Path) -> None:
    h1 = hosts.hosts[0]
    mine = Authority().issue("my service")
    for name, data in (("ca.pem", mine.ca), ("cert.pem", mine.cert), ("key.pem", mine.key)):
        (tmp_path / name).write_bytes(data)
    tls = rp.Tls(ca=tmp_path / "ca.pem", cert=tmp_path / "cert.pem", key=tmp_path / "key.pem")
    handle = Probe.spawn(3, how=ssh(h1, tls=tls))
    try:
        assert handle.ca == mine.ca_id
        with Probe.connect(handle) as conn:
            assert conn.run(Probe.incr, 1) == 4
    finally:
        handle.shutdown()


def test_a_wrapped_remote_worker_runs_under_its_prefix(hosts: Hosts) -> None:
    h1 = hosts.hosts[0]
    handle = Probe.spawn(0, how=ssh(h1).wrap(["taskset", "-c", "0"]))
    try:
        with Probe.connect(handle) as conn:
            assert conn.run(Probe.where)["cpus"] == "0"
    finally:
        handle.shutdown()


def test_ssh_failures_are_spawn_errors_with_ssh_s_stderr(hosts: Hosts) -> None:
    h1 = hosts.hosts[0]
    with pytest.raises(rp.SpawnError, match=r"(?s)ssh failed \(exit code 255: ssh's own error.*Connection refused") as failed:
        Probe.spawn(0, how=rp.Ssh(h1.address, port=h1.port + 1, identity_file=h1.identity_file,
                               ssh_options=h1.ssh_options), spawn_timeout=20)
    assert "could not start" in str(failed.value)
    with pytest.raises(rp.SpawnError, match=r"(?s)ssh failed .*Permission denied"):
        Probe.spawn(0, how=rp.Ssh(h1.address, port=h1.port, identity_file=os.devnull, ssh_options=h1.ssh_options))


def test_options_cross_the_host_boundary(hosts: Hosts, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    h1 = hosts.hosts[0]
    tmp_path.chmod(0o755)
    handle = Probe.spawn(0, how=ssh(h1), name="far", cd=str(tmp_path), umask=0o027)
    try:
        with Probe.connect(handle) as conn:
            where = conn.run(Probe.where)
            assert (where["cwd"], where["umask"]) == (str(tmp_path), "0o27")
            conn.run(Probe.say, "hello from h1")
        deadline = time.monotonic() + 10
        seen = ""
        while time.monotonic() < deadline:
            out, err = capfd.readouterr()
            seen += out + err
            if "[far] hello from h1!" in seen and "[far] hello from h1\n" in seen:
                break
            time.sleep(0.05)
        assert "[far] hello from h1\n" in seen and "[far] hello from h1!" in seen  # relayed across hosts
    finally:
        handle.shutdown()

    logged = Probe.spawn(0, how=ssh(h1), cd=str(tmp_path), redirect_stdout=rp.FileTruncate("out.log"))
    try:
        with Probe.connect(logged) as conn:
            conn.run(Probe.say, "to the file")
    finally:
        logged.shutdown()
    assert (tmp_path / "out.log").read_text() == "to the file\n"  # written on h1 (the file system is shared)


def test_on_failure_hears_of_a_remote_crash(hosts: Hosts) -> None:
    h1 = hosts.hosts[0]
    reported = Failures()
    handle = Probe.spawn(0, how=ssh(h1), on_failure=reported)
    os.kill(handle.pid, 9)
    assert isinstance(reported.first(20), rp.WorkerCrashedError)
    assert gone(h1, handle.pid, 5)


def test_killing_the_ssh_client_stops_the_worker(hosts: Hosts) -> None:
    h1 = hosts.hosts[0]
    reported = Failures()
    handle = Probe.spawn(0, how=ssh(h1), on_failure=reported)
    clients = [p for p in psutil.Process().children() if p.name() == "ssh"]
    assert clients
    for client in clients:
        client.kill()
    assert "its launcher (ssh) was killed" in str(reported.first(20))
    assert gone(h1, handle.pid, 10)


@pytest.mark.parametrize("policy", ["HEARTBEATER_TIMEOUT", "CONNECTION_CLOSED"])
def test_remote_workers_exit_when_their_master_is_killed(hosts: Hosts, tmp_path: Path, policy: str) -> None:
    h1 = hosts.hosts[0]
    script = master_script(tmp_path, f"""
        out = Probe.spawn(1, how=how, settings=FAST, shutdown_on=rp.ShutdownOn.{policy})
        print((out.handle if isinstance(out, rp.Connection) else out).pid, flush=True)
        time.sleep(600)
    """, h1)
    with running(script, tmp_path) as master:
        pid = int(line(master))
        assert pid in h1.pids()
        master.kill()  # kill -9: no exit hook runs
        master.wait()
        assert gone(h1, pid, 15)  # its heartbeat to the dead master ended it


def test_a_worker_running_other_code_is_refused(hosts: Hosts, tmp_path: Path) -> None:
    """h2 sees another copy of the worker module (bind-mounted over it in a mount namespace of
    the worker's own): the code check names the file; check_code=False lets it run."""
    h2 = hosts.hosts[1]
    module = REPO / "tests" / "remote" / "remote_workers.py"
    altered = tmp_path / "remote_workers.py"
    altered.write_text(module.read_text() + "\n# changed on h2\n")
    mounted = ssh(h2).wrap(["unshare", "--mount", "sh", "-c", f'mount --bind {altered} {module} && exec "$@"', "sh"])
    with pytest.raises(rp.ProtocolError, match=r"does not run the master's code.*remote_workers\.py"):
        Probe.spawn(0, how=mounted)
    handle = Probe.spawn(4, how=mounted, check_code=False)
    try:
        with Probe.connect(handle) as conn:
            assert conn.run(Probe.incr, 1) == 5
    finally:
        handle.shutdown()


def test_rpcpar_spawns_lists_calls_and_shuts_down_a_remote_worker(hosts: Hosts, tmp_path: Path) -> None:
    h1 = hosts.hosts[0]
    rpcpar = str(Path(sys.executable).parent / "rpcpar")
    env = {**os.environ, "RPCPAR_STATE_DIR": str(tmp_path / "state")}

    def run(*args: str) -> str:
        out = subprocess.run([rpcpar, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
                             check=False)
        assert out.returncode == 0, out.stderr
        return out.stdout

    options = [a for o in h1.ssh_options for a in ("--ssh-option", o)]
    handle = rp.WorkerHandle.from_json(run("spawn", "tests.remote.remote_workers:Probe", "--arg", "1", "--name", "far",
                                           "--host", f"{h1.user}@{h1.address}", "--ssh-port", str(h1.port),
                                           "--identity-file", h1.identity_file, *options).strip())
    try:
        assert handle.host == "h1" and handle.ca and handle.pid in h1.pids()
        record = tmp_path / "state" / f"{handle.worker_id}.json"
        assert record.stat().st_mode & 0o777 == 0o600
        assert "credentials" in record.read_text()
        rows = json.loads(run("ls", "--json"))
        assert [(r["name"], r["host"], r["tls"], r["answering"]) for r in rows] == [("far", "h1", True, True)]
        assert run("call", "far", "incr", "2").strip() == "3"
        assert run("call", handle.to_json(), "incr", "1").strip() == "4"  # the handle JSON finds the credentials
    finally:
        run("shutdown", "far")
    assert gone(h1, handle.pid, 10)


def test_a_worker_exits_when_its_master_becomes_unreachable(hosts: Hosts, tmp_path: Path) -> None:
    """h1's link goes down: no packet passes either way, no reset, only silence. The worker's
    heartbeat (the master's settings: 3 s here) ends it; the master hears it stopped answering."""
    h1 = hosts.hosts[0]
    script = master_script(tmp_path, """
        def main() -> None:
            handle = Probe.spawn(0, how=how, on_failure=lambda e: print("FAILED", type(e).__name__, e, flush=True))
            print(handle.pid, flush=True)
            time.sleep(600)

        rp.start_app(main, settings=FAST)
    """, h1)
    with running(script, tmp_path) as master:
        pid = int(line(master))
        assert pid in h1.pids()
        h1.link_down()
        try:
            assert gone(h1, pid, 15)  # it shut itself down
            report = line(master)  # the master's on_failure
            assert report.startswith("FAILED WorkerCrashedError") and "stopped answering" in report, report
        finally:
            h1.link_up()


def test_a_worker_told_to_outlive_its_master_does(hosts: Hosts, tmp_path: Path) -> None:
    h1 = hosts.hosts[0]
    script = master_script(tmp_path, """
        handle = Probe.spawn(7, how=rp.Ssh(host, port=port, identity_file=key, ssh_options=options, tls=False),
                             settings=FAST, shutdown_on=rp.ShutdownOn.CALLED_SHUTDOWN_FUNCTION)
        print(handle.to_json(), flush=True)
        time.sleep(600)
    """, h1)
    with running(script, tmp_path) as master:
        handle = rp.WorkerHandle.from_json(line(master))
        master.kill()
        master.wait()
    time.sleep(2 * FAST.heartbeat.timeout)
    assert handle.pid in h1.pids()  # its master is gone: it lives on
    with Probe.connect(handle) as conn:  # (plaintext: any holder of the handle may call it)
        assert conn.run(Probe.incr, 1) == 8
    handle.shutdown()
    assert gone(h1, handle.pid, 10)


def test_the_remote_hosts_example(hosts: Hosts) -> None:
    h1, h2 = hosts.hosts[:2]
    options = [a for o in h1.ssh_options for a in ("-o", o)]
    done = subprocess.run([sys.executable, str(REPO / "examples" / "remote_hosts.py"), "-i", h1.identity_file,
                           *options, f"root@{h1.address}", f"root@{h2.address}"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0].startswith(f"root@{h1.address}: worker ") and out[0].endswith(" on h1 (mutual TLS: yes)")
    assert out[1].startswith(f"root@{h2.address}: worker ") and out[1].endswith(" on h2 (mutual TLS: yes)")
    assert out[2] == f"root@{h2.address} -> root@{h1.address}: 2 + 3 = 5"


def test_a_worker_spawned_before_the_first_remote_one_reaches_it(hosts: Hosts) -> None:
    """A local worker got no certificate at its spawn (there was no CA yet): it asks its master."""
    local = Probe.spawn(0)
    remote = Probe.spawn(10, how=ssh(hosts.hosts[0]))
    try:
        with Probe.connect(local) as conn:
            assert conn.run(Probe.call_other, remote, 1) == 11
    finally:
        local.shutdown()
        remote.shutdown()


def test_start_app_from_a_relative_path_with_a_wildcard_listen_and_a_quiet_exit(hosts: Hosts, tmp_path: Path) -> None:
    """``cd dir && python master.py``: the remote worker does not look for master.py on its host
    (it gets the source); listen="0.0.0.0" binds every interface and advertises the routed one;
    a master that exits normally reports no failure of the workers that end with it."""
    h1 = hosts.hosts[0]
    script = master_script(tmp_path, """
        def main() -> None:
            handle = Probe.spawn(3, how=how, on_failure=lambda e: print("FAILED", e, flush=True))
            with Probe.connect(handle) as conn:
                print(conn.run(Probe.incr, 1), handle.host, flush=True)
            print(handle.pid, flush=True)

        rp.start_app(main, listen="0.0.0.0")
    """, h1)
    done = subprocess.run([sys.executable, script.name], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TMPDIR": str(tmp_path)}, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "4 h1"
    assert gone(h1, int(lines[1]), 10)
    assert not any(line.startswith("FAILED") for line in lines), done.stdout


def test_a_worker_told_to_outlive_its_master_is_not_reported_when_its_ssh_ends(hosts: Hosts) -> None:
    h1 = hosts.hosts[0]
    reported = Failures()
    handle = Probe.spawn(1, how=ssh(h1), on_failure=reported, shutdown_on=rp.ShutdownOn.CALLED_SHUTDOWN_FUNCTION)
    try:
        for client in [p for p in psutil.Process().children() if p.name() == "ssh"]:
            client.kill()
        time.sleep(3)
        assert not reported.got, reported.got  # it lives: nothing to report
        with Probe.connect(handle) as conn:
            assert conn.run(Probe.incr, 1) == 2
    finally:
        handle.shutdown()
    assert gone(h1, handle.pid, 10)
