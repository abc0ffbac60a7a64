"""Spawn-time choices: ``ShutdownOn``, output redirection, how to run a worker, and the keyword
options of ``spawn`` as one typed dictionary (``Worker.spawn`` and ``rp.aio.spawn`` share it)."""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias, TypedDict

from ._settings import RpcSettings

__all__ = ("DEV_NULL", "IGNORE_FAILURE", "LOCAL", "LOG_FAILURE", "RELAY", "DevNull", "FileAppend", "FileTruncate",
           "ForegroundOptions", "Local", "Redirect", "Relay", "ShutdownOn", "SpawnOptions", "check_on_failure",
           "check_options")

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


@dataclass(frozen=True)
class Local:
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

    def wrap(self, prefix: Sequence[str]) -> Local:
        """The same launcher, running the worker's command under ``prefix`` (OCaml
        ``How_to_run.wrap``): ``rp.Local().wrap(["nice", "-n", "5"])`` runs ``nice -n 5 python ...``.
        Wrapping a wrapped launcher puts the new prefix outside. A wrapped worker is a fresh
        interpreter, never forked from the fork server."""
        if isinstance(prefix, str) or not all(isinstance(p, str) for p in prefix) or not prefix:
            raise TypeError(f"wrap takes a non-empty list of strings (a command and its arguments), not {prefix!r}")
        return dataclasses.replace(self, prefix=(*prefix, *self.prefix))


LOCAL = Local()


class ForegroundOptions(TypedDict, total=False):
    """The keyword options of ``spawn_in_foreground`` (see ``Worker.spawn`` for each, and its defaults)."""

    on_failure: Callable[[BaseException], None]
    name: str | None
    how: Local
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
