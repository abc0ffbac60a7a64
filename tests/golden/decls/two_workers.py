"""Golden declarations: two worker types in one module, sharing a dataclass and an enum."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

import rpc_parallel as rp


class Priority(enum.Enum):
    LOW = 0
    HIGH = 1


@dataclass
class Job:
    id: int
    payload: bytes
    priority: Priority = Priority.LOW


class Producer(rp.Worker):
    @rp.pipe
    def jobs(self, n: int, priority: Priority = Priority.HIGH) -> Iterator[Job]:
        for i in range(n):
            yield Job(i, b"", priority)


class Consumer(rp.Worker):
    def init_worker_state(self, producer: rp.WorkerHandle) -> None:
        self.producer = producer
        self.last_job: Job | None = None

    @rp.reverse_pipe
    def consume(self, jobs: Iterator[Job]) -> int:
        count = 0
        for job in jobs:
            self.last_job = job
            count += 1
        return count

    @rp.rpc
    def last(self) -> Job | None:
        return self.last_job
