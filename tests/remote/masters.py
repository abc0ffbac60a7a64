"""Helpers of the remote tests: the launcher for a host, and masters in processes of their own
(for the tests that kill them): a script from a body of code, and the process running it, always
stopped and reaped."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import rpc_parallel as rp

from .cluster import Host

REPO = Path(__file__).resolve().parents[2]


def ssh(host: Host, **kw: object) -> rp.Ssh:
    """The launcher for ``host``: its throwaway key and options."""
    return rp.Ssh(host.address, port=host.port, user=host.user, identity_file=host.identity_file,
                  ssh_options=host.ssh_options, **kw)  # type: ignore[arg-type]


def master_script(tmp_path: Path, body: str, host: Host | None = None) -> Path:
    """A program whose ``__main__`` block is ``body``: it has ``rp``, ``Probe``, ``FAST`` (a 3 s
    heartbeat), ``time`` and, given ``host``, ``host, port, key, options`` and ``how`` (its rp.Ssh)."""
    ssh = ""
    if host is not None:
        ssh = (f"host, port, key, options = {host.address!r}, {host.port}, {host.identity_file!r}, "
               f"{tuple(host.ssh_options)!r}\n"
               "how = rp.Ssh(host, port=port, identity_file=key, ssh_options=options)\n")
    script = tmp_path / "master.py"
    script.write_text(textwrap.dedent(f"""\
        import os, sys, time
        sys.path.insert(0, {str(REPO)!r})
        import rpc_parallel as rp
        from tests.remote.remote_workers import Probe

        FAST = rp.RpcSettings(heartbeat=rp.Heartbeat(timeout=3.0, send_every=0.5), handshake_timeout=5.0)
        """) + ssh + 'if __name__ == "__main__":\n' + textwrap.indent(textwrap.dedent(body), "    "))
    return script


@contextlib.contextmanager
def running(script: Path, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """``script`` running, its stdout a pipe; killed (if it still runs) and reaped at the end. Its
    temporary files (the ssh control sockets) go under ``tmp_path``."""
    master = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        yield master
    finally:
        if master.poll() is None:
            master.kill()
        master.wait()
        if master.stdout is not None:
            master.stdout.close()


def line(master: subprocess.Popen[str]) -> str:
    """The next line the master printed."""
    assert master.stdout is not None
    return master.stdout.readline()
