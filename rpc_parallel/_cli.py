"""The ``rpcpar`` command line (click): one group, one section per command.

Errors the user can fix (an invalid declaration, protoc rejecting a file, a module that cannot be
imported, a bad JSON argument, an unknown worker) print ``rpcpar: <message>`` on stderr and exit 2,
without a traceback. Failures of a worker or of the connection to it (a remote exception, a worker
that does not answer) print the same way and exit 1.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from . import codegen
from ._client import NOT_GIVEN, DynamicClient
from ._codec import codec_for, message_classes, to_message
from ._declaration import workers_in_module
from ._errors import (
    AuthenticationError,
    DeclarationError,
    MessageTooLargeError,
    ProtocolError,
    RemoteError,
    RpcParallelError,
    SpawnError,
    WorkerConnectionError,
)
from ._options import DEV_NULL, FileAppend, How, Local, ShutdownOn, Ssh
from ._records import forget, load_handle, record, records, state_dir
from ._schema import file_spec, service_spec
from ._served import stop_all
from ._settings import Heartbeat, RpcSettings
from ._supervision import ANSWERING, GONE, SILENT, probe
from ._worker import Worker

__all__ = ("main",)

EXIT_STALE = 1
EXIT_FAILED = 1
EXIT_ERROR = 2
_WORKER_FAILURES = (RemoteError, WorkerConnectionError, SpawnError, AuthenticationError, ProtocolError,
                    MessageTooLargeError)
F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """rpcpar: run typed Python functions in worker processes, over gRPC."""


def fail(message: str) -> NoReturn:
    """Print ``rpcpar: message`` on stderr and exit 2."""
    click.echo(f"rpcpar: {message}", err=True)
    sys.exit(EXIT_ERROR)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn errors the user can fix into ``fail(...)`` instead of a traceback."""
    try:
        yield
    except RpcParallelError as exc:
        fail(str(exc))
    except (ImportError, SyntaxError) as exc:
        fail(f"{type(exc).__name__}: {exc}")


@contextmanager
def worker_errors() -> Iterator[None]:
    """Failures of a worker or of the connection to it: ``rpcpar: message`` on stderr, exit 1."""
    try:
        yield
    except _WORKER_FAILURES as exc:
        click.echo(f"rpcpar: {exc}", err=True)
        sys.exit(EXIT_FAILED)


def find_project(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (default: cwd) holding a ``pyproject.toml``."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "pyproject.toml").is_file():
            return directory
    raise DeclarationError(f"no pyproject.toml in {here} or above")


def project_config(project: Path) -> dict[str, Any]:
    """The ``[tool.rpcpar]`` table of ``project``'s ``pyproject.toml`` (empty when absent)."""
    with open(project / "pyproject.toml", "rb") as f:
        data = tomllib.load(f)
    table = data.get("tool", {}).get("rpcpar", {})
    if not isinstance(table, dict):
        raise DeclarationError(f"{project / 'pyproject.toml'}: [tool.rpcpar] must be a table")
    return table


# -- gen ---------------------------------------------------------------------------------------


@main.command()
@click.argument("targets", nargs=-1, metavar="MODULE[:CLASS]...")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output root (default: the sys.path root each module is imported from).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a generated file is missing or stale.")
@click.option("--all", "all_", is_flag=True,
              help="Also every module of [tool.rpcpar] modules in pyproject.toml, and proto/**/*.proto "
                   "(compiled with -Iproto into the project root).")
def gen(targets: tuple[str, ...], out: Path | None, check: bool, all_: bool) -> None:
    """Generate the .proto, _pb2 stubs and typed client of each worker module.

    MODULE is a dotted module name (or a path to a .py file) importable from the current
    directory; one .proto holds every worker type of a module, so :CLASS only checks that CLASS
    is one of them. Files go next to the module unless --out is given.
    """
    if not targets and not all_:
        raise click.UsageError("name at least one MODULE, or pass --all")
    jobs: list[tuple[Path, Callable[[], list[codegen.GeneratedFile]]]] = []
    with user_errors():
        modules = [_parse_target(t) for t in targets]
        if all_:
            project = find_project()
            configured = project_config(project).get("modules", [])
            if not isinstance(configured, list) or not all(isinstance(m, str) for m in configured):
                raise DeclarationError(f"{project / 'pyproject.toml'}: [tool.rpcpar] modules must be a list "
                                       "of module names")
            _on_path(project)
            modules += [(m, None) for m in configured]
            proto_root = project / "proto"
            jobs.append((out or project, functools.partial(codegen.compile_protos, proto_root)))
        seen: set[str] = set()
        for module, cls in modules:
            if cls is not None:
                _check_class(module, cls)
            if module in seen:
                continue
            seen.add(module)
            jobs.append((out or codegen.module_root(module), functools.partial(codegen.generate, module)))

        problems: list[str] = []
        written: list[Path] = []
        for root, make in jobs:
            files = make()
            if check:
                problems += codegen.check(files, root)
            else:
                written += codegen.write(files, root)
    if check:
        for problem in problems:
            click.echo(problem)
        if problems:
            sys.exit(EXIT_STALE)
        click.echo("up to date")
        return
    for path in written:
        click.echo(f"wrote {path}")
    if not written:
        click.echo("up to date")


def _parse_target(target: str) -> tuple[str, str | None]:
    """``pkg.mod:Class`` or ``pkg/mod.py`` -> (module name, class name or None)."""
    module, _, cls = target.partition(":")
    if module.endswith(".py"):
        path = Path(module)
        if path.is_absolute() and path.is_relative_to(Path.cwd()):
            path = path.relative_to(Path.cwd())
        module = ".".join(path.with_suffix("").parts)
    if not module or not all(part.isidentifier() for part in module.split(".")):
        raise DeclarationError(f"not a module name: {target!r} (expected MODULE or MODULE:CLASS)")
    return module, cls or None


def _check_class(module: str, cls: str) -> None:
    codegen.import_module(module)
    names = [w.__name__ for w in workers_in_module(module)]
    if cls not in names:
        raise DeclarationError(f"module {module} has no worker type {cls} (it declares: {', '.join(names) or 'none'})")


def _on_path(root: Path) -> None:
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))



def _json_option(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise RpcParallelError(f"{what} is not valid JSON: {exc}: {text[:80]!r}") from None


def _echo_json(value: Any) -> None:
    """One JSON line on stdout, flushed; a closed stdout (``| head``) ends the command quietly."""
    try:
        sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_FAILED)


# -- spawn / serve ---------------------------------------------------------------------------------


def _settings_options(f: F) -> F:
    """The ``RpcSettings`` options shared by ``spawn`` and ``serve``."""
    options: tuple[Callable[[Any], Any], ...] = (
        click.option("--max-message-size", type=click.IntRange(1), metavar="BYTES",
                     help="Largest message the worker sends or receives (default 1 GiB)."),
        click.option("--heartbeat-timeout", type=click.FloatRange(min=0, min_open=True), metavar="S",
                     help="A peer whose ping goes unanswered this long is dead (default 30)."),
        click.option("--heartbeat-every", type=click.FloatRange(min=0, min_open=True), metavar="S",
                     help="Seconds between pings (default 10)."),
        click.option("--handshake-timeout", type=click.FloatRange(min=0, min_open=True), metavar="S",
                     help="Deadline for connecting and opening a connection (default 30)."),
    )
    for option in reversed(options):
        f = option(f)
    return f


def _settings(max_message_size: int | None, heartbeat_timeout: float | None, heartbeat_every: float | None,
              handshake_timeout: float | None) -> RpcSettings | None:
    if all(v is None for v in (max_message_size, heartbeat_timeout, heartbeat_every, handshake_timeout)):
        return None
    heartbeat = None
    if heartbeat_timeout is not None or heartbeat_every is not None:
        heartbeat = Heartbeat(timeout=heartbeat_timeout, send_every=heartbeat_every)
    return RpcSettings(max_message_size=max_message_size, heartbeat=heartbeat, handshake_timeout=handshake_timeout)


def _worker_class(target: str) -> type[Worker]:
    """The worker class named by ``MODULE:CLASS`` (imported with the current directory on sys.path)."""
    module_name, cls_name = _parse_target(target)
    if cls_name is None:
        raise DeclarationError(f"name the worker class: {target}:CLASS")
    module = codegen.import_module(module_name)
    cls = getattr(module, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Worker)):
        _check_class(module_name, cls_name)  # names the worker types the module does declare
        raise DeclarationError(f"{target} is not a worker type")
    return cls


def _init_arg(cls: type, text: str | None) -> Any:
    """The ``init_worker_state`` argument of ``cls`` from ``--arg`` JSON, decoded through the worker
    type's ``<Worker>Init`` message as a worker would decode it."""
    value = _json_option(text, "--arg")
    spec = service_spec(cls)
    message_cls = message_classes(file_spec(cls.__module__))[spec.init.name]
    if "arg" not in message_cls.DESCRIPTOR.fields_by_name:
        if value is not None:
            raise RpcParallelError(f"{spec.name}.init_worker_state takes no argument (omit --arg)")
        return None
    message = to_message(message_cls, {"arg": value}, "--arg", codec_for(cls).message_defaults())
    try:
        return codec_for(cls).decode_init(message.SerializeToString())
    except ProtocolError as exc:  # e.g. a Pickled value that is no pickle
        raise RpcParallelError(f"--arg: {exc}") from None


@main.command()
@click.argument("target", metavar="MODULE:CLASS")
@click.option("--arg", "arg_json", metavar="JSON", help="The init_worker_state argument, as JSON.")
@click.option("--name", help="A name for the worker (rpcpar call/shutdown accept it as HANDLE).")
@_settings_options
@click.option("--unix-socket", is_flag=True, help="Listen on a unix socket in a 0700 directory, not a loopback port.")
@click.option("--stdout", "stdout_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Append the worker's stdout to this file (default: discarded).")
@click.option("--stderr", "stderr_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Append the worker's stderr to this file (default: discarded).")
@click.option("--spawn-timeout", type=click.FloatRange(min=0, min_open=True), default=20.0, show_default=True,
              metavar="S", help="Give up (and kill the worker) if it is not initialised by then.")
@click.option("--host", metavar="[USER@]HOST", help="Start the worker on HOST through ssh (rp.Ssh), with mutual TLS.")
@click.option("--python", metavar="PATH", help="With --host: the interpreter there (default: this one's path).")
@click.option("--ssh-port", type=click.IntRange(1, 65535), default=22, show_default=True, help="With --host.")
@click.option("--identity-file", metavar="PATH", help="With --host: ssh's -i.")
@click.option("--ssh-option", "ssh_options", multiple=True, metavar="OPTION",
              help="With --host: an ssh -o option (repeatable), e.g. StrictHostKeyChecking=accept-new.")
@click.option("--no-tls", is_flag=True, help="With --host: plaintext instead of mutual TLS (the token still applies).")
def spawn(target: str, arg_json: str | None, name: str | None, max_message_size: int | None,
          heartbeat_timeout: float | None, heartbeat_every: float | None, handshake_timeout: float | None,
          unix_socket: bool, stdout_path: Path | None, stderr_path: Path | None, spawn_timeout: float,
          host: str | None, python: str | None, ssh_port: int, identity_file: str | None, ssh_options: tuple[str, ...],
          no_tls: bool) -> None:
    """Start a worker of MODULE:CLASS that outlives this command; print its handle as JSON.

    The worker runs until `rpcpar shutdown` (shutdown_on=CALLED_SHUTDOWN_FUNCTION), in `/`, with
    its output discarded unless --stdout/--stderr are given (paths on the worker's host). Its
    handle, which holds the credentials to call it, is recorded for `rpcpar ls` in
    $RPCPAR_STATE_DIR (default ${XDG_STATE_HOME:-~/.local/state}/rpcpar/workers; directory 0700,
    files 0600); for a worker on another --host, the record also holds the certificate and key
    that `rpcpar call` and `shutdown` present to it.
    """
    with user_errors(), worker_errors():
        settings = _settings(max_message_size, heartbeat_timeout, heartbeat_every, handshake_timeout)
        cls = _worker_class(target)
        arg = _init_arg(cls, arg_json)
        if name is not None:
            for h in records():
                if h.name == name:
                    if probe(h) != GONE:
                        raise RpcParallelError(f"a worker named {name!r} is already running ({h.worker_id}); "
                                               "shut it down first or choose another --name")
                    forget(h.worker_id)  # a stale record: that worker is gone
        how: How = Local(unix_socket=unix_socket, fork_server=False)
        if host is not None:
            if unix_socket:
                raise click.UsageError("--unix-socket and --host exclude each other")
            user, _, hostname = host.rpartition("@")
            how = Ssh(hostname, user=user or None, port=ssh_port, python=python, identity_file=identity_file,
                      ssh_options=ssh_options, tls=not no_tls)
        elif python or identity_file or ssh_options or no_tls or ssh_port != 22:
            raise click.UsageError("--python, --ssh-port, --identity-file, --ssh-option and --no-tls need --host")
        handle = cls.spawn(
            arg, shutdown_on=ShutdownOn.CALLED_SHUTDOWN_FUNCTION, name=name, settings=settings,
            # one worker that outlives this command: a fresh interpreter is quicker than a fork server
            # (and shows in ps as `python -m rpc_parallel._worker_main`)
            how=how,
            redirect_stdout=FileAppend(stdout_path.resolve()) if stdout_path else DEV_NULL,
            redirect_stderr=FileAppend(stderr_path.resolve()) if stderr_path else DEV_NULL,
            spawn_timeout=spawn_timeout)
        try:
            record(handle)
        except OSError as exc:
            handle.shutdown()
            raise RpcParallelError(f"cannot record the worker in {state_dir()}: {exc}; it was shut down") from None
    click.echo(handle.to_json())


@main.command()
@click.argument("target", metavar="MODULE:CLASS")
@click.option("--arg", "arg_json", metavar="JSON", help="The init_worker_state argument, as JSON.")
@click.option("--name", help="A name for the worker (rpcpar call/shutdown accept it as HANDLE).")
@_settings_options
def serve(target: str, arg_json: str | None, name: str | None, max_message_size: int | None,
          heartbeat_timeout: float | None, heartbeat_every: float | None, handshake_timeout: float | None) -> None:
    """Host a worker of MODULE:CLASS in this process, in the foreground; print its handle as JSON.

    It serves until SIGINT or SIGTERM (or `rpcpar shutdown`), then exits 0. While it runs it is
    recorded like a spawned worker, so `rpcpar call NAME ...` and `rpcpar ls` find it.
    """
    stop = threading.Event()
    with user_errors(), worker_errors():
        settings = _settings(max_message_size, heartbeat_timeout, heartbeat_every, handshake_timeout)
        cls = _worker_class(target)
        arg = _init_arg(cls, arg_json)
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        handle = cls.serve(arg, settings=settings, name=name)
    try:
        try:
            record(handle)
        except OSError as exc:
            click.echo(f"rpcpar: not recorded (rpcpar ls will not show it): {exc}", err=True)
        click.echo(handle.to_json())
        click.echo(f"rpcpar: serving worker {name or handle.worker_id} at {handle.address} "
                   f"(pid {os.getpid()}); SIGINT or SIGTERM stops it", err=True)
        while not stop.wait(1.0):
            if probe(handle) == GONE:
                break  # shut down through its handle
    finally:
        forget(handle.worker_id)
        stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- call / shutdown / ls ----------------------------------------------------------------------------


@main.command()
@click.argument("handle", metavar="HANDLE")
@click.argument("function")
@click.argument("arg_json", metavar="[JSON]", required=False)
@click.option("--connection-arg", "connection_json", metavar="JSON",
              help="The init_connection_state argument, as JSON.")
def call(handle: str, function: str, arg_json: str | None, connection_json: str | None) -> None:
    """Call FUNCTION of the worker HANDLE, without importing its worker type; print the result as JSON.

    HANDLE is handle JSON, a file holding it, `-` (the first line of stdin), or the id or name of
    a worker recorded by `rpcpar spawn`/`serve`. JSON is an object of the arguments by name, a
    list of them in order, or (for a one-parameter function) the argument itself; every argument
    must be given (rpcpar does not know Python defaults). Ints are JSON numbers, enums their
    member names, optionals null. Without --connection-arg, init_connection_state gets the zero
    value of its argument's type ("", 0, null...).

    Output: an rpc prints its result; a pipe or direct_pipe one line per item; a state its state,
    then one line per update; a one_way nothing. A reverse_pipe reads its updates from stdin, one
    JSON value per line, and prints its result. A remote exception prints as RemoteError, exit 1.
    """
    with user_errors(), worker_errors():
        arg = NOT_GIVEN if arg_json is None else _json_option(arg_json, "the argument")
        connection_arg = NOT_GIVEN if connection_json is None else _json_option(connection_json, "--connection-arg")
        h = load_handle(handle)
        with DynamicClient(h, connection_arg) as client:
            f = client.function(function)
            if f.kind == "reverse_pipe" and sys.stdin.isatty():
                click.echo(f"rpcpar: {function} reads its updates from stdin, one JSON value per line; "
                           "end them with Ctrl-D", err=True)
            for value in client.call(function, arg, updates=sys.stdin):
                _echo_json(value)


@main.command()
@click.argument("handle", metavar="HANDLE")
def shutdown(handle: str) -> None:
    """Ask the worker HANDLE to exit, and remove its record (HANDLE forms as in `rpcpar call`).

    If nothing serves the worker any more, its record is removed and the command exits 1; if it
    does not answer within its handshake_timeout (hung or stopped), the record is kept and the
    command exits 1.
    """
    with user_errors(), worker_errors():
        h = load_handle(handle)
        status = probe(h, h.settings.handshake_timeout)
        if status == GONE:
            forget(h.worker_id)
            raise WorkerConnectionError(f"worker {h.name or h.worker_id} is gone: nothing serves it at "
                                        f"{h.address} (its record, if any, was removed)")
        if status == SILENT:
            raise WorkerConnectionError(f"worker {h.name or h.worker_id} at {h.address} does not answer "
                                        "(hung or stopped?); its record is kept")
        h.shutdown()
        forget(h.worker_id)


@main.command(name="ls")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option("--prune", is_flag=True, help="Remove the records of workers that do not answer.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True,
              metavar="S", help="How long each worker has to answer.")
def list_workers(as_json: bool, prune: bool, timeout: float) -> None:
    """List the workers recorded by `rpcpar spawn`/`serve`: id, name, address, pid, and whether they
    answer (a Control/Settings call within --timeout)."""
    with user_errors():
        known = records()
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(known)))) as pool:
            alive = [status == ANSWERING for status in pool.map(lambda h: probe(h, timeout), known)]
    rows: list[dict[str, Any]] = []
    for h, ok in zip(known, alive, strict=True):
        if prune and not ok:
            forget(h.worker_id)
            continue
        rows.append({"worker_id": h.worker_id, "name": h.name, "host": h.host, "address": h.address, "pid": h.pid,
                     "tls": bool(h.ca), "answering": ok})
    if as_json:
        click.echo(json.dumps(rows))
        return
    table: list[tuple[str, ...]] = [("ID", "NAME", "HOST", "ADDRESS", "PID", "STATUS")] + [
        (r["worker_id"], r["name"] or "-", r["host"] or "-", r["address"] + (" (tls)" if r["tls"] else ""),
         str(r["pid"]), "answering" if r["answering"] else "not answering") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        click.echo("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[5]]))


if __name__ == "__main__":
    main()
