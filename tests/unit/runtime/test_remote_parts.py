"""The parts of remote workers that need no host: launcher values, the certificates of mutual TLS,
addresses, and the commands the launchers run."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

import rpc_parallel as rp
from rpc_parallel import _launch
from rpc_parallel._errors import RpcParallelError
from rpc_parallel._pki import SERVER_NAME, Authority, Identity, ca_id, name_in_cert, read_pem
from rpc_parallel._transport import open_channel, route_source, split_host_port


def test_launchers_check_their_fields() -> None:
    assert rp.Ssh("h1", ssh_options=["A=b"]).ssh_options == ("A=b",)  # a list is kept as a tuple (hashable)
    for bad in ("", "-oProxyCommand=x"):
        with pytest.raises(TypeError, match="needs a host name"):
            rp.Ssh(bad)
    for bad_user in ("-oProxyCommand=x", "a@b", "a b", ""):
        with pytest.raises(TypeError, match="user must be a user name"):
            rp.Ssh("h1", user=bad_user)
    with pytest.raises(ValueError, match="port"):
        rp.Ssh("h1", port=0)
    with pytest.raises(TypeError, match="ssh_options must be a list of strings"):
        rp.Ssh("h1", ssh_options="A=b")
    with pytest.raises(TypeError, match="srun_args must be a list of strings"):
        rp.Slurm(srun_args="--mem=1G")
    with pytest.raises(TypeError, match="tls must be True"):
        rp.Ssh("h1", tls="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="partition"):
        rp.Slurm(partition="")


def test_every_launcher_wraps() -> None:
    for how in (rp.Local(), rp.Ssh("h1"), rp.Slurm()):
        wrapped = how.wrap(["nice"]).wrap(["taskset", "-c", "0"])
        assert wrapped.prefix == ("taskset", "-c", "0", "nice")  # the last wrap is outermost
        assert type(wrapped) is type(how)
        with pytest.raises(TypeError, match="wrap takes a non-empty list of strings"):
            how.wrap("nice")


class Lone(rp.Worker):
    @rp.rpc
    def f(self) -> int:
        return 1


def test_a_spawn_refuses_what_is_no_launcher() -> None:
    with pytest.raises(TypeError, match=r"how must be rp.Local\(\), rp.Ssh\(host\) or rp.Slurm\(\)"):
        Lone.spawn(how="h1")  # type: ignore[call-overload]


def test_the_ssh_command_carries_no_secret_and_runs_the_worker_under_its_prefix() -> None:
    how = rp.Ssh("h1", user="me", port=2222, python="/venv/bin/python", cwd="/srv/app", identity_file="/k",
                 ssh_options=["StrictHostKeyChecking=accept-new"]).wrap(["nice", "-n", "5"])
    argv = _launch._MUX.argv(how, "/tmp/cm", "REMOTE")
    assert argv[:4] == ["ssh", "-T", "-o", "StrictHostKeyChecking=accept-new"]  # the user's options first: they win
    assert ["-p", "2222"] == argv[argv.index("-p"):argv.index("-p") + 2]
    assert "BatchMode=yes" in argv and "ControlMaster=auto" in argv and "ControlPath=/tmp/cm" in argv
    assert argv[-5:] == ["-l", "me", "--", "h1", "REMOTE"]  # neither can pass for an option
    command = _launch._worker_command(how, ["/here/python", "-m", "rpc_parallel._worker_main", "child-of-1"])
    assert command == ["nice", "-n", "5", "/venv/bin/python", "-m", "rpc_parallel._worker_main", "child-of-1"]
    assert shlex.split(shlex.join(command)) == command


def test_certificates_of_an_ephemeral_authority_and_of_your_own(tmp_path: Path) -> None:
    authority = Authority()
    a, b = authority.issue("a"), authority.issue("b")
    assert a.ca == b.ca == authority.ca and a.cert != b.cert and a.key != b.key
    assert a.ca_id == ca_id(authority.ca) and len(a.ca_id) == 16
    assert name_in_cert(a.cert) == SERVER_NAME
    assert Identity.from_json(a.to_json()) == a
    assert a.key.decode() not in repr(a)
    (tmp_path / "ca.pem").write_bytes(a.ca)
    assert read_pem(tmp_path / "ca.pem", "ca") == read_pem(a.ca.decode(), "ca") == read_pem(a.ca, "ca") == a.ca
    with pytest.raises(RpcParallelError, match="cannot read the cert file"):
        read_pem(tmp_path / "missing.pem", "cert")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(RpcParallelError, match="is not PEM"):
        read_pem(tmp_path / "junk.pem", "key")
    assert Authority().ca != authority.ca  # each master its own


def test_the_slurm_controller_s_address() -> None:
    assert _launch.controller_address("ctl(10.0.0.9)") == "10.0.0.9"  # a name that may not resolve
    assert _launch.controller_address("localhost") == "localhost"


def test_addresses() -> None:
    assert split_host_port("10.0.0.5") == ("10.0.0.5", 0)
    assert split_host_port("10.0.0.5:7000") == ("10.0.0.5", 7000)
    assert split_host_port("[::1]:7000") == ("::1", 7000)
    assert split_host_port("host.example") == ("host.example", 0)
    assert route_source("127.0.0.1") == "127.0.0.1"
    with pytest.raises(OSError, match="cannot resolve"):
        route_source("no-such-host.invalid")
    with pytest.raises(ValueError, match="listen must be"):
        rp.expert.start_master_server(listen="host:port")


def test_a_tls_server_is_reachable_only_with_a_certificate_of_its_ca() -> None:
    with pytest.raises(rp.WorkerConnectionError, match="neither this process nor its master holds one"):
        open_channel("127.0.0.1:1", rp.RpcSettings(), ca="0123456789abcdef")


def test_the_handle_carries_its_ca_and_host() -> None:
    handle = rp.WorkerHandle(worker_id="w", address="10.0.0.2:5", token="t", ca="abc", host="h1")
    assert rp.WorkerHandle.from_json(handle.to_json()) == handle
    old = rp.WorkerHandle.from_json('{"worker_id": "w", "address": "127.0.0.1:5"}')  # a record written before
    assert (old.ca, old.host) == ("", "")
    assert os.fspath(rp.Ssh("h", identity_file=Path("/k")).identity_file or "") == "/k"
