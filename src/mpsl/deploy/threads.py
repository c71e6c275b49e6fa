"""Torch threads of member processes on one host: how many each may use without halving the others.

A member process computes with torch's intra-op threads. With one data owner the chain is
sequential (the data owner's first part, then node 1, node 2, ..., back again): one member
computes at a time, so each may use every core. With K data owners, up to K + N members compute
at once; each then gets its share of the cores, so that together they do not oversubscribe them.

Before this policy every member of ``--engine processes`` had one thread: with one data owner a
task used one core and left the others idle. benchmarks/deployment.py, ResNet-101 of issue 21 on
two cores: 0.48 of plain training's speed with one thread a member, 0.93 with this policy
(docs/deploy.md, Measured).

Within a member, all torch work runs on one thread of its own (``ComputeThread``), so that the
process holds one OpenMP pool.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import share_cores

T = TypeVar("T")


def host_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under taskset or a container)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def computing_at_once(data_owners: int, compute_nodes: int) -> int:
    """How many members of one host's pipeline may compute at the same moment."""
    # One data owner: every task waits for the one before it (forward down the chain, backward
    # up): one member computes at a time. More: every data owner and every node may be busy.
    return 1 if data_owners == 1 else data_owners + compute_nodes


def member_threads(config: RunConfig, compute_nodes: int, cores: int | None = None) -> int:
    """Torch threads of each member process when all of ``config``'s members share ``cores``.

    ``config.threads`` when set; otherwise the cores shared among the members that compute at
    once (all of them to each member with one data owner).
    """
    if config.threads is not None:
        return config.threads
    busy = computing_at_once(config.data_owners, compute_nodes)
    return share_cores(host_cores() if cores is None else cores, busy)


class ComputeThread:
    """The one thread of a member process that runs its torch work: building, serving, FedAvg.

    torch's CPU kernels run their parallel loops on OpenMP, which gives every thread that starts
    one a pool of worker threads of its own. Once a process holds more such threads than it has
    cores, libgomp stops letting its workers spin between parallel loops: they sleep, and every
    loop of every task waits for them to wake. A member that built its part on its main thread
    and computed on another had two pools; on two cores its tasks kept 1.4-1.55 cores busy out
    of 2, with some 500 context switches a task (docs/deploy.md, Threads). Everything torch
    does in a member therefore goes through this thread, and the main thread keeps only what
    needs no torch: signals, heartbeats, reports.

    A daemon thread, as the serve loop always was: a member whose coordinator went silent exits
    without waiting for a task that will never end.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self.thread = threading.Thread(target=self._loop, name=f"{name}-compute", daemon=True)
        self.thread.start()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on this thread, after what was submitted before; its result or exception."""
        future: Future[T] = Future()
        self._jobs.put((fn, future))
        return future

    def call(self, fn: Callable[[], T]) -> T:
        """``fn``'s result, computed on this thread (its exception raised here)."""
        return self.submit(fn).result()

    def close(self) -> None:
        """End the thread once what was submitted before has run."""
        self._jobs.put(None)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to whoever waits for it, as it was raised
                future.set_exception(exc)
