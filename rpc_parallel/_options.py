"""Spawn-time choices: ``ShutdownOn``, output redirection, how to run a worker, and the keyword
options of ``spawn`` as one typed dictionary (``Worker.spawn`` and ``rp.aio.spawn`` share it)."""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias, TypedDict, TypeVar

from ._settings import RpcSettings

__all__ = ("DEV_NULL", "IGNORE_FAILURE", "LOCAL", "LOG_FAILURE", "RELAY", "DevNull", "FileAppend", "FileTruncate",
           "ForegroundOptions", "How", "Local", "Redirect", "Relay", "Remote", "ShutdownOn", "Slurm", "SpawnOptions",
           "Ssh", "Tls", "check_on_failure", "check_options")

_LOG = logging.getLogger("rpc_parallel")


def LOG_FAILURE(exc: BaseException) -> None:
    """The default ``on_failure``: log the failure of a worker (logger ``rpc_parallel``, ERROR). The
    message names the worker; a background failure adds the worker's traceback."""
    tb = str(getattr(exc, "remote_traceback", "") or "").rstrip()
    _LOG.error("%s%s", exc, f"\nRemote traceback:\n{tb}" if tb else "")


def IGNORE_FAILURE(exc: BaseException) -> None:
    """``on_failure=rp.IGNORE_FAILURE``: drop a worker's failures (what OCaml does without ``on_failure``)."""


def check_on_failure(on_failure: object) -> None:
    """``TypeError`` unless ``on_failure`` is a callable (``None`` is refused: failures are never silent)."""
    if on_failure is None:
        raise TypeError("on_failure=None would drop the worker's failures silently: leave it out (failures are "
                        "logged: rp.LOG_FAILURE) or pass rp.IGNORE_FAILURE to drop them, or a callable")
    if not callable(on_failure):
        raise TypeError(f"on_failure must be a callable taking the exception, not {on_failure!r}")


class ShutdownOn(enum.Enum):
    """When a spawned worker exits.

    ``HEARTBEATER_TIMEOUT`` (default): when its heartbeat connection to the master drops (master
    exit or death, network loss, no pong within the heartbeat timeout); exit code 254.
    ``CONNECTION_CLOSED``: ``spawn`` returns a connection; the worker exits 0 when it closes, 254
    if nobody connects within ``connection_timeout``. ``CALLED_SHUTDOWN_FUNCTION``: only on
    ``handle.shutdown()``; the worker outlives its master (use sparingly).
    """

    HEARTBEATER_TIMEOUT = 0
    CONNECTION_CLOSED = 1
    CALLED_SHUTDOWN_FUNCTION = 2


@dataclass(frozen=True)
class DevNull:
    """Discard the output."""


@dataclass(frozen=True)
class FileAppend:
    """Append the output to ``path`` (created if missing; relative to the worker's ``cd``)."""

    path: str | os.PathLike[str]


@dataclass(frozen=True)
class FileTruncate:
    """Write the output to ``path``, truncated first (relative to the worker's ``cd``)."""

    path: str | os.PathLike[str]


@dataclass(frozen=True)
class Relay:
    """Relay the output to the master's own stdout/stderr, line by line, each line prefixed
    ``[<worker name or short id>] `` (the default)."""


DEV_NULL = DevNull()
RELAY = Relay()
Redirect: TypeAlias = Relay | DevNull | FileAppend | FileTruncate


def redirect_to_json(r: Redirect) -> dict[str, str]:
    if isinstance(r, Relay):
        return {"mode": "relay"}
    if isinstance(r, DevNull):
        return {"mode": "dev_null"}
    if isinstance(r, FileAppend):
        return {"mode": "append", "path": os.fspath(r.path)}
    if isinstance(r, FileTruncate):
        return {"mode": "truncate", "path": os.fspath(r.path)}
    raise TypeError(f"redirect must be rp.RELAY, rp.DEV_NULL, rp.FileAppend(path) or rp.FileTruncate(path), "
                    f"not {r!r}")


def _check_prefix(prefix: object) -> tuple[str, ...]:
    if isinstance(prefix, str) or not isinstance(prefix, Sequence) or not prefix \
            or not all(isinstance(p, str) for p in prefix):
        raise TypeError(f"wrap takes a non-empty list of strings (a command and its arguments), not {prefix!r}")
    return tuple(prefix)


def _strings(value: object, what: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{what} must be a list of strings, not {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class Tls:
    """Mutual TLS with your own PKI, for the launchers' ``tls=``: ``ca`` signs the certificates
    that are accepted; ``cert``/``key`` (for the master and, sent on the launcher's stdin, for
    every worker it starts this way) must be signed by it. Each is PEM bytes, PEM text or a file's
    path. A server's certificate is checked for ``server_name`` (default: the first DNS name, or
    else the common name, of ``cert``), not for its address."""

    ca: str | os.PathLike[str] | bytes
    cert: str | os.PathLike[str] | bytes
    key: str | os.PathLike[str] | bytes = dataclasses.field(repr=False)
    server_name: str | None = None


def _check_tls(tls: object) -> None:
    if not isinstance(tls, bool | Tls):
        raise TypeError(f"tls must be True (mutual TLS with certificates the master makes), an rp.Tls(ca=, cert=, "
                        f"key=) or False (plaintext, explicitly), not {tls!r}")


W = TypeVar("W", bound="_Wrappable")


class _Wrappable:
    """``wrap`` for the launchers (frozen dataclasses with a ``prefix`` field)."""

    prefix: tuple[str, ...]

    def wrap(self: W, prefix: Sequence[str]) -> W:
        """The same launcher, running the worker's command under ``prefix`` on the worker's side
        (OCaml ``How_to_run.wrap``): ``rp.Local().wrap(["nice", "-n", "5"])`` runs ``nice -n 5
        python ...``, ``rp.Ssh("h1").wrap(["taskset", "-c", "0"])`` runs taskset on h1. Wrapping a
        wrapped launcher puts the new prefix outside. A wrapped local worker is a fresh
        interpreter, never forked from the fork server."""
        return dataclasses.replace(self, prefix=(*_check_prefix(prefix), *self.prefix))  # type: ignore[type-var]


@dataclass(frozen=True)
class Local(_Wrappable):
    """Run the worker as a local subprocess of this interpreter (the default).

    Its server listens on a loopback port the OS picks, or with ``unix_socket=True`` on a unix
    socket in a fresh 0700 directory (only processes of this user can reach it). With
    ``fork_server=True`` (on Linux) the process is forked from this master's fork server, which has
    already imported what a worker needs except gRPC, so it starts several times faster; a spawn
    whose environment changes what only interpreter start-up reads (``PYTHON*``, locale,
    ``LD_*``, ...) starts a fresh interpreter instead, as does ``fork_server=False``.
    """

    unix_socket: bool = False
    fork_server: bool = True
    prefix: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ssh(_Wrappable):
    """Run the worker on ``host`` through the system OpenSSH client (``ssh [user@]host``).

    The worker runs ``python`` (default: this interpreter's path, as with a shared virtualenv) in
    ``cwd`` (default: the login directory) then moves to the spawn's ``cd``. The remote login gets
    no environment from here: the spawn's ``env`` travels on ssh's stdin with the config and the
    credentials, never on argv. ``identity_file``, ``port`` and ``ssh_options`` (each passed as
    ``-o OPTION``, e.g. ``"StrictHostKeyChecking=accept-new"``) go to ssh, which runs in batch mode
    (it never prompts). Connections to one host share one SSH connection (ControlMaster), so only
    the first spawn there pays the SSH handshake.

    ``tls``: ``True`` (default) secures the worker's server and its connection to the master with
    mutual TLS, from certificates the master makes for the purpose; ``rp.Tls(...)`` uses yours;
    ``False`` is plaintext (the token still authenticates every call).
    """

    host: str
    user: str | None = None
    port: int = 22
    python: str | None = None
    cwd: str | None = None
    identity_file: str | os.PathLike[str] | None = None
    ssh_options: Sequence[str] = ()
    tls: Tls | bool = True
    prefix: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host or self.host.startswith("-"):
            raise TypeError(f"rp.Ssh needs a host name (not starting with '-'), not {self.host!r}")
        if self.user is not None and (not isinstance(self.user, str) or not self.user or self.user.startswith("-")
                                      or "@" in self.user or any(c.isspace() for c in self.user)):
            raise TypeError(f"rp.Ssh user must be a user name (no '@', no space, not starting with '-'), "
                            f"not {self.user!r}")
        if not isinstance(self.port, int) or isinstance(self.port, bool) or not 0 < self.port < 65536:
            raise ValueError(f"rp.Ssh port must be an int in 1..65535, not {self.port!r}")
        object.__setattr__(self, "ssh_options", _strings(self.ssh_options, "rp.Ssh ssh_options"))
        _check_tls(self.tls)


@dataclass(frozen=True)
class Slurm(_Wrappable):
    """Run the worker as a Slurm job step: ``srun`` one task on one node, inside the current
    allocation when ``SLURM_JOB_ID`` is set (``salloc``, ``sbatch``), else as a job of its own.

    ``partition`` (``srun -p``) and ``srun_args`` (extra arguments, e.g. ``["--mem=2G"]``) go to
    ``srun``; ``python`` is the interpreter on the nodes (default: this one's path). ``srun``
    passes this environment on to the task; the spawn's ``env``, the config and credentials travel
    on its stdin. Stopping the worker ends its step. ``tls`` as for ``rp.Ssh``.
    """

    partition: str | None = None
    srun_args: Sequence[str] = ()
    python: str | None = None
    tls: Tls | bool = True
    prefix: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.partition is not None and (not isinstance(self.partition, str) or not self.partition):
            raise TypeError(f"rp.Slurm partition must be a partition name or None, not {self.partition!r}")
        object.__setattr__(self, "srun_args", _strings(self.srun_args, "rp.Slurm srun_args"))
        _check_tls(self.tls)


How: TypeAlias = Local | Ssh | Slurm
Remote: TypeAlias = Ssh | Slurm


LOCAL = Local()


class ForegroundOptions(TypedDict, total=False):
    """The keyword options of ``spawn_in_foreground`` (see ``Worker.spawn`` for each, and its defaults)."""

    on_failure: Callable[[BaseException], None]
    name: str | None
    how: How
    cd: str
    env: Mapping[str, str] | None
    umask: int | None
    connection_timeout: float
    spawn_timeout: float | None
    settings: RpcSettings | None
    check_code: bool


class SpawnOptions(ForegroundOptions, total=False):
    """The keyword options of ``spawn`` besides ``shutdown_on`` and ``connection_arg``."""

    redirect_stdout: Redirect
    redirect_stderr: Redirect


def check_options(options: Mapping[str, object], allowed: type, function: str) -> None:
    """``TypeError`` naming ``function`` for a keyword that the TypedDict ``allowed`` does not list."""
    known: frozenset[str] = allowed.__optional_keys__  # type: ignore[attr-defined]
    for name in options:
        if name not in known:
            raise TypeError(f"{function}() got an unexpected keyword argument {name!r}")
