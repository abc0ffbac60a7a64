"""``start_app``: the OCaml entry point. The master runs ``main()``; the same program, re-executed
as a worker (``RPC_PARALLEL_WORKER`` set, then cleared), serves instead."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from ._master import master, set_app_settings
from ._settings import RpcSettings
from ._spawn import WORKER_ENV, set_worker_argv
from ._transport import split_host_port
from ._worker_process import main as worker_main

__all__ = ("program_argv", "start_app", "start_master_server")


def program_argv() -> list[str]:
    """The interpreter and program part of this process's command line (no user arguments)."""
    user_args = len(sys.argv) - 1
    program = sys.orig_argv[1:len(sys.orig_argv) - user_args] if user_args else sys.orig_argv[1:]
    return [sys.executable, *program]


def start_app(main: Callable[[], object], *, settings: RpcSettings | None = None, listen: str | None = None) -> None:
    """Run ``main()`` as the master, or serve as a worker when this program was started as one.

    Call it at the top level of your program (``if __name__ == "__main__": rp.start_app(main)``):
    spawned workers re-execute this program, and never return from here. ``listen``
    (``HOST`` or ``HOST:PORT``) is where remote workers reach the master (see ``start_master_server``).
    """
    if os.environ.get(WORKER_ENV):
        worker_main()
    start_master_server(worker_command_args=None, settings=settings, listen=listen)
    main()


def start_master_server(*, worker_command_args: Sequence[str] | None = (), settings: RpcSettings | None = None,
                        listen: str | None = None) -> None:
    """Initialise the master: app-wide ``settings``, and how workers start.

    With ``worker_command_args`` (a sequence), workers re-execute this program with those arguments,
    which must reach ``rp.expert.worker_command()``; with None, they re-execute it as ``start_app`` does.
    ``listen`` (``HOST``, ``HOST:PORT`` or ``[V6]:PORT``; default ``$RPC_PARALLEL_LISTEN``, else the
    address of the interface that reaches each remote worker's host) is where workers started on
    other machines reach this master; local workers always use loopback.
    """
    if listen is not None:
        if not isinstance(listen, str) or not listen:
            raise TypeError(f"listen must be 'HOST' or 'HOST:PORT', not {listen!r}")
        try:
            split_host_port(listen)
        except ValueError:
            raise ValueError(f"listen must be 'HOST', 'HOST:PORT' or '[V6]:PORT', not {listen!r}") from None
        master().listen = listen
    set_app_settings(settings)
    if worker_command_args is None:
        set_worker_argv(program_argv())
    else:
        set_worker_argv([*program_argv(), *worker_command_args])
