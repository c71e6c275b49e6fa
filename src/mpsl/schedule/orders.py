"""Reading a schedule file (``mpsl schedule --json``) into what the runtime and simulator follow."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mpsl.errors import ConfigError, FormatError
from mpsl.fileformat import parse_model, read_data
from mpsl.tasks import Order


class ScheduledTask(BaseModel):
    """One task of a schedule file."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    owner: int = Field(ge=0)
    helper: int = Field(ge=0)
    kind: Literal["fwd", "bwd"]
    start_ms: float
    end_ms: float


class ScheduleFile(BaseModel):
    """The parts of a schedule file a run follows (its other fields are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    assignment: list[int] = Field(min_length=1)
    tasks: list[ScheduledTask]


def load_schedule(path: str | Path) -> tuple[list[int], dict[int, Order]]:
    """(helper of each data owner, each busy helper's task order) from a schedule file.

    FormatError naming the file when a task contradicts the assignment or a data owner lacks its
    fwd or bwd task.
    """
    sched = parse_model(ScheduleFile, read_data(path), str(path))
    steps: dict[int, list[tuple[int, str]]] = {}
    for task in sorted(sched.tasks, key=lambda t: (t.start_ms, t.end_ms)):
        if task.owner >= len(sched.assignment) or sched.assignment[task.owner] != task.helper:
            raise FormatError(
                f"{path}: task of data owner {task.owner} on helper {task.helper} contradicts the "
                f"assignment"
            )
        steps.setdefault(task.helper, []).append((task.owner, task.kind))
    for k, h in enumerate(sched.assignment):
        mine = [kind for owner, kind in steps.get(h, []) if owner == k]
        if sorted(mine) != ["bwd", "fwd"]:
            raise FormatError(
                f"{path}: data owner {k} needs one fwd and one bwd task on helper {h}"
            )
    orders: dict[int, Order] = {}
    for h, helper_steps in steps.items():
        try:
            orders[h] = Order.of(helper_steps)
        except ConfigError as exc:  # e.g. a bwd task timed before its fwd task
            raise FormatError(f"{path}: helper {h}: {exc}") from None
    return sched.assignment, orders
