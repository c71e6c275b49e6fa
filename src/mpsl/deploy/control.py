"""The deployment's control plane: typed messages between the coordinator and its members.

The runtime's roles exchange ``runtime.messages.Message`` (tensors, rounds, errors) and know
nothing of this. A deployment adds registration, the assignment, readiness, heartbeats and the
final metrics; each is a ``Control`` with a pydantic body, validated on decode like every file
format (``deploy/wire.py`` carries the body as a JSON frame).

STOP is the runtime's own message (every role serves until it), but a member must tell the end of
a complete run (report the metrics, exit 0) from an aborted one (exit non-zero, saying why); the
coordinator says which in the STOP's text (``end_of_run``, ``abort``, ``abort_reason``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mpsl.runtime.config import RunConfig
from mpsl.runtime.layout import RoleKind
from mpsl.runtime.messages import Kind, Message
from mpsl.tasks import TaskKind, TaskRecord


class ControlKind(enum.StrEnum):
    """What a control message says."""

    REGISTER = "register"  # member -> coordinator: here I am, reach me at this address
    ASSIGN = "assign"  # coordinator -> member: the run, and every member's route
    READY = "ready"  # member -> coordinator: built my part, waiting for rounds
    HEARTBEAT = "heartbeat"  # both ways, every heartbeat period: I am alive
    METRICS = "metrics"  # member -> coordinator after STOP: task records, memory, traffic
    ROUTE = "route"  # coordinator -> member: a member that came back is reached here now
    RECORDS = "records"  # member -> coordinator while the rounds run: its latest task records


class StopReason(enum.StrEnum):
    """Why the coordinator sends STOP: the first word of the STOP's text."""

    COMPLETE = "complete"  # after the last round: report the metrics and exit
    ABORTED = "aborted"  # the run failed or was interrupted; the rest of the text says why


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Registration(_Body):
    """A member's address, its sealed address (with CURVE keys), the role it was started as."""

    address: str = Field(pattern=r"^tcp://", max_length=256)
    role: RoleKind | None = None
    sealed: str | None = Field(default=None, pattern=r"^tcp://", max_length=256)


class Route(_Body):
    """How to reach one member: its address, CURVE public key and sealed address (seal.py)."""

    address: str = Field(pattern=r"^tcp://", max_length=256)
    public_key: str | None = Field(default=None, max_length=64)
    sealed: str | None = Field(default=None, pattern=r"^tcp://", max_length=256)


class Assignment(_Body):
    """The run a member takes part in: config (cuts and placement resolved), model shape,
    routes to every member, the coordinator's clock and the liveness settings."""

    config: RunConfig
    num_classes: int = Field(gt=0)
    input_shape: list[int] = Field(min_length=1, max_length=8)
    routes: dict[str, Route]
    t0_wall: float
    heartbeat_s: float = Field(gt=0)
    timeout_s: float = Field(gt=0)

    @field_validator("config")
    @classmethod
    def _resolved(cls, config: RunConfig) -> RunConfig:
        if config.cuts is None:
            raise ValueError("an assignment carries the run's cuts")
        return config


class Routes(_Body):
    """New routes: members that registered again, at new addresses."""

    routes: dict[str, Route]


class Empty(_Body):
    """No content (readiness, heartbeats)."""


class Record(_Body):
    """One task record (``mpsl.tasks.TaskRecord``), as a member reports it."""

    node: str = Field(max_length=64)
    owner: int = Field(ge=-1)
    batch: int = Field(ge=-1)
    round: int = Field(ge=-1)
    kind: TaskKind
    start: float
    end: float
    bytes: int = Field(ge=0)

    def task(self) -> TaskRecord:
        """The record as the runtime's type."""
        return TaskRecord(**dict(self))


class Records(_Body):
    """A member's task records since its last report (its log never grows with the rounds)."""

    records: list[Record] = Field(default_factory=list)


class Metrics(_Body):
    """What a member reports after the last round."""

    records: list[Record] = Field(default_factory=list)
    peak_memory_bytes: int | None = None
    bytes_sent: dict[str, int] = Field(default_factory=dict)
    rejected: list[str] = Field(default_factory=list)


BODY: dict[ControlKind, type[_Body]] = {
    ControlKind.REGISTER: Registration,
    ControlKind.ASSIGN: Assignment,
    ControlKind.READY: Empty,
    ControlKind.HEARTBEAT: Empty,
    ControlKind.METRICS: Metrics,
    ControlKind.ROUTE: Routes,
    ControlKind.RECORDS: Records,
}


@dataclass(frozen=True)
class Control:
    """One control message: its kind, its sender and its typed body."""

    kind: ControlKind
    sender: str
    body: _Body = field(default_factory=Empty)

    def __post_init__(self) -> None:
        if not isinstance(self.body, BODY[self.kind]):
            raise TypeError(f"{self.kind} carries {BODY[self.kind].__name__}")

    @property
    def nbytes(self) -> int:
        """Tensor bytes carried (none: control is JSON)."""
        return 0


def registration(
    sender: str, address: str, role: RoleKind | None = None, sealed: str | None = None
) -> Control:
    """A member's registration."""
    body = Registration(address=address, role=role, sealed=sealed)
    return Control(ControlKind.REGISTER, sender, body)


def ready(sender: str) -> Control:
    """A member's readiness."""
    return Control(ControlKind.READY, sender)


def heartbeat(sender: str) -> Control:
    """A heartbeat."""
    return Control(ControlKind.HEARTBEAT, sender)


# The text of a STOP or an ERROR travels in the wire header, at most 4,096 characters of it.
MAX_REASON = 2000


def end_of_run(sender: str) -> Message:
    """The coordinator's STOP after the last round."""
    return Message(Kind.STOP, sender, text=StopReason.COMPLETE.value)


def abort(sender: str, reason: str) -> Message:
    """The coordinator's STOP of a run that did not complete, saying why."""
    return Message(Kind.STOP, sender, text=f"{StopReason.ABORTED.value}: {clip(reason)}")


def clip(reason: str) -> str:
    """``reason``, cut to fit a message's text."""
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def abort_reason(stop: Message) -> str | None:
    """None when ``stop`` ends a complete run, else why the run was aborted."""
    if stop.text == StopReason.COMPLETE.value:
        return None
    head, _, reason = stop.text.partition(": ")
    if head == StopReason.ABORTED.value and reason:
        return reason
    return stop.text or "no reason given"
