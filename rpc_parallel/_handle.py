"""``WorkerHandle``: the serializable identity of a running worker server."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._errors import RpcParallelError
from ._settings import RpcSettings, merge

__all__ = ("WorkerHandle", "install_shutdown")

# How a handle shuts its worker down: a Control call, which this value layer cannot import; the
# lifecycle layer (rpc_parallel._supervision, imported by the package) installs it.
_shutdown: Callable[[WorkerHandle], None] | None = None


def install_shutdown(impl: Callable[[WorkerHandle], None]) -> None:
    """Make ``impl(handle)`` what ``WorkerHandle.shutdown`` does."""
    global _shutdown
    _shutdown = impl


@dataclass(frozen=True)
class WorkerHandle:
    """Identifies one running worker server: its id, address, name, settings and credentials.

    A handle is a supported argument type: pass it to another worker, which can then connect to
    this one directly. ``token`` is the credential of the master that started the worker; it is
    left out of ``repr``. ``ca`` names the CA of a worker that serves mutual TLS (a remote one):
    only processes holding a certificate from it (its master, the master's other workers, rpcpar
    for workers it spawned) can connect; it is empty for a plaintext server. ``host`` is the name
    of the machine the worker runs on.
    """

    worker_id: str
    address: str
    name: str | None = None
    settings: RpcSettings = field(default_factory=RpcSettings)
    token: str = field(default="", repr=False)
    fingerprint: str = ""
    pid: int = 0
    ca: str = ""
    host: str = ""

    def shutdown(self) -> None:
        """Connect to the worker and ask it to exit 0 (it may already have exited)."""
        if _shutdown is None:  # a guard: importing any part of rpc_parallel imports the package, which installs it
            raise RuntimeError("rpc_parallel is not fully imported: import rpc_parallel first")
        _shutdown(self)

    def to_json(self) -> str:
        """The JSON form printed by ``rpcpar spawn`` and read by ``rpcpar call``."""
        return json.dumps({
            "worker_id": self.worker_id, "address": self.address, "name": self.name,
            "settings": json.loads(self.settings.to_json()), "token": self.token,
            "fingerprint": self.fingerprint, "pid": self.pid, "ca": self.ca, "host": self.host,
        })

    @classmethod
    def from_json(cls, text: str) -> WorkerHandle:
        """Parse the form written by ``to_json``."""
        try:
            data: dict[str, Any] = json.loads(text)
            return cls(worker_id=str(data["worker_id"]), address=str(data["address"]),
                       name=data.get("name"), settings=merge(RpcSettings(), data.get("settings", {})),
                       token=str(data.get("token", "")), fingerprint=str(data.get("fingerprint", "")),
                       pid=int(data.get("pid", 0)), ca=str(data.get("ca", "")), host=str(data.get("host", "")))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RpcParallelError(f"not a worker handle: {exc}: {text[:200]!r}") from None
