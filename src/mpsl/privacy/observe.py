"""What compute nodes receive in a real run, recorded on the transport's send path.

A ``Recorder`` is the engine's ``observer``: it keeps copies of the ACTIVATION messages each
watched compute node receives and of the GRADIENT messages the last compute node receives from the
data owners, in the rounds asked for. ``Recorder.views`` joins each batch with the inputs and
labels the data owner trained on, rebuilt from its batch plan (the same ``batch_plan`` and
``owner_seed`` the data owner calls), so an attack's guess can be scored sample by sample.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import torch

from mpsl.data.base import Labeled
from mpsl.runtime.messages import Kind, Message
from mpsl.tasks import owner_endpoint
from mpsl.training.steps import Workload, batch_plan, owner_seed

Key = tuple[int, int, int]  # (data owner, round, batch)


@dataclass
class NodeView:
    """What one compute node received, sample by sample, with the truth joined to it."""

    node: str
    kind: Kind  # ACTIVATION (forward, any hop) or GRADIENT (from data owners, last hop)
    tensors: torch.Tensor  # (samples, ...) as received
    inputs: torch.Tensor  # the data owners' inputs of those samples
    labels: torch.Tensor  # their labels
    rounds: torch.Tensor  # the round of each sample

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Recorder:
    """Keeps what ``nodes`` receive in ``rounds`` (None: every round); the last node's gradients."""

    nodes: Collection[str]
    last_node: str
    owners: int
    rounds: Collection[int] | None = None
    received: dict[tuple[str, Kind], dict[Key, torch.Tensor]] = field(default_factory=dict)

    def __call__(self, dest: str, msg: Message) -> None:
        """The engine's observer: copy a message a watched node receives."""
        if msg.tensor is None or (self.rounds is not None and msg.round not in self.rounds):
            return
        watched = msg.kind is Kind.ACTIVATION and dest in self.nodes
        # Only the data owners' gradients: what the last node learns about the labels.
        from_owner = msg.kind is Kind.GRADIENT and dest == self.last_node
        owner_sent = msg.sender in {owner_endpoint(k) for k in range(self.owners)}
        if watched or (from_owner and owner_sent):
            # A copy: the tensor is the sender's, and the recorder must not hold it or change it.
            kept = self.received.setdefault((dest, msg.kind), {})
            kept[(msg.owner, msg.round, msg.batch)] = msg.tensor.detach().clone()

    def views(self, shares: Sequence[Labeled], workload: Workload) -> list[NodeView]:
        """Every recorded (node, kind), each batch joined with the samples it was made from."""
        plans: dict[tuple[int, int], list[torch.Tensor]] = {}

        def batch(owner: int, round_: int, b: int) -> torch.Tensor:
            if (owner, round_) not in plans:
                w = workload
                plans[(owner, round_)] = batch_plan(
                    len(shares[owner]),
                    w.batch_size,
                    w.batches_per_epoch,
                    w.local_epochs,
                    owner_seed(w.seed, owner, round_),
                )
            return plans[(owner, round_)][b]

        out = []
        for (node, kind), got in sorted(self.received.items(), key=lambda kv: kv[0][0]):
            keys = sorted(got)
            idx = [batch(k, r, b) for k, r, b in keys]
            pairs = list(zip(keys, idx, strict=True))
            out.append(
                NodeView(
                    node=node,
                    kind=kind,
                    tensors=torch.cat([got[key] for key in keys]),
                    inputs=torch.cat([shares[k].x[i] for (k, _, _), i in pairs]),
                    labels=torch.cat([shares[k].y[i] for (k, _, _), i in pairs]),
                    rounds=torch.cat([torch.full((len(i),), r) for (_, r, _), i in pairs]),
                )
            )
        return out
