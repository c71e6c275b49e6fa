"""Reading a scheduler's result (``mpsl schedule --json``) into what the runtime follows."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mpsl.errors import FormatError
from mpsl.fileformat import parse_model, read_data
from mpsl.tasks import Order


class ScheduledTask(BaseModel):
    """One task of a schedule."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    owner: int = Field(ge=0)
    helper: int = Field(ge=0)
    kind: Literal["fwd", "bwd"]
    start_ms: float
    end_ms: float


class ScheduleFile(BaseModel):
    """The parts of a schedule the runtime needs (other fields of the output are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    assignment: list[int] = Field(min_length=1)
    tasks: list[ScheduledTask]


def load_schedule(path: str | Path) -> tuple[list[int], dict[int, Order]]:
    """(helper of each data owner, each helper's task order) from a schedule file."""
    sched = parse_model(ScheduleFile, read_data(path), str(path))
    orders: dict[int, list[tuple[int, str]]] = {}
    for task in sorted(sched.tasks, key=lambda t: (t.start_ms, t.end_ms)):
        if task.owner >= len(sched.assignment) or sched.assignment[task.owner] != task.helper:
            raise FormatError(
                f"{path}: task of data owner {task.owner} on helper {task.helper} contradicts the "
                f"assignment"
            )
        orders.setdefault(task.helper, []).append((task.owner, task.kind))
    for k, h in enumerate(sched.assignment):
        mine = [kind for owner, kind in orders.get(h, []) if owner == k]
        if sorted(mine) != ["bwd", "fwd"]:
            raise FormatError(
                f"{path}: data owner {k} needs one fwd and one bwd task on helper {h}"
            )
    return sched.assignment, {h: Order.of(steps) for h, steps in orders.items()}
