"""Expert entry points, for programs with their own command line (click)."""

from __future__ import annotations

import click

from ._app import start_master_server
from ._worker_process import main as worker_main

__all__ = ("start_master_server", "worker_command")


def worker_command(name: str = "worker") -> click.Command:
    """A click command to mount at the path given as ``worker_command_args``: it serves a worker."""

    @click.command(name=name, hidden=True, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        worker_main()

    return command
