"""Messages the roles exchange. Plain frozen dataclasses; the wire format encodes them.

Tensors in these messages are detached from any autograd graph: a receiver never shares a graph
with its sender, in one process or across hosts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import torch


class Kind(enum.Enum):
    """What a message carries."""

    ACTIVATION = "activation"  # forward: data owner -> node 1 -> ... -> node N -> data owner
    GRADIENT = "gradient"  # backward: data owner -> node N -> ... -> node 1 -> data owner
    ROUND_START = "round_start"  # coordinator -> role: start round with these global weights
    ROUND_DONE = "round_done"  # data owner -> coordinator: finished its batches
    AGGREGATE = "aggregate"  # coordinator -> compute node, aggregator: average these owners now
    WEIGHTS = "weights"  # a part's weights (to or from an aggregator)
    DROP = "drop"  # coordinator -> compute node: a data owner is out of this round
    LEFT = "left"  # -> coordinator: a member left (stopped, or lost: the text says how)
    STOP = "stop"
    ERROR = "error"


@dataclass(frozen=True)
class Message:
    """One message: a kind, ids, an optional tensor and optional named tensors (weights)."""

    kind: Kind
    sender: str
    owner: int = -1  # data owner index, -1 when not about one data owner
    batch: int = -1  # batch number within the round
    round: int = -1
    tensor: torch.Tensor | None = None
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    samples: int = 0  # samples behind a WEIGHTS or ROUND_DONE message (FedAvg weight)
    value: float = 0.0  # summed training loss in a ROUND_DONE message
    virtual_bytes: int = 0  # size a tensor would have, in emulation-only mode (no tensor sent)
    text: str = ""  # error text
    # The data owners a ROUND_START to a compute node starts (the others are gone), or an
    # AGGREGATE averages (the round's finishers).
    owners: tuple[int, ...] = ()

    @property
    def nbytes(self) -> int:
        """Payload bytes (tensor data only)."""
        size = self.tensor.nbytes if self.tensor is not None else self.virtual_bytes
        return size + sum(t.nbytes for t in self.tensors.values())


def strip_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``tensors`` under ``prefix``, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
