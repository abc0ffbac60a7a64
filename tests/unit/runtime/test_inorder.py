"""InOrder: numbered one-way calls run by number, one at a time, on a real thread pool."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from rpc_parallel._server._inorder import InOrder


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(8) as executor:
        yield executor


class Recorder:
    def __init__(self) -> None:
        self.ran: list[int] = []
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()
        self.done = threading.Event()

    def job(self, n: int, *, last: bool = False) -> Callable[[], None]:
        def run() -> None:
            with self.lock:
                self.running += 1
                self.most_at_once = max(self.most_at_once, self.running)
            time.sleep(0.0005)
            with self.lock:
                self.running -= 1
                self.ran.append(n)
            if last:
                self.done.set()

        return run


def test_jobs_put_in_any_order_from_many_threads_run_by_number_one_at_a_time(pool: ThreadPoolExecutor) -> None:
    order, rec = InOrder(pool, max_calls=300), Recorder()  # 4 putters: a bound could park all four
    numbers = list(range(300))
    random.Random(7).shuffle(numbers)
    with ThreadPoolExecutor(4) as putters:
        list(putters.map(lambda n: order.put(n, rec.job(n, last=n == 299)), numbers))
    assert rec.done.wait(10)
    assert rec.ran == list(range(300))
    assert rec.most_at_once == 1


def test_a_job_waits_for_lower_numbers_and_none_takes_a_number_without_running(pool: ThreadPoolExecutor) -> None:
    order, rec = InOrder(pool), Recorder()
    order.put(2, rec.job(2, last=True))
    order.put(1, rec.job(1))
    time.sleep(0.05)
    assert rec.ran == []  # 0 has not come
    order.put(0, None)
    assert rec.done.wait(10)
    assert rec.ran == [1, 2]


@pytest.mark.parametrize("seq", [0, 3])  # already run; waiting for lower numbers
def test_a_number_put_twice_is_refused(pool: ThreadPoolExecutor, seq: int) -> None:
    order = InOrder(pool)
    order.put(0, None)
    order.put(3, None)
    with pytest.raises(ValueError, match=f"number {seq} was already received"):
        order.put(seq, None)


def test_a_job_that_raises_does_not_stop_the_ones_after_it(pool: ThreadPoolExecutor) -> None:
    order, rec = InOrder(pool), Recorder()

    def interrupt() -> None:
        raise KeyboardInterrupt  # not an Exception: the server's wrapper sends it to on_failure

    order.put(0, rec.job(0))
    order.put(1, interrupt)
    order.put(2, rec.job(2, last=True))
    assert rec.done.wait(10)
    assert rec.ran == [0, 2]


def test_flush_runs_the_jobs_waiting_past_a_missing_number_in_order(pool: ThreadPoolExecutor) -> None:
    order, rec = InOrder(pool), Recorder()
    order.put(3, rec.job(3, last=True))
    order.put(1, rec.job(1))  # 0 and 2 never come
    order.flush()
    assert rec.done.wait(10)
    assert rec.ran == [1, 3]


def test_a_call_put_after_the_flush_runs_last_whatever_its_number(pool: ThreadPoolExecutor) -> None:
    order, rec = InOrder(pool), Recorder()
    order.put(2, rec.job(2))
    order.flush()
    order.put(0, rec.job(0))  # arrived as its connection ended: not refused as a duplicate,
    order.put(7, rec.job(7, last=True))  # nor left waiting for the numbers before it
    assert rec.done.wait(10)
    assert rec.ran == [2, 0, 7]


def test_a_shut_down_executor_is_reported_to_the_caller() -> None:
    executor = ThreadPoolExecutor(1)
    executor.shutdown()
    order = InOrder(executor)
    with pytest.raises(RuntimeError):
        order.put(0, lambda: None)
    with pytest.raises(RuntimeError):  # not stuck believing a drain is running
        order.put(1, lambda: None)


def test_a_full_queue_makes_later_numbers_wait_but_never_the_next_one(pool: ThreadPoolExecutor) -> None:
    gate = threading.Event()
    order, rec = InOrder(pool, max_calls=3), Recorder()
    order.put(0, gate.wait)  # runs, and holds the queue
    order.put(2, rec.job(2))
    order.put(3, rec.job(3))
    order.put(4, rec.job(4))  # the queue is full now: 2, 3, 4 wait for 1
    waiting = threading.Thread(target=order.put, args=(5, rec.job(5, last=True)))
    waiting.start()
    time.sleep(0.1)
    assert waiting.is_alive()  # 5 waits for room
    order.put(1, rec.job(1))  # the next one never waits
    gate.set()
    waiting.join(10)
    assert not waiting.is_alive()
    assert rec.done.wait(10)
    assert rec.ran == [1, 2, 3, 4, 5]


def test_calls_woken_by_the_flush_still_run_by_number(pool: ThreadPoolExecutor) -> None:
    """Calls 3 then 2 wait for room when the connection ends: they run 2 then 3."""
    ran: list[int] = []
    gate = threading.Event()
    order = InOrder(pool, max_calls=1)
    order.put(0, lambda: gate.wait(5))  # runs
    order.put(1, lambda: ran.append(1))  # ready: the queue of one is full
    waiting = []
    for seq in (3, 2):
        t = threading.Thread(target=order.put, args=(seq, lambda seq=seq: ran.append(seq)))
        t.start()
        waiting.append(t)
        deadline = time.monotonic() + 5
        while seq not in order._blocked and time.monotonic() < deadline:
            time.sleep(0.005)
    order.flush()
    for t in waiting:
        t.join(5)
    gate.set()
    deadline = time.monotonic() + 5
    while len(ran) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ran == [1, 2, 3]
