"""The task vocabulary: one set of words for what runs where, shared by every layer above.

The scheduler writes orders in it, the simulator traces in it, the runtime logs in it and the report
draws it, so that a simulated round and a measured one compare record by record:

- ``TaskKind``: what a task does (a data owner's three compute steps, a compute node's two, FedAvg,
  and the transfers that only the simulator traces);
- ``Action``: one task of one batch of one data owner on a compute node (``"2F0"``: data owner 2,
  forward, batch 0, as torch.distributed.pipelining writes them);
- ``Order``: the actions one compute node runs for one batch of every data owner it serves, in
  order, repeated batch after batch (what a schedule prescribes);
- ``QueuePolicy``: how a compute node picks its next task when no order is prescribed;
- ``TaskRecord``: one task as it ran (or as it was simulated), seconds from the start of the run;
- endpoint names: ``owner1``.., ``node1``.., ``aggregator``, ``coordinator``. Data owners are
  numbered from 0 in every field (``owner``) and from 1 in every name (``owner1``).
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mpsl.errors import ConfigError

AGGREGATOR = "aggregator"
COORDINATOR = "coordinator"


def owner_endpoint(index: int) -> str:
    """Endpoint name of data owner ``index`` (0-based index, 1-based name)."""
    return f"owner{index + 1}"


def owner_index(endpoint: str) -> int:
    """The 0-based index of data owner ``endpoint`` (``owner3`` -> 2)."""
    if not _is_owner(endpoint):
        raise ConfigError(f"'{endpoint}' is not a data owner's name (owner1, owner2, ...)")
    return int(endpoint.removeprefix("owner")) - 1


_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def node_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a compute node (it is another role's, or not a plain name)."""
    if not _NODE_NAME.match(name):
        return f"compute node name '{name}' must be 1-64 letters, digits, '.', '_' or '-'"
    if name in (AGGREGATOR, COORDINATOR) or _is_owner(name):
        return f"compute node name '{name}' is another role's (owner<k>, aggregator, coordinator)"
    return None


def _is_owner(name: str) -> bool:
    number = name.removeprefix("owner")
    return name.startswith("owner") and number.isdigit() and int(number) >= 1


def node_endpoint(index: int) -> str:
    """Default endpoint name of the compute node at chain position ``index`` (0-based)."""
    return f"node{index + 1}"


def owner_link(index: int) -> str:
    """Trace row of data owner ``index``'s own link (simulation)."""
    return f"{owner_endpoint(index)}.link"


def hop_link(sender: str, receiver: str) -> str:
    """Trace row of the directed link between two compute nodes (simulation)."""
    return f"{sender}->{receiver}"


class TaskKind(enum.StrEnum):
    """What a task does."""

    FIRST_FWD = "first_fwd"  # data owner: first part forward
    FWD = "fwd"  # compute node: its part forward
    LAST = "last"  # data owner: last part forward, loss, backward, step
    BWD = "bwd"  # compute node: its part backward and step
    FIRST_BWD = "first_bwd"  # data owner: first part backward and step
    AGGREGATE = "aggregate"  # FedAvg at the end of a round
    # Transfers: the simulator traces them; the runtime's transport moves them without a record.
    UP_ACT = "up_act"  # data owner -> first compute node
    ACT = "act"  # compute node -> next compute node
    DOWN_ACT = "down_act"  # last compute node -> data owner
    UP_GRAD = "up_grad"  # data owner -> last compute node
    GRAD = "grad"  # compute node -> previous compute node
    DOWN_GRAD = "down_grad"  # first compute node -> data owner
    UPLOAD = "upload"  # data owner -> aggregator: first and last part
    DOWNLOAD = "download"  # aggregator -> data owner: the averaged parts

    @property
    def computes(self) -> bool:
        """A step of a data owner's or a compute node's own compute (not a transfer, not FedAvg)."""
        return self in COMPUTE_KINDS

    @property
    def letter(self) -> str:
        """``F`` or ``B`` for a compute node's task (the pipelining notation)."""
        return {TaskKind.FWD: "F", TaskKind.BWD: "B"}[self]


COMPUTE_KINDS = frozenset(
    {TaskKind.FIRST_FWD, TaskKind.FWD, TaskKind.LAST, TaskKind.BWD, TaskKind.FIRST_BWD}
)
NODE_KINDS = (TaskKind.FWD, TaskKind.BWD)


@dataclass(frozen=True, order=True)
class Action:
    """One task of a compute node: data owner ``owner``'s ``kind`` task of batch ``batch``."""

    owner: int
    kind: TaskKind
    batch: int = 0

    def __post_init__(self) -> None:
        if self.kind not in NODE_KINDS:
            raise ConfigError(f"a compute node runs fwd or bwd tasks; got '{self.kind}'")
        if self.owner < 0 or self.batch < 0:
            raise ConfigError(f"data owner and batch start at 0; got {self.owner}, {self.batch}")

    def __str__(self) -> str:
        return f"{self.owner}{self.kind.letter}{self.batch}"


@dataclass(frozen=True)
class Order:
    """The actions of one batch of every served data owner, in run order, repeated each batch.

    ``actions`` hold batch 0; the ``i``-th task of a round is ``at(i)``.
    """

    actions: tuple[Action, ...]

    def __post_init__(self) -> None:
        if not self.actions:
            raise ConfigError("a prescribed task order needs at least one task")
        seen: dict[int, list[TaskKind]] = {}
        for a in self.actions:
            seen.setdefault(a.owner, []).append(a.kind)
        for owner, kinds in seen.items():
            if kinds != [TaskKind.FWD, TaskKind.BWD]:
                got = ", ".join(str(k) for k in kinds)
                raise ConfigError(
                    f"data owner {owner} needs one fwd task and then one bwd task in the order; "
                    f"got {got}"
                )

    @classmethod
    def of(cls, steps: Sequence[tuple[int, str]]) -> Order:
        """An order from (data owner, "fwd"/"bwd") pairs."""
        return cls(tuple(Action(owner, TaskKind(kind)) for owner, kind in steps))

    @property
    def owners(self) -> list[int]:
        """The data owners this order serves, in index order."""
        return sorted({a.owner for a in self.actions})

    def at(self, i: int) -> Action:
        """The ``i``-th action of a round (0-based), batch included."""
        a = self.actions[i % len(self.actions)]
        return Action(a.owner, a.kind, i // len(self.actions))

    def position(self, owner: int, kind: TaskKind, batch: int) -> int:
        """Where data owner ``owner``'s ``kind`` task of ``batch`` comes in a round (``at``'s
        inverse)."""
        return batch * len(self.actions) + self._turns[owner, kind]

    @functools.cached_property
    def _turns(self) -> dict[tuple[int, TaskKind], int]:
        return {(a.owner, a.kind): i for i, a in enumerate(self.actions)}

    def __str__(self) -> str:
        return " ".join(str(a) for a in self.actions)


class QueuePolicy(enum.StrEnum):
    """Which queued task a compute node runs next."""

    FIFO = "fifo"  # arrival order
    BACKWARD_FIRST = "backward-first"  # any backward task before any forward task
    SCHEDULED = "scheduled"  # exactly a prescribed ``Order``

    def rank(self, kind: TaskKind) -> int:
        """Waiting tasks of lower rank run first; within a rank, in arrival order (``scheduled``:
        the order decides instead). Control messages queue with rank ``rank(TaskKind.FWD)``."""
        return 1 if self is QueuePolicy.BACKWARD_FIRST and kind is TaskKind.FWD else 0

    @classmethod
    def parse(cls, value: str | QueuePolicy, field: str = "queue_policy") -> QueuePolicy:
        """The policy named ``value``; ConfigError listing the choices otherwise."""
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(p.value for p in cls)
            raise ConfigError(
                f"unknown queue policy '{value}'; choose {choices}", field=field
            ) from None


@dataclass(frozen=True)
class TaskRecord:
    """One task as it ran or was simulated: seconds from the start of the run.

    ``node`` is the endpoint that ran it (``owner1``, ``node1`` or a cluster's node name,
    ``aggregator``), or for a simulated transfer the link (``owner1.link``, ``vm1->vm2``).
    ``owner`` and ``batch`` are -1 where they do not apply; ``bytes`` is what the task sent.
    """

    node: str
    owner: int
    batch: int
    round: int
    kind: TaskKind
    start: float
    end: float
    bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-ready dict (one line of events.jsonl)."""
        return {**asdict(self), "kind": str(self.kind)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskRecord:
        """The record of ``to_json``."""
        return cls(**{**data, "kind": TaskKind(data["kind"])})
