"""What compute nodes receive in a real run: the privacy audit's record of it.

A ``Recorder`` keeps copies of the ACTIVATION messages each watched compute node receives and of
the GRADIENT messages the last compute node receives from the data owners, in the rounds asked
for. It is called with each message and its destination: in one process as the engine's
``observer`` (on the transport's send path), in a deployment by the compute node's own member on
its receive path (``deploy/role.py``, ``mpsl compute-node --observe``), which writes what it kept
to a file (``to_bytes``; docs/formats.md) that the audit reads back (``add_file``).
``Recorder.views`` joins each batch with the inputs and labels the data owner trained on, rebuilt
from its batch plan (the same ``batch_plan`` and ``owner_seed`` the data owner calls), so an
attack's guess can be scored sample by sample.

It lives in the runtime, not in ``privacy/``, because a deployed member records with it and the
deployment may not import the audit that drives it.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mpsl.data.base import Labeled
from mpsl.errors import FormatError
from mpsl.runtime.messages import Kind, Message
from mpsl.tasks import owner_endpoint
from mpsl.training.steps import Workload, batch_plan, owner_seed

Key = tuple[int, int, int]  # (data owner, round, batch)


def observation_file(directory: Path, node: str) -> Path:
    """Where compute node ``node``, recording into ``directory``, writes what it received."""
    return directory / f"observed-{node}.npz"


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
        """Copy ``msg`` if it is one a watched node receives (``dest``) in a watched round."""
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

    def to_bytes(self) -> bytes:
        """What was kept, as an observation file (an uncompressed ``.npz``; docs/formats.md)."""
        arrays: dict[str, Any] = {}  # Any: numpy's stubs take a ** dict for its keywords
        for (node, kind), got in self.received.items():
            for (owner, round_, batch), t in got.items():
                # float32 on file: numpy has no bfloat16; the attacks compute in float anyway
                arrays[f"{node}|{kind.value}|{owner}|{round_}|{batch}"] = t.float().numpy()
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    def add_file(self, path: Path) -> None:
        """Add what an observation file holds (written by ``to_bytes``), keeping the rounds and
        nodes this recorder watches and the last node's gradients."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                items = {key: npz[key] for key in npz.files}
        except (OSError, ValueError) as exc:
            raise FormatError(f"{path}: not an observation file (.npz): {exc}") from exc
        for key, array in items.items():
            parts = key.rsplit("|", 4)  # a node's name may hold a "|"; the rest cannot
            if len(parts) != 5 or parts[1] not in ("activation", "gradient"):
                raise FormatError(
                    f"{path}: entry '{key}' is not node|activation or gradient|owner|round|batch"
                )
            node, kind = parts[0], Kind(parts[1])
            try:
                owner, round_, batch = (int(p) for p in parts[2:])
            except ValueError:
                raise FormatError(
                    f"{path}: entry '{key}': owner, round and batch must be whole numbers"
                ) from None
            if self.rounds is not None and round_ not in self.rounds:
                continue
            if (kind is Kind.ACTIVATION and node in self.nodes) or (
                kind is Kind.GRADIENT and node == self.last_node
            ):
                kept = self.received.setdefault((node, kind), {})
                kept[(owner, round_, batch)] = torch.from_numpy(array)

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
