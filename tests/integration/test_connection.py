"""A connection's own state: ``closed``, ``wait_closed``, ``worker_id``, ``close_reason``, and a
``with`` block that raises (OCaml's ``Connection.close``/``close_finished``/``close_reason``)."""

from __future__ import annotations

import pytest

import rpc_parallel as rp

from .workers import Calls


def test_the_state_of_an_open_then_closed_connection(calls: rp.WorkerHandle) -> None:
    conn = Calls.connect(calls, "t")
    assert conn.worker_id == calls.worker_id
    assert not conn.closed and conn.close_reason is None
    assert conn.wait_closed(0.1) is False  # open: the wait times out
    assert conn.run(Calls.tagged, 1) == "t:1"
    conn.close()
    assert conn.closed and conn.wait_closed(5) is True
    assert conn.close_reason == "closed by close()"
    conn.close()  # again: nothing happens
    assert conn.close_reason == "closed by close()"


def test_a_with_block_that_raises_closes_its_connection_and_the_error_propagates(calls: rp.WorkerHandle) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), Calls.connect(calls, "t") as conn:
        assert conn.run(Calls.tagged, 2) == "t:2"
        raise Boom
    assert conn.closed and conn.close_reason == "closed by close()"
    with Calls.connect(calls, "u") as other:  # the worker is untouched
        assert other.run(Calls.tagged, 3) == "u:3"


def test_a_remote_error_inside_a_with_block_closes_the_connection_too(calls: rp.WorkerHandle) -> None:
    with pytest.raises(rp.RemoteError, match="no good"), Calls.connect(calls, "t") as conn:
        conn.run(Calls.fail, "no good")
    assert conn.closed
