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

    FormatError naming the file when a task contradicts the assignment, a helper's tasks break
    ``Order``'s rule (each data owner's fwd, then its bwd), or a data owner has no task.
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
    orders: dict[int, Order] = {}
    for h, helper_steps in steps.items():
        try:  # the order rule (each data owner's fwd, then its bwd) is Order's
            orders[h] = Order.of(helper_steps)
        except ConfigError as exc:
            raise FormatError(f"{path}: helper {h}: {exc}") from None
    for k, h in enumerate(sched.assignment):
        if h not in orders or k not in orders[h].owners:
            raise FormatError(f"{path}: data owner {k} has no task on helper {h}, its helper")
    return sched.assignment, orders
