"""Gates: what each role accepts from the network, checked before the role sees a message.

A gate knows the role's place in the pipeline: who may send it which kind of message, about which
data owner, with which tensor shape and dtype, for which batch. Anything else is refused with a
reason (the transport logs it and drops the message), so one bad peer cannot disturb the
instances of the other data owners. A data owner can only reach its own part instances: compute
nodes accept a data owner's activations and gradients only under that data owner's own index, and
only at the node that is its hop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mpsl.deploy.control import Control, ControlKind
from mpsl.runtime.layout import Layout, RoleKind
from mpsl.runtime.messages import Kind, Message
from mpsl.runtime.setup import RunSetup
from mpsl.tasks import AGGREGATOR, COORDINATOR, owner_endpoint, owner_index

# What only the coordinator sends a member.
CONTROL = {
    Kind.ROUND_START,
    Kind.AGGREGATE,
    Kind.DROP,
    Kind.STOP,
    Kind.ERROR,
    ControlKind.ASSIGN,
    ControlKind.ROUTE,
}
Shape = tuple[int, ...]
Packet = Message | Control


def part_shapes(parts: Sequence[nn.Module], input_shape: Shape) -> list[tuple[Shape, Shape]]:
    """(input shape, output shape) of every part, without the batch dimension."""
    shapes = []
    x = torch.zeros(1, *input_shape)
    with torch.no_grad():
        for part in parts:
            was_training = part.training
            part.eval()
            y = part(x)
            part.train(was_training)
            shapes.append((tuple(x.shape[1:]), tuple(y.shape[1:])))
            x = y
    return shapes


class Gate:
    """Accepts control messages from the coordinator only; subclasses add the role's traffic."""

    def __init__(self) -> None:
        self.round = -1

    def check(self, msg: Packet, peer: str | None) -> str | None:
        """None to accept ``msg``, else why it is refused."""
        if msg.kind in CONTROL:
            if msg.sender != COORDINATOR:
                return f"only the coordinator sends {msg.kind.value}"
            if msg.kind is Kind.ROUND_START:
                assert isinstance(msg, Message)
                self.round = msg.round
                self.start_round()
            return None
        if isinstance(msg, Control):
            return f"a member does not take {msg.kind.value} messages"
        return self.traffic(msg)

    def ahead(self, msg: Packet) -> bool:
        """Whether ``msg`` is to wait for the next round start, to be checked then."""
        return False

    def start_round(self) -> None:
        """A round starts: what the last one left in flight (a dropped data owner's) is over."""

    def traffic(self, msg: Message) -> str | None:
        """Check a message that is not control traffic."""
        return f"{msg.kind.value} messages are not for this role"

    def sent(self, dest: str, msg: Packet) -> None:
        """Note a message this role sent (to expect its answer)."""

    def _tensor(self, msg: Message, shape: Shape) -> str | None:
        t = msg.tensor
        if t is None:
            return "no tensor"
        if t.dtype != torch.float32:
            return f"tensor dtype {t.dtype}, expected torch.float32"
        if t.dim() != len(shape) + 1 or tuple(t.shape[1:]) != shape or t.shape[0] < 1:
            return f"tensor shape {list(t.shape)}, expected [batch, {', '.join(map(str, shape))}]"
        return None


class NodeGate(Gate):
    """Compute node i: activations from its previous hop, gradients from its next hop."""

    def __init__(
        self,
        prev_hop: Mapping[int, str],
        next_hop: Mapping[int, str],
        in_shape: Shape,
        out_shape: Shape,
    ) -> None:
        super().__init__()
        self.prev_hop, self.next_hop = prev_hop, next_hop  # data owner -> peer, for those served
        self.in_shape, self.out_shape = in_shape, out_shape
        self.pending: dict[tuple[int, int], int] = {}  # (owner, batch) -> batch size

    def ahead(self, msg: Packet) -> bool:
        """A task of the round after the running one: a data owner's activation can arrive before
        the coordinator's round start (another connection; the start carries the weights)."""
        return (
            isinstance(msg, Message)
            and msg.kind in (Kind.ACTIVATION, Kind.GRADIENT)
            and msg.round == self.round + 1
        )

    def start_round(self) -> None:
        """A data owner dropped from the last round left batches awaiting a gradient."""
        self.pending.clear()

    def traffic(self, msg: Message) -> str | None:
        """Activations and gradients of the data owners this node serves, in order."""
        if msg.kind not in (Kind.ACTIVATION, Kind.GRADIENT):
            return f"a compute node does not take {msg.kind.value} messages"
        if msg.owner not in self.prev_hop:
            return f"data owner {msg.owner} is not served by this node"
        if msg.round != self.round:
            return f"round {msg.round}, but round {self.round} is running"
        key = (msg.owner, msg.batch)
        if msg.kind is Kind.ACTIVATION:
            if msg.sender != self.prev_hop[msg.owner]:
                return f"activations of data owner {msg.owner} come from {self.prev_hop[msg.owner]}"
            if key in self.pending:
                return f"batch {msg.batch} of data owner {msg.owner} is already in flight"
            problem = self._tensor(msg, self.in_shape)
            if problem is None:
                assert msg.tensor is not None
                self.pending[key] = msg.tensor.shape[0]
            return problem
        if msg.sender != self.next_hop[msg.owner]:
            return f"gradients of data owner {msg.owner} come from {self.next_hop[msg.owner]}"
        if key not in self.pending:
            return f"no batch {msg.batch} of data owner {msg.owner} awaits a gradient"
        problem = self._tensor(msg, self.out_shape)
        if problem is None and msg.tensor is not None and msg.tensor.shape[0] != self.pending[key]:
            problem = (
                f"gradient for {msg.tensor.shape[0]} samples, the batch had {self.pending[key]}"
            )
        if problem is None:
            del self.pending[key]
        return problem


class OwnerGate(Gate):
    """Data owner k: the answers to its own activations and gradients, nothing else."""

    def __init__(self, index: int, entry: str, exit: str, first_out: Shape, last_in: Shape):
        super().__init__()
        self.index, self.entry, self.exit = index, entry, exit
        self.first_out, self.last_in = first_out, last_in
        self.expected: dict[tuple[Kind, int], int] = {}  # (kind, batch) -> batch size

    def sent(self, dest: str, msg: Packet) -> None:
        """An activation sent to the entry node is answered by the exit node, and so on."""
        if (
            isinstance(msg, Message)
            and msg.kind in (Kind.ACTIVATION, Kind.GRADIENT)
            and msg.tensor is not None
        ):
            self.expected[(msg.kind, msg.batch)] = msg.tensor.shape[0]

    def start_round(self) -> None:
        """Answers a round left pending (it was dropped from it) will not come any more."""
        self.expected.clear()

    def traffic(self, msg: Message) -> str | None:
        """The exit node's activation and the entry node's gradient for a batch in flight."""
        if msg.kind not in (Kind.ACTIVATION, Kind.GRADIENT):
            return f"a data owner does not take {msg.kind.value} messages"
        if msg.owner != self.index:
            return f"addressed to data owner {msg.owner}; this is data owner {self.index}"
        source, shape = (
            (self.exit, self.last_in)
            if msg.kind is Kind.ACTIVATION
            else (self.entry, self.first_out)
        )
        if msg.sender != source:
            return f"{msg.kind.value} messages come from {source}"
        if msg.round != self.round or (msg.kind, msg.batch) not in self.expected:
            return f"no {msg.kind.value} expected for round {msg.round} batch {msg.batch}"
        problem = self._tensor(msg, shape)
        size = self.expected[(msg.kind, msg.batch)]
        if problem is None and msg.tensor is not None and msg.tensor.shape[0] != size:
            problem = f"{msg.tensor.shape[0]} samples, the batch had {size}"
        if problem is None:
            del self.expected[(msg.kind, msg.batch)]
        return problem


class AggregatorGate(Gate):
    """The aggregator: each data owner's own first and last parts, with the right tensors."""

    def __init__(self, owners: int, state: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        self.owners = owners
        self.shapes = {k: (tuple(v.shape), v.dtype) for k, v in state.items()}

    def traffic(self, msg: Message) -> str | None:
        """WEIGHTS from data owner k, about data owner k, with exactly the expected tensors."""
        if msg.kind is not Kind.WEIGHTS:
            return f"the aggregator does not take {msg.kind.value} messages"
        if not 0 <= msg.owner < self.owners or msg.sender != owner_endpoint(msg.owner):
            return f"weights of data owner {msg.owner} must come from that data owner"
        got = {k: (tuple(v.shape), v.dtype) for k, v in msg.tensors.items()}
        if got != self.shapes:
            missing = sorted(set(self.shapes) - set(got))[:3]
            extra = sorted(set(got) - set(self.shapes))[:3]
            wrong = sorted(k for k in set(got) & set(self.shapes) if got[k] != self.shapes[k])[:3]
            return (
                f"weights do not match the parts (missing {missing}, extra {extra}, wrong {wrong})"
            )
        return None


class CoordinatorGate(Gate):
    """The coordinator hears from the members of the deployment only."""

    def __init__(self, layout: Layout) -> None:
        super().__init__()
        self.nodes = set(layout.nodes)
        self.owners = {owner_endpoint(k): k for k in range(layout.owners)}
        self.members = set(layout.members)

    def check(self, msg: Packet, peer: str | None) -> str | None:
        """Registration, readiness, round results, weights, errors and metrics from members."""
        if msg.sender not in self.members:
            return f"'{msg.sender}' is not a member of this deployment"
        if isinstance(msg, Control):
            if msg.kind in (
                ControlKind.REGISTER,
                ControlKind.READY,
                ControlKind.RECORDS,
                ControlKind.METRICS,
            ):
                return None
            return f"the coordinator does not take {msg.kind.value} messages"
        if msg.kind is Kind.ROUND_DONE and self.owners.get(msg.sender) != msg.owner:
            return "a data owner reports only its own round"
        if msg.kind is Kind.WEIGHTS and msg.sender not in self.nodes | {AGGREGATOR}:
            return "weights come from compute nodes and the aggregator"
        if msg.kind not in (Kind.ROUND_DONE, Kind.WEIGHTS, Kind.ERROR, Kind.LEFT):
            return f"the coordinator does not take {msg.kind.value} messages"
        return None


def gate_for(setup: RunSetup, name: str) -> Gate:
    """The gate of member ``name`` of ``setup``: what its place in the pipeline lets it receive."""
    layout = setup.layout
    shapes = part_shapes(setup.parts, setup.input_shape)
    kind = layout.role_of(name)
    if kind is RoleKind.COMPUTE_NODE:
        i = layout.nodes.index(name)
        served = layout.served[i]
        prev = {k: layout.prev_hop(i)(k) for k in served}
        nxt = {k: layout.next_hop(i)(k) for k in served}
        return NodeGate(prev, nxt, *shapes[layout.node_parts[i]])
    if kind is RoleKind.DATA_OWNER:
        k = owner_index(name)
        entry, exit_ = layout.route(k)
        return OwnerGate(k, entry, exit_, shapes[0][1], shapes[-1][0])
    if kind is RoleKind.AGGREGATOR:
        state = {f"first.{k}": v for k, v in setup.parts[0].state_dict().items()}
        state |= {f"last.{k}": v for k, v in setup.parts[-1].state_dict().items()}
        return AggregatorGate(layout.owners, state)
    return CoordinatorGate(layout)
