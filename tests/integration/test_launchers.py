"""Launchers (issue 13, first part): ``how.wrap(prefix)`` runs the worker under a command, and a
master whose main script was renamed or deleted after it started still spawns workers declared in it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

import rpc_parallel as rp

from .workers import Where

REPO = Path(__file__).resolve().parents[2]


def test_a_wrapped_local_worker_runs_under_its_prefix(tmp_path: Path) -> None:
    marker = tmp_path / "wrapper-ran"
    wrapper = tmp_path / "wrapper.sh"
    wrapper.write_text(f'#!/bin/sh\necho "$@" > {marker}\nexec "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    how = rp.Local().wrap(["nice", "-n", "5"]).wrap([str(wrapper)])  # the last wrap is outermost
    handle = Where.spawn(how=how)
    try:
        with Where.connect(handle) as conn:
            assert conn.run(Where.ppid) == os.getpid()  # a fresh interpreter of ours, not a fork server's child
        assert psutil.Process(handle.pid).nice() == os.nice(0) + 5  # nice ran, then exec'd python
        assert marker.read_text().split()[:3] == ["nice", "-n", "5"]  # the wrapper ran first
    finally:
        handle.shutdown()


def test_wrap_takes_a_command() -> None:
    for bad in ("nice", [], [1]):
        with pytest.raises(TypeError, match="wrap takes a non-empty list of strings"):
            rp.Local().wrap(bad)  # type: ignore[arg-type]
    with pytest.raises(rp.SpawnError, match="could not start worker"):
        Where.spawn(how=rp.Local().wrap(["/nonexistent/wrapper"]))


def test_a_main_script_renamed_or_deleted_after_the_start_still_spawns(tmp_path: Path) -> None:
    """OCaml's remove_running_executable: the master keeps the source it started from."""
    script = tmp_path / "moving.py"
    script.write_text(textwrap.dedent("""
        import os
        import sys
        import rpc_parallel as rp

        class Here(rp.Worker):
            @rp.rpc
            def hello(self) -> str:
                return "hello from " + str(os.getpid())

        def once() -> str:
            handle = Here.spawn()
            with Here.connect(handle) as conn:
                out = conn.run(Here.hello)
            handle.shutdown()
            return out.split()[0]

        if __name__ == "__main__":
            print(once())
            os.rename(sys.argv[0], sys.argv[0] + ".moved")
            print(once())
            os.remove(sys.argv[0] + ".moved")
            print(once())
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert (done.returncode, done.stdout.split()) == (0, ["hello"] * 3), done.stderr
    assert not script.exists() and not Path(str(script) + ".moved").exists()


def test_a_worker_whose_code_differs_from_the_master_s_is_refused(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The code check: the worker module's source changed on disk after the master's first spawn
    of it (on another host: a different copy), so a new worker would run other code."""
    module = tmp_path / "changing_worker.py"
    module.write_text(textwrap.dedent("""
        import rpc_parallel as rp

        class Changing(rp.Worker):
            @rp.rpc
            def version(self) -> int:
                return 1
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import changing_worker  # type: ignore[import-not-found]

    cls = changing_worker.Changing
    try:
        handle = cls.spawn()
        handle.shutdown()
        module.write_text(module.read_text().replace("return 1", "return 2"))
        with pytest.raises(rp.ProtocolError, match=r"does not run the master's code: module changing_worker: "
                                                    r".*changing_worker.py on the worker differs from"):
            cls.spawn()
        handle = cls.spawn(check_code=False)  # the declaration is the same: it runs the new code
        with cls.connect(handle) as conn:
            assert conn.run(cls.version) == 2
        handle.shutdown()
    finally:
        sys.modules.pop("changing_worker", None)
