"""The worker commands of ``rpcpar`` (spawn, call, shutdown, ls, serve), run as real processes.

Workers started by ``rpcpar spawn`` outlive the command, so they are not children of pytest and the
autouse leak check cannot see them: the ``rpcpar`` fixture shuts down every worker a test started
or recorded, and fails the test if one does not exit.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

import rpc_parallel as rp

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COUNTER = "examples.counter:Counter"


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for init to reap it has exited)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _is_worker(pid: int) -> bool:
    try:
        return "rpc_parallel._worker_main" in psutil.Process(pid).cmdline()
    except psutil.Error:
        return False


class Rpcpar:
    """Runs ``python -m rpc_parallel._cli`` from the repository root with its own state directory."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.env = {**os.environ, "RPCPAR_STATE_DIR": str(state)}
        self.spawned: list[rp.WorkerHandle] = []

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "rpc_parallel._cli", *args]

    def __call__(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), input=input, capture_output=True, text=True, cwd=ROOT, env=self.env,
                              timeout=30)

    def many(self, *calls: tuple[str, ...] | tuple[tuple[str, ...], str]) -> list[subprocess.CompletedProcess[str]]:
        """Run independent commands side by side: each is its args, or (args, stdin text)."""
        def run(call: Any) -> subprocess.CompletedProcess[str]:
            args, stdin = call if len(call) == 2 and isinstance(call[0], tuple) else (call, None)
            return self(*args, input=stdin)

        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(run, calls))

    def ok(self, *args: str, input: str | None = None) -> str:
        """Run a command that must succeed; its stdout."""
        r = self(*args, input=input)
        assert r.returncode == 0, f"rpcpar {' '.join(args)} exited {r.returncode}: {r.stderr}"
        return r.stdout

    def lines(self, *args: str, input: str | None = None) -> list[Any]:
        """Run a command that must succeed; its stdout as JSON lines."""
        return [json.loads(line) for line in self.ok(*args, input=input).splitlines()]

    def spawn(self, *args: str) -> rp.WorkerHandle:
        out = self.ok("spawn", COUNTER, *args)
        handle = rp.WorkerHandle.from_json(out)
        self.spawned.append(handle)
        return handle

    def records(self) -> list[rp.WorkerHandle]:
        return [rp.WorkerHandle.from_json(p.read_text()) for p in self.state.glob("*.json")]

    def cleanup(self) -> list[str]:
        """Shut down every worker spawned or recorded; the problems (workers that had to be killed)."""
        problems = []
        handles = {h.worker_id: h for h in [*self.spawned, *self.records()] if h.pid != os.getpid()}
        for h in handles.values():
            if not _alive(h.pid):
                continue
            try:
                h.shutdown()
            except rp.RpcParallelError:
                pass
            if not _wait_gone(h.pid) and _is_worker(h.pid):
                psutil.Process(h.pid).kill()
                problems.append(f"worker {h.name or h.worker_id} (pid {h.pid}) ignored shutdown and was killed")
        return problems


@pytest.fixture
def rpcpar(tmp_path: Path) -> Iterator[Rpcpar]:
    r = Rpcpar(tmp_path / "state")
    yield r
    problems = r.cleanup()
    assert not problems, problems


def test_spawn_outlives_the_command_and_calls_share_its_state(rpcpar: Rpcpar, tmp_path: Path) -> None:
    h = rpcpar.spawn("--arg", "10", "--name", "c")
    assert h.name == "c" and h.address.startswith("127.0.0.1:") and h.token
    assert _alive(h.pid) and _is_worker(h.pid)  # the rpcpar process has exited; its worker has not
    assert psutil.Process(h.pid).ppid() != os.getpid()
    assert stat.S_IMODE(rpcpar.state.stat().st_mode) == 0o700
    (record,) = rpcpar.state.glob("*.json")
    assert record.name == f"{h.worker_id}.json" and stat.S_IMODE(record.stat().st_mode) == 0o600

    handle_file = tmp_path / "handle.json"
    handle_file.write_text(h.to_json())
    assert rpcpar.lines("call", "c", "incr", "5") == [15]  # by name; ints print as numbers
    assert rpcpar.lines("call", str(handle_file), "incr", '{"by": 2}') == [17]  # by file, arguments by name
    assert rpcpar.lines("call", "-", "incr", "[3]", input=h.to_json() + "\n") == [20]  # by stdin, positional
    assert rpcpar.lines("call", h.worker_id[:8], "incr", "0") == [20]  # by id prefix
    assert rpcpar.lines("call", "c", "whoami", "--connection-arg", '"bob"') == ["bob"]
    assert rpcpar.lines("call", "c", "whoami") == [""]  # no connection argument: the zero value


def test_every_function_kind(rpcpar: Rpcpar) -> None:
    rpcpar.spawn("--arg", "10", "--name", "kinds")
    updates = "".join(f"{i}\n" for i in range(1, 5001)) + "\n"  # more than one batch; blank lines skipped
    pipe, state, direct, reverse, one_way = rpcpar.many(
        ("call", "kinds", "count_to", "4"),
        ("call", "kinds", "watch", '{"n": 2}'),
        ("call", "kinds", "ticks", "[3, 0.001]"),
        (("call", "kinds", "total_of", '{"scale": 2}'), updates),
        ("call", "kinds", "log", '"hello"'))
    assert pipe.stdout.splitlines() == ["1", "2", "3", "4"]  # pipe: a line per item
    assert state.stdout.splitlines() == ["10", "11", "12"]  # state, then its updates
    assert [json.loads(line) for line in direct.stdout.splitlines()] == [
        {"x": 0.0, "y": 0.0}, {"x": 1.0, "y": 1.0}, {"x": 2.0, "y": 4.0}]  # direct_pipe of dataclasses
    assert reverse.stdout.splitlines() == [str(2 * 5000 * 5001 // 2)]  # reverse_pipe: updates from stdin
    assert (one_way.returncode, one_way.stdout) == (0, "")  # one_way prints nothing
    for _ in range(50):
        if rpcpar.lines("call", "kinds", "logged") == [["hello"]]:
            break
        time.sleep(0.05)
    assert rpcpar.lines("call", "kinds", "logged") == [["hello"]]
    # parameters with a Python default may be left out (the worker's Describe carries the defaults)
    assert rpcpar.lines("call", "kinds", "slow_double", "21") == [42]
    assert rpcpar.lines("call", "kinds", "slow_double", '{"x": 4, "delay": 0.001}') == [8]


def test_errors_are_reported_without_tracebacks(rpcpar: Rpcpar) -> None:
    h = rpcpar.spawn("--arg", "10", "--name", "e")
    gone = rp.WorkerHandle(worker_id="0" * 32, address="127.0.0.1:1", token="x").to_json()
    cases: list[tuple[tuple[str, ...], str | None, int, str]] = [  # args, stdin, exit code, stderr
        (("call", "e", "boom", '"kaboom"'), None, 1, "rpcpar: ValueError: kaboom (raised in e)"),
        (("call", gone, "incr", "1"), None, 1, "rpcpar: could not reach worker 0000"),
        (("call", "e", "incr", "{"), None, 2, "rpcpar: the argument is not valid JSON"),
        (("call", "e", "incr", '"x"'), None, 2, "rpcpar: incr(): "),
        (("call", "e", "incr"), None, 2, "rpcpar: incr(): missing argument(s) 'by'"),
        (("call", "e", "incr", '{"by": 1, "to": 2}'), None, 2, "rpcpar: incr(): unknown argument(s) 'to'"),
        (("call", "e", "total_of", '{"updates": [1], "scale": 1}'), None, 2, "are read from stdin"),
        (("call", "e", "total_of", '{"scale": 1}'), "1\nnot json\n", 2, "rpcpar: stdin line 2 is not JSON"),
        (("call", "e", "nope"), None, 2, "rpcpar: Counter has no function 'nope'; it has: incr, whoami,"),
        (("call", "nobody", "incr", "1"), None, 2, "rpcpar: no worker 'nobody'"),
        (("call", '{"worker_id": 1}', "incr", "1"), None, 2, "rpcpar: not a worker handle"),
        (("spawn", COUNTER, "--arg", '"ten"'), None, 2, "rpcpar: --arg: "),
        (("spawn", "examples.counter:Nope"), None, 2, "rpcpar: module examples.counter has no worker type Nope"),
        (("spawn", COUNTER, "--arg", "1", "--name", "e"), None, 2, "rpcpar: a worker named 'e' is already running"),
    ]
    results = rpcpar.many(*((args, stdin or "") for args, stdin, _, _ in cases))
    for (args, _, code, message), r in zip(cases, results, strict=True):
        assert (r.returncode, r.stdout) == (code, ""), (args, r.returncode, r.stderr)
        assert r.stderr.startswith(message) or (code == 2 and message in r.stderr), (args, r.stderr)
        if args[2:3] != ("boom",):
            assert "Traceback" not in r.stderr, (args, r.stderr)
    boom = results[0].stderr  # the RemoteError text, with the remote traceback
    assert "Remote traceback:" in boom and 'examples/counter.py", line' in boom and "ValueError: kaboom" in boom

    assert [r.worker_id for r in rpcpar.records()] == [h.worker_id]  # failed spawns left no record
    assert rpcpar.lines("call", "e", "incr", "0") == [10]  # and the worker lives on


def test_json_of_fixed_tuples_unions_and_dataclass_defaults(rpcpar: Rpcpar) -> None:
    """A fixed tuple is a JSON list, a union's value the JSON of its member, and a dataclass field
    with a Python default may be left out (the worker's Describe carries the defaults)."""
    box = {"shape": "CIRCLE", "corners": [{"x": 1, "y": 2}], "meta": {}, "grid": [], "lookup": {},
           "maybe_list": None, "list_of_maybe": [], "owner": None,
           "extra": base64.b64encode(pickle.dumps(None, protocol=5)).decode()}  # unit, label and scale left out
    out = rpcpar.ok("spawn", "tests.golden.decls.types:Shapes", "--arg", json.dumps({"b": box}), "--name", "shapes")
    rpcpar.spawned.append(rp.WorkerHandle.from_json(out))
    full = {**box, "unit": "METRE", "label": "box", "scale": 1.0}
    assert rpcpar.lines("call", "shapes", "get", '["b"]') == [full]
    assert rpcpar.lines("call", "shapes", "get", json.dumps(["zz", {**box, "label": "L"}])) == [
        {**full, "label": "L"}]
    pairs = [["a", "SQUARE"], ["b", None]]
    reading = {"at": [0.0, 1.0], "note": "SQUARE", "tag": None}
    assert rpcpar.lines("call", "shapes", "pick", json.dumps([5, pairs])) == [{**reading, "value": 5}]
    assert rpcpar.lines("call", "shapes", "pick", json.dumps(["x", pairs])) == [[2, "x"]]  # the tuple member
    assert rpcpar.lines("call", "shapes", "pick", json.dumps(["", []])) == [[0, None]]
    assert rpcpar.lines("call", "shapes", "pick", json.dumps([[{"x": 1, "y": 2}], pairs])) == [{**reading, "value": 2}]
    assert rpcpar.lines("call", "shapes", "pick", json.dumps([{"x": 1, "y": 2}, []])) == [{**reading, "value": 0}]
    wrong = rpcpar.many(("call", "shapes", "pick", json.dumps([True, []])),
                        ("call", "shapes", "pick", json.dumps([1, [["a"]]])),
                        ("call", "shapes", "get", json.dumps(["zz", {"shape": "CIRCLE"}])))
    assert [r.returncode for r in wrong] == [2, 2, 2], [r.stderr for r in wrong]
    assert "pick().choice: true is none of the union's members (int, str, corner_list, corner)" in wrong[0].stderr
    assert "pick().pairs[0]: expected a JSON list of 2 items, got [\"a\"]" in wrong[1].stderr
    assert "missing field(s) 'corners', " in wrong[2].stderr and "(label, scale, unit may be left out)" in wrong[2].stderr


def test_ls_shutdown_and_prune(rpcpar: Rpcpar) -> None:
    a = rpcpar.spawn("--arg", "1", "--name", "a")
    b = rpcpar.spawn("--arg", "2")
    stale = rp.WorkerHandle(worker_id="f" * 32, address="127.0.0.1:1", name="stale", token="x", pid=1)
    (rpcpar.state / f"{stale.worker_id}.json").write_text(stale.to_json())

    rows = {r["worker_id"]: r for r in json.loads(rpcpar.ok("ls", "--json", "--timeout", "10"))}
    assert rows[a.worker_id] == {"worker_id": a.worker_id, "name": "a", "host": socket.gethostname(),
                                 "address": a.address, "pid": a.pid, "tls": False, "answering": True}
    assert rows[b.worker_id]["answering"] and rows[b.worker_id]["name"] is None
    assert not rows[stale.worker_id]["answering"]
    table = rpcpar.ok("ls", "--timeout", "10").splitlines()
    assert table[0].split() == ["ID", "NAME", "HOST", "ADDRESS", "PID", "STATUS"]
    assert any(line.split()[:6] == [a.worker_id, "a", socket.gethostname(), a.address, str(a.pid), "answering"]
               for line in table)
    assert any(line.startswith(stale.worker_id) and line.endswith("not answering") for line in table)

    assert rpcpar.ok("shutdown", "a") == ""
    assert _wait_gone(a.pid), "the worker did not exit after rpcpar shutdown"
    assert rpcpar.ok("shutdown", b.to_json()) == ""  # a handle removes its record too
    assert _wait_gone(b.pid)
    assert [r["worker_id"] for r in json.loads(rpcpar.ok("ls", "--json"))] == [stale.worker_id]
    assert rpcpar.ok("ls", "--prune").split() == ["ID", "NAME", "HOST", "ADDRESS", "PID", "STATUS"]
    assert rpcpar.records() == []


def test_spawn_settings_and_unix_socket(rpcpar: Rpcpar, tmp_path: Path) -> None:
    h = rpcpar.spawn("--max-message-size", "5000000", "--heartbeat-timeout", "8", "--handshake-timeout", "5",
                     "--unix-socket", "--stderr", str(tmp_path / "worker.err"), "--arg", "0")
    assert h.address.startswith("unix:")
    assert (h.settings.max_message_size, h.settings.heartbeat.timeout, h.settings.heartbeat.send_every,
            h.settings.handshake_timeout) == (5_000_000, 8.0, 10.0, 5.0)
    assert rpcpar.lines("call", h.worker_id, "incr", "7") == [7]
    r = rpcpar("spawn", COUNTER, "--max-message-size", "0")
    assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT", "rpcpar shutdown"])
def test_serve_in_the_foreground(rpcpar: Rpcpar, stop: str) -> None:
    proc = subprocess.Popen(rpcpar.argv("serve", COUNTER, "--arg", "100", "--name", "fg"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=rpcpar.env)
    try:
        assert proc.stdout is not None
        h = rp.WorkerHandle.from_json(proc.stdout.readline())
        assert h.pid == proc.pid and h.name == "fg"
        assert rpcpar.lines("call", "fg", "incr", "1") == [101]
        assert rpcpar.lines("call", "-", "count_to", "2", input=h.to_json()) == [1, 2]
        if stop == "rpcpar shutdown":
            rpcpar.ok("shutdown", "fg")
        else:
            proc.send_signal(getattr(signal, stop))
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        assert rpcpar.records() == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_plain_json_round_trips_through_nested_types() -> None:
    """What ``rpcpar call`` prints is what it accepts: enums by member name, wrapped containers and
    optionals as plain values (here in-process: ``--arg`` decoding, then the dynamic client)."""
    import base64
    import pickle

    from rpc_parallel._cli import _init_arg
    from rpc_parallel._client import DynamicClient
    from rpc_parallel._errors import DynamicCallError
    from tests.golden.decls.types import Box, Corner, Shape, Shapes, Unit

    box = {"shape": "SQUARE", "corners": [{"x": 1, "y": -2}], "meta": {"k": [1, 2**40]}, "grid": [[1.5], []],
           "lookup": {"3": {"a": "FOOT"}}, "maybe_list": None, "list_of_maybe": [1, None],
           "owner": None, "extra": base64.b64encode(pickle.dumps({1}, protocol=5)).decode(), "unit": "METRE", "label": "L",
           "scale": 2.0}
    arg = _init_arg(Shapes, json.dumps({"b": box}))
    assert arg == {"b": Box(shape=Shape.SQUARE, corners=[Corner(1, -2)], meta={"k": [1, 2**40]}, grid=[[1.5], []],
                            lookup={3: {"a": Unit.FOOT}}, maybe_list=None, list_of_maybe=[1, None], owner=None,
                            extra={1}, unit=Unit.METRE, label="L", scale=2.0)}
    h = Shapes.serve(arg)
    try:
        with DynamicClient(h) as client:
            def call(name: str, value: Any) -> list[Any]:
                return [json.loads(json.dumps(v)) for v in client.call(name, value)]

            assert call("get", ["b", None]) == [box]
            assert call("get", {"name": "zz", "default": None}) == [None]
            for spelling in (1, "SHAPE_SQUARE", "square"):  # member index, proto name, any case
                assert call("get", ["zz", {**box, "shape": spelling}]) == [box]
            tree = {"label": "r", "children": [{"label": "c", "children": [], "parent_label": "r"}],
                    "parent_label": None}
            assert call("walk", [tree]) == [tree]
            with pytest.raises(DynamicCallError, match=r'"HEX" is not a member of enum Shape \(CIRCLE, SQUARE\)'):
                call("tree", [1, ["HEX"]])
            with pytest.raises(DynamicCallError, match=r"missing field\(s\) 'corners', .* of Box"):
                call("get", ["zz", {"shape": "CIRCLE"}])
    finally:
        h.shutdown()


def test_one_way_calls_of_a_dynamic_connection_run_in_order() -> None:
    """A slow note, then quick ones: run as they arrive, the quick ones would finish first."""
    from rpc_parallel._client import DynamicClient
    from tests.integration.workers import Journal

    handle = Journal.spawn(None, name="dynamic-order")
    try:
        with DynamicClient(handle) as client:
            assert list(client.call("note", ["slow", 0.3])) == []
            for i in range(20):
                assert list(client.call("note", [str(i), 0.0])) == []
            deadline = time.monotonic() + 10
            while len(notes := next(client.call("notes"))) < 21 and time.monotonic() < deadline:
                time.sleep(0.01)
        assert notes == ["slow", *(str(i) for i in range(20))]
    finally:
        handle.shutdown()
