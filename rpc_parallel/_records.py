"""Workers recorded on disk by ``rpcpar spawn``/``serve``, so ``rpcpar call/shutdown/ls`` find
them by id, name or id prefix: one ``<worker id>.json`` handle per worker in a 0700 directory, a
0600 file. The record of a worker that serves mutual TLS also holds the certificate and key
``rpcpar`` connects to it with (``credentials``)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

from ._errors import RpcParallelError
from ._handle import WorkerHandle
from ._pki import Identity
from ._transport import hold, identity_for

__all__ = ("STATE_ENV", "forget", "load_handle", "record", "records", "state_dir")

STATE_ENV = "RPCPAR_STATE_DIR"


def state_dir() -> Path:
    """Where ``rpcpar spawn`` records its workers: ``$RPCPAR_STATE_DIR``, by default
    ``${XDG_STATE_HOME:-~/.local/state}/rpcpar/workers``."""
    env = os.environ.get(STATE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "rpcpar" / "workers"


def record(handle: WorkerHandle) -> Path:
    """Write ``handle`` to ``<state dir>/<worker id>.json``: directory 0700, file 0600 (it holds the
    token and, for a worker that serves mutual TLS, this process's certificate and key from its CA)."""
    directory = state_dir()
    if not directory.is_dir():
        directory.mkdir(parents=True, mode=0o700)
        directory.chmod(0o700)  # whatever the umask
    path = directory / f"{handle.worker_id}.json"
    tmp = directory / f".{handle.worker_id}.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    data = json.loads(handle.to_json())
    identity = identity_for(handle.ca) if handle.ca else None
    if identity is not None:
        data["credentials"] = identity.to_json()
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data) + "\n")
    os.replace(tmp, path)
    return path


def _read(text: str) -> WorkerHandle:
    """A recorded handle; its credentials, if any, are held for this process's channels."""
    handle = WorkerHandle.from_json(text)
    try:
        credentials = json.loads(text).get("credentials")
        if credentials:
            hold(Identity.from_json(credentials))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RpcParallelError(f"unreadable credentials in the record of worker {handle.worker_id}: {exc}") from None
    return handle


def _with_credentials(handle: WorkerHandle) -> WorkerHandle:
    """``handle``, with the credentials of its record held if it serves TLS and none are yet."""
    if handle.ca and identity_for(handle.ca) is None:
        try:
            _read((state_dir() / f"{handle.worker_id}.json").read_text())
        except (OSError, RpcParallelError):
            pass  # no record: connecting will say that this process holds no certificate
    return handle


def forget(worker_id: str) -> None:
    """Remove the record of ``worker_id`` (if any)."""
    (state_dir() / f"{worker_id}.json").unlink(missing_ok=True)


def records() -> list[WorkerHandle]:
    """The recorded workers, oldest first (unreadable records are skipped with a warning)."""
    directory = state_dir()
    if not directory.is_dir():
        return []
    found: list[tuple[float, WorkerHandle]] = []
    for path in directory.glob("*.json"):
        try:
            found.append((path.stat().st_mtime, _read(path.read_text())))
        except FileNotFoundError:
            continue  # removed meanwhile
        except (OSError, RpcParallelError) as exc:
            click.echo(f"rpcpar: skipping {path}: {exc}", err=True)
    return [h for _, h in sorted(found, key=lambda item: item[0])]


def load_handle(text: str) -> WorkerHandle:
    """A HANDLE argument: ``-`` (the first line of stdin), handle JSON, a file holding it, or the id,
    a unique id prefix or the name of a worker recorded by ``rpcpar spawn``/``serve``."""
    if text == "-":
        return _with_credentials(_read(sys.stdin.readline()))
    if text.lstrip().startswith("{"):
        return _with_credentials(_read(text))
    if os.path.isfile(text):
        return _with_credentials(_read(Path(text).read_text()))
    known = records()
    matchers: tuple[Callable[[WorkerHandle], bool], ...] = (
        lambda h: h.worker_id == text, lambda h: h.name == text,
        lambda h: len(text) >= 4 and h.worker_id.startswith(text))
    for match in matchers:
        found = [h for h in known if match(h)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise RpcParallelError(f"{text!r} names {len(found)} recorded workers "
                                   f"({', '.join(h.worker_id for h in found)}); use a worker id")
    raise RpcParallelError(f"no worker {text!r}: not handle JSON, not a file, and not the id or name of a worker "
                           f"recorded in {state_dir()} (see rpcpar ls)")
