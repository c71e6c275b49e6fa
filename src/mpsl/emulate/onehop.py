"""Emulating a one-hop schedule: K data owners, H helpers, each helper in its prescribed order.

A scenario (``mpsl.schedule.Scenario``) gives every (data owner, helper) pair five times: release
(the data owner's first-part forward and upload), the helper's forward, lag (download, last part,
upload), the helper's backward and tail (download, first-part backward). The real runtime runs
one batch of every data owner in the horizontal layout of the schedule's assignment:

- each helper is a compute node following its ``Order`` (the ``scheduled`` queue), and its
  forward and backward of data owner k take k's times at that helper;
- each data owner's three tasks take its release, lag and tail with its own helper;
- messages cross at once: the scenario's transfer times are inside those sums already (each data
  owner has a link of its own to its helper, so no transfer waits for another).

The makespan measured is what the scenario's makespan predicts: from the data owners' start to
the end of the last data owner's last task, on the emulated timeline (a task's emulated start is
its end less its time: a role thread may take a task up before its emulated start).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mpsl.emulate.emulation import frozen_heap, stand_in_data, stand_in_model
from mpsl.errors import ConfigError
from mpsl.runtime.config import RunConfig
from mpsl.runtime.device import Device
from mpsl.runtime.engine import InProcessEngine, RunResult
from mpsl.runtime.messages import Message
from mpsl.schedule.evaluate import Schedule, Step, Task, evaluate
from mpsl.schedule.scenario import Scenario
from mpsl.tasks import Order, TaskKind, TaskRecord, node_endpoint, owner_endpoint


@dataclass(frozen=True)
class ScheduleRun:
    """A schedule as predicted (the evaluator) and as the emulated runtime ran it (ms)."""

    predicted: Schedule
    makespan_ms: float
    tasks: tuple[Task, ...]  # every helper task as it ran, from the start of the batch
    time_scale: float
    wall_s: float
    run: RunResult  # the runtime's own result (events, for a report)

    @property
    def error(self) -> float:
        """(predicted - measured) / measured makespan, the sign convention of ``mpsl emulate``."""
        return (self.predicted.makespan_ms - self.makespan_ms) / self.makespan_ms

    def start_errors_ms(self) -> list[float]:
        """|measured - predicted| start of every helper task."""
        planned = {(t.owner, t.kind): t.start_ms for t in self.predicted.tasks}
        return [abs(t.start_ms - planned[t.owner, t.kind]) for t in self.tasks]

    def to_json(self) -> dict[str, Any]:
        """The JSON form printed by ``mpsl emulate --schedule --json``."""
        errors = self.start_errors_ms()
        return {
            "measured_makespan_ms": self.makespan_ms,
            "predicted_makespan_ms": self.predicted.makespan_ms,
            "error": self.error,
            "task_start_error_ms": {"mean": statistics.fmean(errors), "max": max(errors)},
            "tasks": len(self.tasks),
            "time_scale": self.time_scale,
            "wall_s": self.wall_s,
        }


def _steps(orders: Mapping[int, Order], helpers: int) -> list[list[Step]]:
    """Each helper's order as the evaluator's steps (idle helpers: none)."""
    return [[(a.owner, a.kind) for a in orders[h].actions] if h in orders else []
            for h in range(helpers)]  # fmt: skip


def _devices(
    sc: Scenario, assignment: Sequence[int], helpers: int, scale: float
) -> dict[str, Device]:
    """Emulated task times: each helper's per data owner, each data owner's with its helper."""
    devices: dict[str, Device] = {}
    for h in range(helpers):
        served = [k for k, a in enumerate(assignment) if a == h]
        devices[node_endpoint(h)] = Device(
            {TaskKind.FWD: 0.0, TaskKind.BWD: 0.0},
            owner_ms={
                k: {TaskKind.FWD: sc.fwd_ms[k][h] * scale, TaskKind.BWD: sc.bwd_ms[k][h] * scale}
                for k in served
            },
            compute=False,
        )
    for k, h in enumerate(assignment):
        devices[owner_endpoint(k)] = Device(
            {
                TaskKind.FIRST_FWD: sc.release_ms[k][h] * scale,
                TaskKind.LAST: sc.lag_ms[k][h] * scale,
                TaskKind.FIRST_BWD: sc.tail_ms[k][h] * scale,
            },
            compute=False,
        )
    return devices


def _instant(_sender: str, _dest: str, _msg: Message) -> None:
    """Every message crosses at once (the scenario's times hold the transfers)."""
    return None


def emulate_schedule(
    sc: Scenario,
    assignment: Sequence[int],
    orders: Mapping[int, Order],
    time_scale: float = 1.0,
    method: str = "schedule",
) -> ScheduleRun:
    """Run one batch of every data owner of ``sc`` in the emulated runtime, each helper following
    its order in ``orders``; returns the prediction beside the measurement."""
    if time_scale <= 0:
        raise ConfigError(f"must be positive; got {time_scale}", field="time_scale")
    predicted = evaluate(sc, assignment, _steps(orders, sc.num_helpers), method=method)
    k = sc.num_owners
    helpers = max(assignment) + 1
    config = RunConfig.model_validate(
        {
            "dataset": "synthetic",
            "data_owners": k,
            "cuts": [1, 2],
            "rounds": 1,
            "local_epochs": 1,
            "batches_per_epoch": 1,
            "batch_size": 1,
        }
    )
    devices = _devices(sc, assignment, helpers, time_scale)
    engine = InProcessEngine(
        config,
        dataset=stand_in_data(k),
        model=stand_in_model("scenario", ("first", "middle", "last")),  # owner, helper, owner
        devices=devices,
        link_model=_instant,
        evaluate=False,
        assignment=assignment,
        orders=orders,
    )
    start = time.perf_counter()
    with frozen_heap():
        result = engine.run()
    wall_s = time.perf_counter() - start

    def start_of(r: TaskRecord) -> float:
        # A record's start is when its thread took the task up, which may precede the task's
        # emulated start; its end is the emulated end (the thread sleeps until then).
        device = devices[r.node]
        ms = device.owner_ms.get(r.owner, device.times_ms)[r.kind]
        return r.end - ms / 1000

    records = [
        r for r in result.events.records if r.round == 0 and r.kind.computes and r.node in devices
    ]
    t0 = min(start_of(r) for r in records if r.kind is TaskKind.FIRST_FWD)
    trained = [r.end for r in records if r.kind is TaskKind.FIRST_BWD]
    helper_of = {node_endpoint(h): h for h in range(helpers)}
    tasks = tuple(
        Task(r.owner, helper_of[r.node], r.kind, (start_of(r) - t0) / time_scale * 1000,
             (r.end - t0) / time_scale * 1000)
        for r in sorted(records, key=start_of)
        if r.node in helper_of and r.kind in (TaskKind.FWD, TaskKind.BWD)
    )  # fmt: skip
    makespan_ms = (max(trained) - t0) / time_scale * 1000
    return ScheduleRun(predicted, makespan_ms, tasks, time_scale, wall_s, result)
