"""Torch threads of member processes on one host: how many each may use without halving the others.

A member process computes with torch's intra-op threads. With one data owner the chain is
sequential (the data owner's first part, then node 1, node 2, ..., back again): one member
computes at a time, so each may use every core. With K data owners, up to K + N members compute
at once; each then gets its share of the cores, so that together they do not oversubscribe them.

Before this policy every member of ``--engine processes`` had one thread: with one data owner a
task used one core and left the others idle. benchmarks/deployment.py, ResNet-101 of issue 21 on
two cores: 0.48 of plain training's speed with one thread a member, 0.93 with this policy
(docs/deploy.md, Measured).
"""

from __future__ import annotations

import os

from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import share_cores


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
