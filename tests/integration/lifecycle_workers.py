"""Worker types for the lifecycle tests (importable, so spawned workers and master scripts find them).

Import-time switches, read from the environment a test passes with ``spawn(env=...)``:

- ``LIFECYCLE_PID_FILE``: write this process's pid there first;
- ``LIFECYCLE_IGNORE_TERM``: ignore SIGTERM (so only SIGKILL ends the process);
- ``LIFECYCLE_SLEEP_AT_IMPORT``: sleep that many seconds (a worker too slow to register);
- ``LIFECYCLE_RAISE_AT_IMPORT``: raise ``RuntimeError`` with that text (a worker that cannot start).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass

import rpc_parallel as rp

HB_TIMEOUT = 1.0
SHORT = rp.RpcSettings(heartbeat=rp.Heartbeat(timeout=HB_TIMEOUT, send_every=0.25))

if os.environ.get("LIFECYCLE_PID_FILE"):
    with open(os.environ["LIFECYCLE_PID_FILE"], "w") as _f:
        _f.write(str(os.getpid()))
if os.environ.get("LIFECYCLE_IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.environ.get("LIFECYCLE_SLEEP_AT_IMPORT"):
    time.sleep(float(os.environ["LIFECYCLE_SLEEP_AT_IMPORT"]))
if os.environ.get("LIFECYCLE_RAISE_AT_IMPORT"):
    raise RuntimeError(os.environ["LIFECYCLE_RAISE_AT_IMPORT"])


def _busy(seconds: float) -> int:
    deadline = time.monotonic() + seconds
    n = 0
    while True:
        for _ in range(1000):
            n += 1
        if time.monotonic() >= deadline:
            return n


class Probe(rp.Worker):
    """Reports on and acts in its own process."""

    @rp.rpc
    def pid(self) -> int:
        return os.getpid()

    @rp.rpc
    def env(self, key: str) -> str | None:
        return os.environ.get(key)

    @rp.rpc
    def cwd(self) -> str:
        return os.getcwd()

    @rp.rpc
    def create_file(self, path: str) -> int:
        """Create ``path`` asking for mode 0o666; the permission bits it got (the umask applied)."""
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        os.close(fd)
        return os.stat(path).st_mode & 0o777

    @rp.rpc
    def spin(self, seconds: float) -> int:
        """Pure-Python CPU work (no sleep, no I/O) for ``seconds``; the number of iterations."""
        return _busy(seconds)

    @rp.rpc
    async def spin_on_loop(self, seconds: float) -> int:
        """The same busy loop in an ``async def``: it blocks the worker's event loop meanwhile."""
        return _busy(seconds)

    @rp.rpc
    def sleep(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @rp.rpc
    def say(self, out: str, err: str) -> None:
        print(out, flush=True)
        print(err, file=sys.stderr, flush=True)

    @rp.one_way
    def fail_later(self, message: str) -> None:
        """Raise after the call returned (a one_way): a background failure, the worker exits 254."""
        raise RuntimeError(message)


class Settled(rp.Worker):
    """Prints, from ``init_worker_state``, the directory it runs in (its spawn's ``cd``)."""

    def init_worker_state(self, tag: str) -> None:
        print(f"{tag} in {os.getcwd()}", flush=True)

    @rp.rpc
    def pid(self) -> int:
        return os.getpid()


class SlowInit(rp.Worker):
    """Its ``init_worker_state`` writes its pid to ``$SLOW_INIT_PID_FILE`` (if set), then sleeps
    ``seconds``."""

    def init_worker_state(self, seconds: float) -> None:
        if os.environ.get("SLOW_INIT_PID_FILE"):
            with open(os.environ["SLOW_INIT_PID_FILE"] + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(os.environ["SLOW_INIT_PID_FILE"] + ".tmp", os.environ["SLOW_INIT_PID_FILE"])
        time.sleep(seconds)

    @rp.rpc
    def pid(self) -> int:
        return os.getpid()


@dataclass
class ChainReport:
    pids: list[int]  # every level's pid, outermost first
    settings: list[str]  # every level's server settings (JSON, as its parent read them), outermost first


class Chain(rp.Worker):
    """Each level spawns the next (HEARTBEATER_TIMEOUT, inherited settings) and keeps it running."""

    def init_worker_state(self, level: int) -> None:
        self.level = level
        self.children: list[rp.WorkerHandle] = []

    @rp.rpc
    def extend(self, depth: int) -> ChainReport:
        """Spawn ``depth`` more levels below this one; their pids and settings."""
        if depth == 0:
            return ChainReport([], [])
        child = Chain.spawn(self.level + 1, name=f"chain{self.level + 1}")
        self.children.append(child)
        with Chain.connect(child) as conn:
            below = conn.run(Chain.extend, depth - 1)
            return ChainReport([conn.run(Chain.pid), *below.pids],
                               [conn.worker_settings().to_json(), *below.settings])

    @rp.rpc
    def pid(self) -> int:
        return os.getpid()
