"""``rp.map_reduce.Config``: how many workers, where, and how they are spawned."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._options import LOCAL, RELAY, How, Local, Redirect, Slurm, Ssh
from .._settings import RpcSettings

__all__ = ("Config", "Group")

RedirectFor = Redirect | Callable[[int], Redirect]


@dataclass(frozen=True)
class Group:
    """``count`` workers started by ``how`` (a launcher: ``rp.Local()``, ``rp.Ssh(host)``,
    ``rp.Slurm()``), indexed 0..count-1."""

    how: How
    count: int


@dataclass(frozen=True)
class Config:
    """Where a map's workers run and how they are spawned (OCaml ``Map_reduce.Config``).

    ``local`` workers on this machine and ``remote=[(how, count), ...]`` started by any launcher;
    with ``local=0`` and no remote, one local worker per core. Worker indices (``init``'s
    ``worker_index``) are 0..n-1 per group: the local workers, then each remote entry. ``cd``,
    ``env``, ``connection_timeout`` and ``settings`` are those of ``spawn``; the redirects may be a
    callable of the worker index (``lambda i: rp.FileAppend(f"w{i}.log")``). A negative count or no
    worker at all is a ``ValueError``.
    """

    local: int = 0
    remote: Sequence[tuple[How, int]] = ()
    cd: str | None = None
    env: Mapping[str, str] | None = None
    redirect_stdout: RedirectFor = RELAY
    redirect_stderr: RedirectFor = RELAY
    connection_timeout: float | None = None
    settings: RpcSettings | None = None
    groups: tuple[Group, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.local, bool) or not isinstance(self.local, int) or self.local < 0:
            raise ValueError(f"Config(local=...) must be a count of workers, 0 or more, not {self.local!r}")
        remote = list(self.remote)
        for entry in remote:
            if not (isinstance(entry, tuple) and len(entry) == 2):
                raise ValueError(f"Config(remote=...) takes (launcher, count) pairs, not {entry!r}")
            how, count = entry
            if not isinstance(how, Local | Ssh | Slurm):
                raise TypeError(f"Config(remote=...): {how!r} is not a launcher (rp.Ssh(host), rp.Slurm(), rp.Local())")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"Config(remote=...): the count of {entry!r} must be 0 or more")
        local = self.local
        if local == 0 and not remote:
            local = os.cpu_count() or 1
        groups = tuple(g for g in (Group(LOCAL, local), *(Group(how, n) for how, n in remote)) if g.count)
        if not groups:
            raise ValueError("Config has no worker: local=0 and every remote count is 0")
        object.__setattr__(self, "groups", groups)

    @property
    def workers(self) -> int:
        """How many workers a map with this configuration starts."""
        return sum(g.count for g in self.groups)

    def spawn_options(self, index: int) -> dict[str, Any]:
        """``spawn``'s keyword options for the worker of index ``index`` (launcher aside)."""
        options: dict[str, Any] = {
            "redirect_stdout": _for(self.redirect_stdout, index),
            "redirect_stderr": _for(self.redirect_stderr, index),
        }
        if self.cd is not None:
            options["cd"] = self.cd
        if self.env is not None:
            options["env"] = self.env
        if self.connection_timeout is not None:
            options["connection_timeout"] = self.connection_timeout
        if self.settings is not None:
            options["settings"] = self.settings
        return options


def _for(redirect: RedirectFor, index: int) -> Redirect:
    return redirect(index) if callable(redirect) and not isinstance(redirect, type) else redirect  # type: ignore[return-value]
