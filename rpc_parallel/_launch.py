"""Remote launchers: the command that starts a worker through ``ssh`` or ``srun``, the SSH
connection shared by every worker on one host (ControlMaster), and the host a remote worker
reaches this master from.

A launcher process (ssh, srun) only carries the worker's stdin, stdout and stderr: the worker's
lifetime is its heartbeat to the master, since killing an ssh client without a terminal leaves the
remote command running.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence

from ._errors import SpawnError
from ._options import Remote, Ssh

__all__ = ("MUNGE_SOCKET_ENV", "launch", "launcher_name", "reach_host", "seal", "stop_remote", "unseal")

_CONTROL_PERSIST = 10  # seconds an idle shared SSH connection stays up after its last worker ended
_MUX_WAIT = 30.0  # at most, for the first ssh to a host to have set up the shared connection

Env = Mapping[str, str]


def launcher_name(how: Remote) -> str:
    return "ssh" if isinstance(how, Ssh) else "srun"


def _destination(how: Ssh) -> list[str]:
    """The end of an ssh command line before the remote command: the user and the host, after
    ``--`` (so that neither can be taken for an option)."""
    return [*(["-l", how.user] if how.user else []), "--", how.host]


def _ssh_base(how: Ssh) -> list[str]:
    """``ssh`` with the launcher's options (the user's first: for ssh, the first value of an option wins)."""
    argv = ["ssh", "-T"]
    for option in how.ssh_options:
        argv += ["-o", option]
    argv += ["-o", "BatchMode=yes", "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3"]
    if how.port != 22:
        argv += ["-p", str(how.port)]
    if how.identity_file is not None:
        argv += ["-i", os.fspath(how.identity_file)]
    return argv


class _SshMux:
    """The shared SSH connections of this master: one control socket per destination, in a 0700
    directory of its own; the first spawn to a destination opens it, the others wait for it."""

    def __init__(self) -> None:
        self._dir: str | None = None
        self._lock = threading.Lock()
        self._per_host: dict[str, threading.Lock] = {}  # control socket path -> its first-spawn lock

    def _path(self, how: Ssh) -> str:
        with self._lock:
            if self._dir is None:
                # a unix socket's path has at most 107 bytes, and ssh adds 17 while it binds
                base = tempfile.gettempdir()
                base = base if len(base) <= 60 else "/tmp"
                _remove_stale(base)
                self._dir = tempfile.mkdtemp(prefix=f"rpcpar-ssh-{os.getpid()}-", dir=base)  # 0700
                atexit.register(self.close)
            key = repr((how.host, how.user, how.port, os.fspath(how.identity_file or ""), tuple(how.ssh_options)))
            path = os.path.join(self._dir, hashlib.sha256(key.encode()).hexdigest()[:16])
            self._per_host.setdefault(path, threading.Lock())
            return path

    def argv(self, how: Ssh, path: str, remote_command: str) -> list[str]:
        return [*_ssh_base(how), "-o", "ControlMaster=auto", "-o", f"ControlPath={path}",
                "-o", f"ControlPersist={_CONTROL_PERSIST}", *_destination(how), remote_command]

    def start(self, how: Ssh, remote_command: str, env: Env) -> subprocess.Popen[bytes]:
        """The ssh process running ``remote_command``, at once. The first to a host holds the
        others back until the shared connection is up (or the attempt failed), so that one
        handshake serves all; a user's own ControlMaster/ControlPath option turns this off."""
        if any(o.lower().startswith(("controlmaster", "controlpath")) for o in how.ssh_options):
            return _popen([*_ssh_base(how), *_destination(how), remote_command], env)
        path = self._path(how)
        lock = self._per_host[path]
        lock.acquire()
        try:
            proc = _popen(self.argv(how, path, remote_command), env)
        except BaseException:
            lock.release()
            raise
        if os.path.exists(path):
            lock.release()
        else:  # (the config goes to its stdin meanwhile: ssh sends it once the session is open)
            threading.Thread(target=self._opened, args=(path, proc, lock), name="rpc_parallel-ssh-mux",
                             daemon=True).start()
        return proc

    @staticmethod
    def _opened(path: str, proc: subprocess.Popen[bytes], lock: threading.Lock) -> None:
        deadline = time.monotonic() + _MUX_WAIT
        try:
            while not os.path.exists(path) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
        finally:
            lock.release()

    def run(self, how: Ssh, command: str, timeout: float) -> None:
        """Run ``command`` on the host through its shared connection, best effort."""
        path = self._path(how)
        try:
            subprocess.run(self.argv(how, path, command), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired):
            pass

    def close(self) -> None:
        """Close every shared connection this master opened (at exit)."""
        with self._lock:
            directory, used = self._dir, list(self._per_host)
            self._dir = None
            self._per_host.clear()
        for path in used:
            if os.path.exists(path):
                try:
                    subprocess.run(["ssh", "-o", f"ControlPath={path}", "-O", "exit", "--", "rpc_parallel"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   timeout=5, check=False)
                except (OSError, subprocess.TimeoutExpired):
                    pass
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


def _remove_stale(base: str) -> None:
    """Remove the control directories of masters that died without cleaning up (``kill -9``):
    ours, named after a pid that no longer runs."""
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        pid = name.removeprefix("rpcpar-ssh-").split("-", 1)[0]
        path = os.path.join(base, name)
        if not name.startswith("rpcpar-ssh-") or not pid.isdigit():
            continue
        try:
            if os.stat(path).st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)  # still running: its master's
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


_MUX = _SshMux()


def _popen(argv: list[str], env: Env) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(env), close_fds=True, start_new_session=True)


def _worker_command(how: Remote, worker_argv: Sequence[str]) -> list[str]:
    """The worker's own command on the remote side: ``worker_argv`` with the launcher's python in
    place of this interpreter, under the launcher's wrapper."""
    argv = list(worker_argv)
    if how.python is not None:
        argv[0] = how.python
    return [*how.prefix, *argv]


def launch(how: Remote, worker_argv: Sequence[str], env: Env) -> subprocess.Popen[bytes]:
    """Start ``worker_argv`` (its first item is the interpreter) through the launcher; ``env`` is
    what the launcher process itself gets (ssh passes none of it on, srun all of it)."""
    command = _worker_command(how, worker_argv)
    if isinstance(how, Ssh):
        marker = "RPC_PARALLEL_WORKER=1 GRPC_VERBOSITY=ERROR"  # not secrets: the rest travels on stdin
        line = f"exec env {marker} {shlex.join(command)}"
        if how.cwd is not None:
            line = f"cd {shlex.quote(how.cwd)} && {line}"
        return _MUX.start(how, line, env)
    argv = ["srun", "--quiet", "--nodes=1", "--ntasks=1", "--input=0"]
    if os.environ.get("SLURM_JOB_ID"):
        argv.append("--exact")  # a step of its own within the allocation: several run at once
    if how.partition is not None:
        argv.append(f"--partition={how.partition}")
    socket = _slurm_config().get("AuthInfo", "")
    extra = {MUNGE_SOCKET_ENV: socket.split("socket=", 1)[1].split(",")[0]} if "socket=" in socket else {}
    return _popen([*argv, *how.srun_args, *command], {**env, **extra})


MUNGE_SOCKET_ENV = "RPC_PARALLEL_MUNGE_SOCKET"
SEALED = b"MUNGE:"


def seal(how: Remote, config: bytes) -> bytes:
    """The config line as it goes on the launcher's stdin. ssh's stdin is inside its encrypted
    session; srun's crosses the network in plaintext, so for a Slurm worker with TLS on the
    config (its key, the token) is sealed with munge, which Slurm itself authenticates with:
    encrypted with the cluster's munge key, decodable only by this user's uid."""
    if isinstance(how, Ssh) or how.tls is False:
        return config
    socket = _slurm_config().get("AuthInfo", "")
    argv = ["munge", f"--restrict-uid={os.getuid()}"]
    if "socket=" in socket:
        argv.append(f"--socket={socket.split('socket=', 1)[1].split(',')[0]}")
    try:
        out = subprocess.run(argv, input=config, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpawnError(f"rp.Slurm: could not run munge to seal the worker's credentials, which srun would carry "
                         f"over the network in plaintext ({exc}); install munge, or pass tls=False on a network "
                         "you trust") from exc
    if out.returncode != 0 or not out.stdout.startswith(SEALED):
        raise SpawnError(f"rp.Slurm: munge could not seal the worker's credentials (exit code {out.returncode}): "
                         f"{out.stderr.decode(errors='replace').strip()[:500]}")
    return out.stdout.strip() + b"\n"


def unseal(line: bytes) -> bytes:
    """The config a Slurm worker got (``seal``'s inverse; a plain line is returned as it is).
    ``RuntimeError`` with munge's words if it cannot be opened."""
    if not line.startswith(SEALED):
        return line
    argv = ["unmunge", "--metadata=/dev/null"]
    if os.environ.get(MUNGE_SOCKET_ENV):
        argv.append(f"--socket={os.environ[MUNGE_SOCKET_ENV]}")
    out = subprocess.run(argv, input=line, capture_output=True, timeout=30, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"unmunge could not open the config (exit code {out.returncode}): "
                           f"{out.stderr.decode(errors='replace').strip()}")
    return out.stdout


def reach_host(how: Remote) -> str:
    """The host whose route tells which of this machine's addresses a worker started by ``how``
    can reach: the SSH host (its real name, after the user's ssh config); for Slurm, a node of the
    partition (its address), else the controller."""
    if isinstance(how, Ssh):
        return _ssh_hostname(how)
    return _slurm_node(how.partition)


_HOSTNAMES: dict[Ssh, str] = {}


def _ssh_hostname(how: Ssh) -> str:
    if how not in _HOSTNAMES:
        try:
            out = subprocess.run([*_ssh_base(how), "-G", *_destination(how)], capture_output=True, text=True,
                                 timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SpawnError(f"could not run ssh to read the configuration of host {how.host!r}: {exc}") from exc
        names = [line.split(None, 1)[1] for line in out.stdout.splitlines() if line.startswith("hostname ")]
        _HOSTNAMES[how] = names[0].strip() if out.returncode == 0 and names else how.host
    return _HOSTNAMES[how]


_SLURM: dict[str, dict[str, str]] = {}  # SLURM_CONF -> `scontrol show config`


def _slurm_config() -> dict[str, str]:
    key = os.environ.get("SLURM_CONF", "")
    if key not in _SLURM:
        try:
            out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=10,
                                 check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SpawnError(f"rp.Slurm: could not run scontrol (is Slurm installed here?): {exc}") from exc
        if out.returncode != 0:
            raise SpawnError(f"rp.Slurm: scontrol show config failed: {(out.stderr or out.stdout).strip()[:500]}")
        found: dict[str, str] = {}
        for line in out.stdout.splitlines():
            name, sep, value = line.partition("=")
            if sep:
                found.setdefault(name.strip(), value.strip())
        _SLURM[key] = found
    return _SLURM[key]


_NODES: dict[tuple[str, str | None], str] = {}


def _slurm_node(partition: str | None) -> str:
    """The address of a node of ``partition`` (the default one), else of the controller."""
    key = (os.environ.get("SLURM_CONF", ""), partition)
    if key not in _NODES:
        _NODES[key] = _find_slurm_node(partition)
    return _NODES[key]


def _find_slurm_node(partition: str | None) -> str:
    try:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%o", *([f"--partition={partition}"] if partition else [])],
                             capture_output=True, text=True, timeout=10, check=False)
        nodes = out.stdout.split() if out.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired):
        nodes = []
    if nodes:
        return nodes[0]
    controller = _slurm_config().get("SlurmctldHost[0]") or _slurm_config().get("SlurmctldHost", "")
    if not controller:
        raise SpawnError("rp.Slurm: scontrol names no SlurmctldHost and sinfo no node")
    return controller_address(controller)


def controller_address(value: str) -> str:
    """Where ``SlurmctldHost`` says the controller is: ``host(address)`` names the address for a
    host name that does not resolve; ``host`` alone, the name."""
    name, _, address = value.partition("(")
    return address.rstrip(")").strip() or name.strip()


def stop_remote(how: Remote, pid: int, worker_id: str) -> None:
    """Kill the worker process ``pid`` on the launcher's host (a worker whose ssh client was killed,
    or which stopped answering), if it still is that worker (its command line names
    ``worker_id``). srun ends its step itself when it is killed."""
    if isinstance(how, Ssh) and pid > 0:
        _MUX.run(how, f"grep -qa {shlex.quote(worker_id)} /proc/{int(pid)}/cmdline && kill -KILL {int(pid)}",
                 timeout=10.0)
