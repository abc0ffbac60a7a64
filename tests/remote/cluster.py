"""Real remote hosts and a real Slurm cluster on this machine, for tests/remote.

``Hosts``: each host is a network namespace on a bridge of the root namespace, with its own hostname
(a UTS namespace) and a real ``sshd`` on its address; the file system is shared, as on a cluster with
a shared home. ``SlurmCluster``: munge, slurmctld and one slurmd per node, as root, in the root
namespace on loopback. Neither writes to ``/etc``: keys, configurations, logs and state live in a
temp dir of their own (``/run/sshd`` is created, sshd needs it).

Everything is named after a tag, ``rpt`` for the session's fixtures (namespaces ``rpt-h1``, bridge
``rptbr0``, veths ``rptv-h1``, temp dirs ``rpt-hosts-*`` / ``rpt-slurm-*``); every daemon started here
carries ``RPT_REMOTE_TESTS=<its temp dir>`` in its environment, and Slurm's run in that dir. One
process at a time uses a tag (it binds an abstract Unix socket name): when a process takes it,
whatever a crashed earlier run left under that tag is removed first. What is started here is stopped
by ``close()``, or at interpreter exit otherwise. Processes are killed by pid only, and only those in
the namespaces made here or recognisably started from one of these temp dirs (``processes_of``).

The machine needs root, network namespaces and the Debian packages openssh-server, slurmctld,
slurmd, slurm-client, munge and iproute2; otherwise ``start`` raises ``Unavailable`` with the reason.
Facts behind the choices: /work/shared/reference/cluster-testing.md.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psutil

__all__ = ("MARK", "Host", "Hosts", "SlurmCluster", "Unavailable", "clean_stale", "processes_of", "require")

MARK = "RPT_REMOTE_TESTS"
"""Environment variable of every daemon started here; its value is the daemon's temp dir."""

SSHD = "/usr/sbin/sshd"
SLURMCTLD = "/usr/sbin/slurmctld"
SLURMD = "/usr/sbin/slurmd"
MUNGED = "/usr/sbin/munged"

_TAG = re.compile(r"rpt[a-z0-9]{0,4}")  # the prefix of every name made here; "rpt" for the fixtures
_LINK_NAME = re.compile(r"rpt[a-z0-9]{0,4}br0")
_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_START_TIMEOUT = 15.0


class Unavailable(Exception):
    """This machine cannot run the remote tests (not root, no network namespaces, a binary missing)."""


# -- helpers -----------------------------------------------------------------------------------------


def _run(*argv: str, input: str | None = None, timeout: float = 10.0, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    """Run ``argv``, raising ``RuntimeError`` with its output when it fails."""
    done = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=None if input is not None else subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    return done


_HOSTS_NEED = ("ip", "unshare", "ssh", "ssh-keygen", SSHD)
_SLURM_NEED = (MUNGED, SLURMCTLD, SLURMD, "srun", "sinfo", "squeue", "scancel", "timeout")


def require() -> None:
    """Raise ``Unavailable`` unless this machine has what ``Hosts`` and ``SlurmCluster`` need (root, the
    binaries; whether network namespaces work shows when ``Hosts.start`` makes one)."""
    _require(*_HOSTS_NEED, *_SLURM_NEED)


def _require(*binaries: str) -> None:
    """Raise ``Unavailable`` unless this process is root and every one of ``binaries`` exists."""
    if os.geteuid() != 0:
        raise Unavailable("the remote tests need root (network namespaces, sshd and Slurm daemons as root)")
    missing = [b for b in binaries if shutil.which(b, path=_PATH) is None]
    if missing:
        raise Unavailable(f"missing {', '.join(missing)}: apt-get install openssh-server slurmctld slurmd "
                          "slurm-client munge iproute2")


def _tail(path: str | Path, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        return f"({path}: {e})"
    return f"--- {path}:\n" + "\n".join(text.splitlines()[-lines:])


def _wait_until(what: str, ready: Callable[[], bool], failed: Callable[[], str | None],
                timeout: float = _START_TIMEOUT, interval: float = 0.02) -> None:
    """Poll ``ready`` until true; raise ``RuntimeError`` when ``failed`` returns a reason or at ``timeout``."""
    deadline = time.monotonic() + timeout
    while not ready():
        reason = failed()
        if reason is not None:
            raise RuntimeError(f"{what}: {reason}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(interval)


def _describe(pid: int) -> str:
    try:
        p = psutil.Process(pid)
        return f"{pid} {' '.join(p.cmdline()) or p.name()}"
    except psutil.Error:
        return f"{pid} (gone)"


def _kill(pids: Iterable[int], timeout: float = 3.0) -> None:
    """SIGKILL these pids and wait up to ``timeout`` for them to die (a zombie has: its parent, or
    init, reaps it; our own children are reaped by their ``Popen``)."""
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(pid)
            p.kill()
            procs.append(p)
    deadline = time.monotonic() + timeout
    while procs and time.monotonic() < deadline:
        procs = [p for p in procs if _alive(p)]
        time.sleep(0.005 if procs else 0)


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _stop(procs: Iterable[subprocess.Popen[bytes]], grace: float = 3.0) -> None:
    """SIGTERM our child processes, SIGKILL those still running after ``grace`` s, and reap them."""
    procs = [p for p in procs if p.poll() is None]
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            p.terminate()
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _under(directory: str) -> Callable[[str], bool]:
    """Whether a path is ``directory`` or inside it."""
    return lambda path: path == directory or path.startswith(directory + "/")


def processes_of(directory: str) -> list[int]:
    """Pids of the processes started from ``directory``, the temp dir of a ``Hosts`` or ``SlurmCluster``
    (those in the hosts' network namespaces aside: ``Host.pids``)."""
    return _ours(_under(directory))


def _ours(under: Callable[[str], bool]) -> list[int]:
    """Pids of the processes started from temp dirs that ``under`` accepts (paths inside them): the
    daemons (``MARK`` in their environment), what Slurm daemons run without their environment
    (slurmstepd, slurmscriptd: their working directory or an open file there), and job tasks
    (``SLURM_JOB_ID`` and a ``SLURM_CONF`` there). This process and its ancestors are never among them."""
    mine = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found = []
    for p in psutil.process_iter():
        if p.pid in mine:
            continue
        with contextlib.suppress(psutil.Error):
            env = p.environ()
            if (under(env.get(MARK, "")) or "SLURM_JOB_ID" in env and under(env.get("SLURM_CONF", ""))
                    or os.path.basename(p.exe()).startswith(("slurm", "munge"))
                    and (under(p.cwd()) or any(under(f.path) for f in p.open_files()))):
                found.append(p.pid)
    return found


def _netns_list() -> list[str]:
    out = _run("ip", "netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _netns_pids(netns: str) -> set[int]:
    return {int(x) for x in _run("ip", "netns", "pids", netns).stdout.split()}


def _links() -> list[str]:
    out = _run("ip", "-o", "link", "show").stdout
    return [line.split(":", 2)[1].strip().split("@")[0] for line in out.splitlines() if line.strip()]


def _empty_netns(netns: str, reap: Iterable[subprocess.Popen[bytes]] = ()) -> None:
    """Kill every process in ``netns`` (reaping those of ``reap``, our children) until none is left."""
    for _ in range(100):
        pids = _netns_pids(netns)
        if not pids:
            return
        _kill(pids, timeout=0.5)
        for p in reap:
            p.poll()
    raise RuntimeError(f"processes keep appearing in network namespace {netns}: {_netns_pids(netns)}")


def _listening(ports: Iterable[int]) -> set[int]:
    wanted = set(ports)
    return {c.laddr.port for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port in wanted}


# -- one owner per tag at a time; what a crashed run left ---------------------------------------------


class _Claim:
    """What makes this process the only user of the names of one tag: a Unix socket bound to an
    abstract name (no file; the kernel lets go of it when the process dies), held while any ``Hosts``
    or ``SlurmCluster`` of that tag in this process is live."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.name = f"\0{tag}-remote-tests"
        self.sock: socket.socket | None = None
        self.users = 0

    def take(self, wait: float = 30.0) -> None:
        """Take the name (waiting up to ``wait`` s for another process to let go); on first taking it,
        remove what an earlier run left behind (``clean_stale``)."""
        if self.users == 0:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # not inheritable: not a worker's
            deadline = time.monotonic() + wait
            while True:
                try:
                    sock.bind(self.name)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        sock.close()
                        raise RuntimeError(f"another process ({self._holder()}) uses the remote test hosts and "
                                           f"cluster of tag {self.tag}: they serve one pytest run at a time") from None
                    time.sleep(0.1)
            self.sock = sock
            try:
                clean_stale(self.tag)
            except BaseException:
                self._let_go()
                raise
        self.users += 1

    def give_back(self) -> None:
        self.users -= 1
        if self.users == 0:
            self._let_go()

    def _let_go(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _holder(self) -> str:
        for c in psutil.net_connections(kind="unix"):
            if str(c.laddr) == "@" + self.name[1:] and c.pid:  # psutil shows the NUL as "@"
                return _describe(c.pid)
        return "pid unknown"


_claims: dict[str, _Claim] = {}
_live: list[Hosts | SlurmCluster] = []  # started and not yet closed, for the exit-time safety net
_OWNER = os.getpid()


def _take(tag: str, thing: Hosts | SlurmCluster) -> None:
    if not _TAG.fullmatch(tag):
        raise ValueError(f"tag {tag!r} must match {_TAG.pattern}")
    _claims.setdefault(tag, _Claim(tag)).take()
    _live.append(thing)


def _give_back(tag: str, thing: Hosts | SlurmCluster) -> None:
    if thing in _live:
        _live.remove(thing)
        _claims[tag].give_back()


@atexit.register
def _close_all() -> None:
    """The safety net: close whatever is still live when the interpreter exits (not in a forked child)."""
    if os.getpid() != _OWNER:
        return
    for thing in reversed(_live):
        with contextlib.suppress(Exception):
            thing.close()


def clean_stale(tag: str = "rpt") -> None:
    """Remove what an earlier run with names of ``tag`` left behind: the processes in its network
    namespaces (``{tag}-*``) and the namespaces, its bridge and veths (``{tag}br0``, ``{tag}v-*``), the
    processes carrying ``MARK`` of one of its temp dirs or running a job of one of its clusters, and
    the temp dirs (``{tag}-hosts-*``, ``{tag}-slurm-*``). Only for the holder of the tag's lock
    (``Hosts.start`` and ``SlurmCluster.start`` call it when they take it)."""
    t = re.escape(tag)
    for netns in _netns_list():
        if re.fullmatch(rf"{t}-\S+", netns):
            _empty_netns(netns)
            _run("ip", "netns", "del", netns)
    for link in _links():
        if re.fullmatch(rf"{t}(br0|v-\S+)", link):
            with contextlib.suppress(RuntimeError):  # a veth goes with its peer
                _run("ip", "link", "del", link)
    ours = re.compile(rf"{re.escape(tempfile.gettempdir())}/{t}-(hosts|slurm)-[^/]+(/|$)")
    _kill(_ours(lambda path: ours.match(path) is not None))
    for kind in ("hosts", "slurm"):
        for d in Path(tempfile.gettempdir()).glob(f"{tag}-{kind}-*"):
            if d.is_dir():
                shutil.rmtree(d, ignore_errors=True)


# -- hosts -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Host:
    """A remote host: a network namespace with its own hostname and an sshd on ``address:port``."""

    name: str
    address: str
    netns: str
    port: int
    user: str
    identity_file: str
    ssh_options: tuple[str, ...]  # each meant for ``-o``
    sshd_log: str  # sshd's stderr (LogLevel INFO): one "Accepted publickey" line per login
    veth: str  # the bridge side of this host's link
    sshd_pid: int  # the listening sshd, the only process of the namespace between tests

    def ssh_argv(self, *command: str) -> list[str]:
        """``ssh`` with this host's key and options (BatchMode) to ``user@address``, then ``command``
        (ssh joins its words with spaces for the remote shell: quote them yourself, e.g. shlex.join)."""
        options = [x for opt in ("BatchMode=yes", *self.ssh_options) for x in ("-o", opt)]
        return ["ssh", "-p", str(self.port), "-i", self.identity_file, *options,
                f"{self.user}@{self.address}", *command]

    def run(self, *command: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        """Run ``command`` on this host over ssh (stdin empty), capturing its output; never raises for
        a non-zero exit (``subprocess.TimeoutExpired`` when it takes longer than ``timeout``)."""
        return subprocess.run(self.ssh_argv(*command), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)

    def pids(self) -> set[int]:
        """The processes now in this host's network namespace (``ip netns pids``)."""
        return _netns_pids(self.netns)

    def accepted_logins(self) -> int:
        """How many ssh logins this host's sshd accepted so far (one per handshake)."""
        return Path(self.sshd_log).read_text(errors="replace").count("Accepted publickey")

    def link_down(self) -> None:
        """Cut this host off the bridge: it stops answering (connections time out) until ``link_up``."""
        _run("ip", "link", "set", self.veth, "down")

    def link_up(self) -> None:
        """Put this host back on the bridge (a no-op when it is on)."""
        _run("ip", "link", "set", self.veth, "up")


_SSH_OPTIONS = ("StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LogLevel=ERROR")

_SSHD_CONFIG = """\
Port {port}
ListenAddress {address}
HostKey {dir}/host_key
PidFile {dir}/sshd.pid
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AcceptEnv *
UseDNS no
PrintMotd no
PrintLastLog no
MaxSessions 100
MaxStartups 100:30:200
LogLevel INFO
"""


class Hosts:
    """Hosts on one bridge of the root namespace, which has ``master_address`` on it: from here each
    host's sshd answers on its address, the hosts reach each other, and a server bound on
    ``master_address`` here is reachable from every host (the root namespace's 127.0.0.1 is not).

    ``Hosts.start()`` makes h1 (10.200.0.2) and h2 (10.200.0.3) on ``rptbr0`` (10.200.0.1/24);
    ``close()`` kills every process in the namespaces and removes namespaces, bridge and temp dir.
    """

    def __init__(self, tag: str, subnet: str) -> None:
        """Use ``Hosts.start``."""
        net = ipaddress.ip_network(subnet)
        self._net = net
        self._addresses = (str(a) for a in net.hosts())
        self.master_address = next(self._addresses)
        self.hosts: list[Host] = []
        self.tag = tag
        self.bridge = f"{tag}br0"
        self.directory = ""
        self._netns: list[str] = []
        self._links: list[str] = []
        self._sshd: list[subprocess.Popen[bytes]] = []
        self._bridge_made = False
        self._closed = False

    @classmethod
    def start(cls, names: Iterable[str] = ("h1", "h2"), *, tag: str = "rpt", subnet: str = "10.200.0.0/24"
              ) -> Hosts:
        """Make the hosts ``names`` (namespace ``{tag}-{name}``, veth ``{tag}v-{name}``) on bridge
        ``{tag}br0``; the root namespace gets the first address of ``subnet``, the hosts the next ones.
        Raises ``Unavailable`` when this machine cannot (not root, a binary missing, no namespaces)."""
        names = list(names)
        if any(len(f"{tag}v-{n}") > 15 or not re.fullmatch(r"[a-z][a-z0-9]*", n) for n in names):
            raise ValueError(f"host names {names} must be short lowercase words (interface names are <= 15 chars)")
        self = cls(tag, subnet)
        _require(*_HOSTS_NEED)
        _take(tag, self)
        try:
            self._start(names)
        except BaseException:
            self.close()
            raise
        return self

    def _start(self, names: list[str]) -> None:
        self._check_subnet_free()
        self.directory = tempfile.mkdtemp(prefix=f"{self.tag}-hosts-")
        d = Path(self.directory)
        keygens = []
        for sub, key in [("client", "client_key"), *((n, "host_key") for n in names)]:
            (d / sub).mkdir(mode=0o700)
            keygens.append(subprocess.Popen(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{self.tag}-{sub}",
                                             "-f", str(d / sub / key)],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        try:
            self._network(names)  # meanwhile
        finally:
            errors = [k.communicate(timeout=10)[1].decode(errors="replace") for k in keygens]
        if any(k.returncode != 0 for k in keygens):
            raise RuntimeError(f"ssh-keygen failed: {errors}")
        shutil.copy(d / "client" / "client_key.pub", d / "authorized_keys")
        os.chmod(d / "authorized_keys", 0o600)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd insists on it, even with -D
        pending = []
        for name in names:
            netns, address, port = f"{self.tag}-{name}", next(self._addresses), 22
            _run("ip", "-n", netns, "-batch", "-",
                 input=f"addr add {address}/{self._net.prefixlen} dev eth0\nlink set eth0 up\nlink set lo up\n")
            conf, log = d / name / "sshd_config", d / name / "sshd.log"
            conf.write_text(_SSHD_CONFIG.format(port=port, address=address, dir=d / name,
                                                authorized_keys=d / "authorized_keys"))
            with open(log, "ab") as out:
                sshd = subprocess.Popen(
                    ["ip", "netns", "exec", netns, "unshare", "--uts", "sh", "-c",
                     f"hostname {name} && exec {SSHD} -D -e -f {conf}"],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                    env={"PATH": _PATH, MARK: self.directory})
            self._sshd.append(sshd)
            pending.append((name, address, port, netns, log, sshd))
        for name, address, port, netns, log, sshd in pending:
            def listening(log: Path = log, line: str = f"Server listening on {address} port {port}") -> bool:
                return line in log.read_text(errors="replace")

            def failed(sshd: subprocess.Popen[bytes] = sshd, log: Path = log) -> str | None:
                return None if sshd.poll() is None else f"sshd exited {sshd.returncode}\n{_tail(log)}"

            _wait_until(f"sshd of {name}", listening, failed)
            host = Host(name=name, address=address, netns=netns, port=port, user="root",
                        identity_file=str(d / "client" / "client_key"), ssh_options=_SSH_OPTIONS,
                        sshd_log=str(log), veth=f"{self.tag}v-{name}", sshd_pid=sshd.pid)
            if host.pids() != {sshd.pid}:  # ip netns exec, unshare and sh all exec: the pid is sshd's
                raise RuntimeError(f"{netns} holds {host.pids()}, expected only sshd {sshd.pid}")
            self.hosts.append(host)

    def _network(self, names: list[str]) -> None:
        """The bridge with the master's address, and per host a namespace with its veth on the bridge."""
        first = f"{self.tag}-{names[0]}"
        try:
            _run("ip", "netns", "add", first)
        except RuntimeError as e:
            raise Unavailable(f"cannot create a network namespace: {e}") from None
        self._netns.append(first)
        plan = [f"link add {self.bridge} type bridge",
                f"addr add {self.master_address}/{self._net.prefixlen} dev {self.bridge}", f"link set {self.bridge} up"]
        self._bridge_made = True  # from here on close() deletes it, if it exists
        for name in names:
            netns, veth = f"{self.tag}-{name}", f"{self.tag}v-{name}"
            if netns != first:
                plan.append(f"netns add {netns}")
                self._netns.append(netns)
            plan += [f"link add {veth} type veth peer name eth0 netns {netns}", f"link set {veth} master {self.bridge} up"]
            self._links.append(veth)
        _run("ip", "-batch", "-", input="\n".join(plan) + "\n")  # one process for all of it

    def _check_subnet_free(self) -> None:
        """Refuse a subnet that overlaps one of another interface, unless that is a bridge of other
        hosts made here with a different prefix (the longer prefix routes its own addresses)."""
        for line in _run("ip", "-o", "-4", "addr", "show").stdout.splitlines():
            dev, net = line.split()[1], ipaddress.ip_interface(line.split()[3]).network
            if net.overlaps(self._net) and (dev == self.bridge or not _LINK_NAME.fullmatch(dev) or net == self._net):
                raise RuntimeError(f"{self._net} overlaps {net} of {dev}: choose another subnet")

    def __getitem__(self, name: str) -> Host:
        """The host called ``name``."""
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def close(self) -> None:
        """Kill every process in the namespaces, then delete them, their links, the bridge and the
        temp dir. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            existing = set(_netns_list())
            for netns in self._netns:
                if netns in existing:
                    _empty_netns(netns, reap=self._sshd)
            _stop(self._sshd)
            present = set(_links())
            for link in [*self._links, *([self.bridge] if self._bridge_made else [])]:
                if link in present:
                    _run("ip", "link", "del", link)  # deleting a veth deletes its peer in the namespace
            for netns in self._netns:
                if netns in existing:
                    _run("ip", "netns", "del", netns)
            if self.directory:
                _kill(_ours(_under(self.directory)))
                shutil.rmtree(self.directory, ignore_errors=True)
        finally:
            _give_back(self.tag, self)

    def processes(self) -> list[int]:
        """The processes of these hosts now: every process in their namespaces, and any other started
        from their temp dir."""
        existing = set(_netns_list())
        pids = {pid for netns in self._netns if netns in existing for pid in _netns_pids(netns)}
        return sorted(pids | set(_ours(_under(self.directory)) if self.directory else ()))

    def leftovers(self) -> list[str]:
        """What of these hosts still exists (empty after ``close``): namespaces, links, processes, dir."""
        left = [f"network namespace {n}" for n in _netns_list() if n in self._netns]
        left += [f"link {n}" for n in _links() if n in self._links or n == self.bridge]
        left += [f"sshd {_describe(p.pid)}" for p in self._sshd if p.poll() is None]
        if self.directory:
            left += [f"process {_describe(pid)}" for pid in _ours(_under(self.directory))]
            left += [f"temp dir {self.directory}"] if os.path.exists(self.directory) else []
        return left

    def __enter__(self) -> Hosts:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


# -- Slurm -------------------------------------------------------------------------------------------

_SLURM_CONF = """\
ClusterName={cluster}
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={dir}/munge/munge.socket
CredType=cred/munge
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool/%n
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd-%n.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
KillWait=2
MinJobAge=10
InactiveLimit=0
MailProg=/bin/true
# sbatch jobs: tried at the controller's next 1 s tick, not up to 3 s later (none run in its first ~3 s)
SchedulerParameters=batch_sched_delay=0
{comm}
{nodes}
PartitionName={partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class SlurmCluster:
    """A real Slurm cluster: munge, slurmctld and a slurmd per node, as root in the root namespace,
    every node at 127.0.0.1 (own port, one CPU), one partition holding them all; config, state, logs
    and munge key in ``directory``, nothing in /etc. A process uses it through ``env``
    (``SLURM_CONF``); the test process's own environment is left alone."""

    conf: str
    env: dict[str, str]
    nodes: list[str]
    partition: str
    directory: str
    ports: tuple[int, ...]  # slurmctld's, then each slurmd's
    tag: str = "rpt"
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)  # by daemon name
    _closed: bool = field(default=False, repr=False)

    @classmethod
    def start(cls, nodes: int = 2, *, tag: str = "rpt", ctld_port: int = 16817, node_port: int = 17001
              ) -> SlurmCluster:
        """Start a cluster of nodes n1..n``nodes`` (slurmd ports ``node_port``, ``node_port + 1``, ...),
        partition ``debug``, and wait until every node is idle. Raises ``Unavailable`` when this
        machine cannot (not root, a binary missing)."""
        _require(*_SLURM_NEED)
        self = cls(conf="", env={}, nodes=[f"n{i + 1}" for i in range(nodes)], partition="debug", directory="",
                   ports=(ctld_port, *range(node_port, node_port + nodes)), tag=tag)
        _take(tag, self)
        try:
            self.directory = tempfile.mkdtemp(prefix=f"{tag}-slurm-")
            os.chmod(self.directory, 0o755)  # munged: everyone must be able to reach its socket
            self.conf = os.path.join(self.directory, "slurm.conf")
            self.env = {"SLURM_CONF": self.conf}
            self._start(tag)
        except BaseException:
            self.close()
            raise
        return self

    def _start(self, tag: str) -> None:
        d = Path(self.directory)
        busy = _listening(self.ports)
        if busy:
            raise RuntimeError(f"ports {sorted(busy)} are taken: another Slurm (or other server) listens there")
        (d / "munge").mkdir(mode=0o755)  # munged refuses a socket dir others cannot enter
        (d / "munge").chmod(0o755)
        (d / "state").mkdir()
        for n in self.nodes:
            (d / "spool" / n).mkdir(parents=True)
        key = d / "munge" / "munge.key"
        key.write_bytes(os.urandom(128))
        key.chmod(0o400)
        nodes = "\n".join(f"NodeName={n} NodeHostname=localhost NodeAddr=127.0.0.1 Port={port} CPUs=1"
                          for n, port in zip(self.nodes, self.ports[1:], strict=True))
        Path(self.conf).write_text(_SLURM_CONF.format(cluster=f"{tag}cluster", ctld_port=self.ports[0], dir=d,
                                                      nodes=nodes, partition=self.partition, comm=_comm()))
        env = {"PATH": _PATH, "SLURM_CONF": self.conf, MARK: self.directory}
        socket_path = d / "munge" / "munge.socket"
        self._daemon("munged", [MUNGED, "-F", f"--key-file={key}", f"--socket={socket_path}",
                                f"--pid-file={d / 'munge' / 'munged.pid'}", f"--log-file={d / 'munge' / 'munged.log'}",
                                f"--seed-file={d / 'munge' / 'seed'}"], env)
        _wait_until("munged", socket_path.exists, self._failed)
        self._daemon("slurmctld", [SLURMCTLD, "-D", "-i", "-f", self.conf], env)
        # a slurmd that finds no slurmctld registers a second later: start them once it listens
        _wait_until("slurmctld", lambda: _accepts("127.0.0.1", self.ports[0]), self._failed)
        for n in self.nodes:
            self._daemon(f"slurmd-{n}", [SLURMD, "-D", "-N", n, "-f", self.conf], env)
        want = sorted(f"{n} idle" for n in self.nodes)
        _wait_until("slurm nodes idle", lambda: self._node_states() == want, self._failed, interval=0.05)

    def _daemon(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        with open(os.path.join(self.directory, f"{name}.out"), "ab") as out:
            self._procs[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                                 start_new_session=True, env=env, cwd=self.directory)

    def _failed(self) -> str | None:
        dead = [(name, p.returncode) for name, p in self._procs.items() if p.poll() is not None]
        if not dead:
            return None
        logs = "\n".join(_tail(f) for f in sorted(Path(self.directory).glob("*.out")))
        return f"{dead[0][0]} exited {dead[0][1]}\n{logs}"

    def _node_states(self) -> list[str]:
        done = subprocess.run(["timeout", "3", "sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True,
                              env=self._environ(), stdin=subprocess.DEVNULL, check=False)
        return sorted(line.strip() for line in done.stdout.splitlines() if line.strip())

    def _environ(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def run(self, *command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``command`` (``srun ...``, ``sbatch ...``) here with this cluster's environment, capturing
        its output; never raises for a non-zero exit."""
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=self._environ(),
                              stdin=subprocess.DEVNULL, check=False)

    def squeue(self) -> list[str]:
        """The jobs the cluster still knows as pending, running or completing: ``"<id> <name> <state>"``."""
        out = _run("squeue", "-h", "-o", "%i %j %T", env=self._environ()).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def cancel_all(self) -> None:
        """Cancel every job of the cluster."""
        ids = [line.split()[0] for line in self.squeue()]
        if ids:
            _run("scancel", *ids, env=self._environ())

    def close(self) -> None:
        """Cancel the jobs, stop the daemons, kill what they left (job steps, tasks), remove the temp
        dir. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            ctld = self._procs.get("slurmctld")
            if ctld is not None and ctld.poll() is None:
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    self.cancel_all()
                    deadline = time.monotonic() + 5
                    while self.squeue() and time.monotonic() < deadline:
                        time.sleep(0.05)
            _stop(p for name, p in self._procs.items() if name.startswith("slurmd-"))
            _stop(p for name, p in self._procs.items() if not name.startswith("slurmd-"))
            if self.directory:
                _kill(self.processes())  # job steps and tasks outlive slurmd
                shutil.rmtree(self.directory, ignore_errors=True)
        finally:
            _give_back(self.tag, self)

    def processes(self) -> list[int]:
        """The processes of this cluster now: daemons, job steps, job tasks (those with its ``SLURM_CONF``)."""
        return _ours(_under(self.directory)) if self.directory else []

    def leftovers(self) -> list[str]:
        """What of this cluster still exists (empty after ``close``): daemons, job processes, ports, dir."""
        left = [f"daemon {_describe(p.pid)}" for p in self._procs.values() if p.poll() is None]
        left += [f"process {_describe(pid)}" for pid in self.processes()]
        left += [f"listening port {port}" for port in sorted(_listening(self.ports))]
        left += [f"temp dir {self.directory}"] if os.path.exists(self.directory) else []
        return left

    def __enter__(self) -> SlurmCluster:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _comm() -> str:
    """slurmd binds its NodeAddr (127.0.0.1) and srun the address of this machine's name (here also
    loopback), instead of 0.0.0.0, when the name resolves; slurmctld listens on 0.0.0.0 regardless."""
    try:
        socket.gethostbyname(socket.gethostname())
    except OSError:
        return "# CommunicationParameters=NoInAddrAny: not with a hostname that does not resolve"
    return "CommunicationParameters=NoInAddrAny"


def _accepts(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False

