"""``Worker``: the base class of worker types (the instance is the worker state)."""

from __future__ import annotations

import contextvars
from typing import Any

from ._declaration import WorkerMeta

__all__ = ("Worker",)

_CONNECTION_STATE: contextvars.ContextVar[Any] = contextvars.ContextVar("rpc_parallel_connection_state")


class Worker(metaclass=WorkerMeta):
    """Base class of a worker type.

    Subclass it and decorate methods with ``rp.rpc``, ``rp.one_way``, ``rp.pipe``, ``rp.state``,
    ``rp.direct_pipe`` or ``rp.reverse_pipe``. The instance is the worker state, shared by every
    connection; ``init_worker_state(arg)`` runs once with the ``spawn``/``serve`` argument, and
    ``init_connection_state(arg)`` once per connection, its result being ``self.connection_state``
    during that connection's calls.
    """

    def init_worker_state(self, arg: None) -> None:
        """Initialise the worker state from the ``spawn``/``serve`` argument (default: takes None)."""

    def init_connection_state(self, arg: None) -> Any:
        """Return this connection's state from the ``connect`` argument (default: takes None)."""
        return None

    @property
    def connection_state(self) -> Any:
        """The state ``init_connection_state`` returned for the connection of the current call."""
        try:
            return _CONNECTION_STATE.get()
        except LookupError:
            raise RuntimeError("connection_state is only available during a call on a connection") from None
