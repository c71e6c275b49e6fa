"""The compute node: one middle part, one instance of it per data owner, one task queue.

Forward and backward tasks of all data owners arrive in one inbox; the queue policy picks the next
task; outputs are handed to the transport (which never blocks), so sending overlaps computing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

import torch
from torch import nn

from mpsl.errors import ConfigError, TransportTimeout
from mpsl.runtime.accelerator import CPU, to_device, to_host
from mpsl.runtime.device import REAL, Device
from mpsl.runtime.events import EventLog
from mpsl.runtime.instances import Instance, InstanceStore
from mpsl.runtime.messages import Kind, Message
from mpsl.runtime.transport import Transport
from mpsl.runtime.worker import Worker
from mpsl.tasks import Action, Order, QueuePolicy, TaskKind, TaskRecord
from mpsl.training.fedavg import fedavg_trained
from mpsl.training.steps import OptimizerFactory

TASK_KIND = {Kind.ACTIVATION: TaskKind.FWD, Kind.GRADIENT: TaskKind.BWD}


Admit = Callable[[Message], bool]


def _always(msg: Message) -> bool:
    return True


class TaskQueue:
    """Pending tasks of a compute node, ordered by its ``QueuePolicy``.

    ``fifo`` and ``backward-first``: the lowest ``QueuePolicy.rank`` first, in arrival order within
    a rank (the simulator applies the same rule). ``scheduled``: exactly the actions of an
    ``Order``, batch after batch; a task that arrives early waits for its turn. Control messages
    queue in arrival order with the forward tasks.

    ``prefer`` (a compute node under a memory budget sets it: "is this task's instance resident?")
    reorders within a rank: a preferred task goes before earlier ones that are not, never past a
    control message. A node that swaps instances then serves the data owners it holds while they
    have work, instead of swapping at nearly every task.
    """

    def __init__(self, policy: QueuePolicy, order: Order | None = None) -> None:
        if policy is QueuePolicy.SCHEDULED and order is None:
            raise ConfigError("the scheduled queue policy needs a task order", field="schedule")
        self.policy = policy
        self.order = order
        self._lanes: tuple[deque[Message], deque[Message]] = (deque(), deque())  # by rank
        self._waiting: dict[Action, Message] = {}
        self._cursor = 0
        self._dropped: set[int] = set()  # data owners out of the round: their turns are skipped
        self._round = -1  # the running round
        self.prefer: Admit | None = None

    def __len__(self) -> int:
        return sum(map(len, self._lanes)) + len(self._waiting)

    def push(self, msg: Message) -> None:
        """Add a task (or a control message); a task of a round already over is dropped."""
        kind = TASK_KIND.get(msg.kind)
        if kind is not None and msg.round < self._round:
            return  # a dropped data owner's, still on its way when its round ended
        if kind is not None and self.policy is QueuePolicy.SCHEDULED:
            self._waiting[Action(msg.owner, kind, msg.batch)] = msg
        else:
            self._lanes[self.policy.rank(kind or TaskKind.FWD)].append(msg)

    def _expected(self) -> Action | None:
        """The prescribed next action, past the turns of dropped data owners (None: no turns)."""
        assert self.order is not None
        if set(self.order.owners) <= self._dropped:
            return None
        while self.order.at(self._cursor).owner in self._dropped:
            self._cursor += 1
        return self.order.at(self._cursor)

    def _pick(self, admit: Admit) -> tuple[deque[Message], int] | None:
        """Where the next message of the lanes is: the first one ``admit`` lets in (a preferred
        one before it, if any), never past a control message (those keep their place)."""
        for lane in self._lanes:
            first: int | None = None
            for i, msg in enumerate(lane):
                if msg.kind not in TASK_KIND:
                    return (lane, i) if first is None else (lane, first)
                if admit(msg):
                    if self.prefer is None or self.prefer(msg):
                        return lane, i
                    if first is None:
                        first = i
                # A forward the memory budget holds back waits; later tasks may free memory.
            if first is not None:
                return lane, first
        return None

    def ready(self, admit: Admit = _always) -> bool:
        """True when pop() has something to return under the policy (and ``admit``)."""
        if self._pick(admit) is not None:
            return True
        return bool(self._waiting) and self._expected() in self._waiting

    def peek(self) -> Message | None:
        """The task pop() would return next, admission aside: a hint for prefetching."""
        picked = self._pick(_always)
        if picked is not None:
            lane, i = picked
            return lane[i]
        if self.policy is QueuePolicy.SCHEDULED and self._waiting:
            return self._waiting.get(self._expected())  # type: ignore[arg-type]
        return None

    def pop(self, admit: Admit = _always) -> Message:
        """The next task under the policy; ``admit`` may hold forward tasks back (not a
        scheduled order's: the order decides, whatever the budget)."""
        picked = self._pick(admit)
        if picked is not None:
            lane, i = picked
            msg = lane[i]
            del lane[i]
            return msg
        expected = self._expected()
        assert expected is not None
        msg = self._waiting.pop(expected)
        self._cursor += 1
        return msg

    def drop(self, owner: int) -> None:
        """Data owner ``owner`` is out of the round: forget its tasks, skip its turns."""
        self._dropped.add(owner)
        self._waiting = {a: m for a, m in self._waiting.items() if a.owner != owner}
        for lane in self._lanes:
            kept = [m for m in lane if m.kind not in TASK_KIND or m.owner != owner]
            lane.clear()
            lane.extend(kept)

    def restart(self, round_: int) -> None:
        """Round ``round_`` starts: the prescribed order again from its first task, for everyone;
        what an earlier round left waiting goes."""
        self._round = round_
        self._cursor = 0
        self._dropped.clear()
        self._waiting = {a: m for a, m in self._waiting.items() if m.round >= round_}


class ComputeNode(Worker):
    """Serves forward and backward tasks of the data owners it serves, for one middle part."""

    def __init__(
        self,
        *,
        name: str,
        part: nn.Module,
        owners: Sequence[int],
        prev_hop: Callable[[int], str],
        next_hop: Callable[[int], str],
        transport: Transport,
        events: EventLog,
        make_optimizer: OptimizerFactory,
        policy: QueuePolicy = QueuePolicy.FIFO,
        order: Order | None = None,
        device: Device = REAL,
        emulated_output_bytes: int = 0,
        memory_budget: int | None = None,
        torch_device: torch.device = CPU,
    ) -> None:
        self.name = name
        self.owners = list(owners)  # the data owners this node serves
        self.emulated_output_bytes = emulated_output_bytes  # activation size when compute is off
        self.global_part = part
        self.prev_hop, self.next_hop = prev_hop, next_hop
        self.transport, self.events = transport, events
        self.make_optimizer = make_optimizer
        self.queue = TaskQueue(policy, order)
        self.device = device
        self.stash: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor | None, int]] = {}
        self.round = -1
        self.out: set[int] = set()  # data owners dropped from the running round
        self.live_activation_bytes = 0
        self.peak_activation_bytes = 0
        self.peak_state_bytes = 0
        self.max_queue = 0
        self.peak_held_bytes = 0  # under a budget: resident instances and saved activations at once
        self.torch_device = torch_device  # where the instances compute; messages stay on the host
        self.store = InstanceStore(
            part, self.owners, make_optimizer, memory_budget, device=torch_device
        )
        if memory_budget is not None:
            self.queue.prefer = self._resident
        self.instances = self.store.instances

    def serve(self) -> None:
        """Serve until STOP, then remove the swapped-out instances' files."""
        try:
            super().serve()
        finally:
            self.store.close()

    def _where(self, msg: Message) -> str:
        return (
            f"compute node {self.name}, round {msg.round}, data owner {msg.owner}, "
            f"batch {msg.batch}"
        )

    def _next(self) -> Message:
        while not self.queue.ready(self._admit):
            self.queue.push(self.transport.recv(self.name))
        while True:
            try:
                self.queue.push(self.transport.recv(self.name, timeout=0))
            except TransportTimeout:
                break
        self.max_queue = max(self.max_queue, len(self.queue))
        return self.queue.pop(self._admit)

    def _pinned(self) -> set[int]:
        """Data owners with a batch in flight here: their instances hold the saved graph."""
        return {owner for owner, _ in self.stash}

    def _admit(self, msg: Message) -> bool:
        """A forward is taken only while the memory budget has room for it (docs/memory.md)."""
        if msg.kind is not Kind.ACTIVATION or msg.owner not in self.instances:
            return True
        if msg.owner in self.out or msg.round != self.round:
            return True  # discarded without computing
        return self.store.can_admit(msg.owner, self.live_activation_bytes, self._pinned())

    def _resident(self, msg: Message) -> bool:
        """Whether ``msg``'s task finds its instance in a slot (no swap before it computes)."""
        inst = self.instances.get(msg.owner)
        return inst is None or inst.slot is not None

    def _prefetch(self, busy: int) -> None:
        """Bring the next task's instance in while this one computes."""
        nxt = self.queue.peek()
        if nxt is None or nxt.kind is not Kind.ACTIVATION or nxt.owner not in self.instances:
            return
        if nxt.owner not in self.out and nxt.round == self.round:
            self.store.prefetch(nxt.owner, self._pinned(), busy)

    def _handle(self, msg: Message) -> None:
        if msg.kind is Kind.ROUND_START:
            self._start_round(msg)
        elif msg.kind is Kind.ACTIVATION:
            self._forward(msg)
        elif msg.kind is Kind.GRADIENT:
            self._backward(msg)
        elif msg.kind is Kind.AGGREGATE:
            self._aggregate(msg)
        elif msg.kind is Kind.DROP:
            self._drop(msg)
        else:
            raise ValueError(f"unexpected {msg.kind.value} message from {msg.sender}")

    def _start_round(self, msg: Message) -> None:
        if msg.tensors:
            self.global_part.load_state_dict(msg.tensors)
        self.round = msg.round
        self.queue.restart(msg.round)
        self.out = set()
        for k in set(self.instances) - set(msg.owners):  # gone before the round: no turns
            self.out.add(k)
            self.queue.drop(k)
        self.stash.clear()  # what a dropped data owner left in flight last round
        self.live_activation_bytes = 0
        # The instances outlive the round: copying the global weights into the resident ones
        # spares allocating K parts every round (for ResNet-18's back half and 4 data owners:
        # 11 ms against 160-220 ms of deep copies, mostly page faults of the fresh memory).
        self.store.start_round()

    def _drop(self, msg: Message) -> None:
        """Data owner ``msg.owner`` left the round: its batches in flight and its training go."""
        if msg.owner not in self.instances:
            return  # not one this node serves
        self.out.add(msg.owner)
        self.queue.drop(msg.owner)
        for key in [key for key in self.stash if key[0] == msg.owner]:
            _, out, saved = self.stash.pop(key)
            self.live_activation_bytes -= saved if out is not None else 0  # as _backward counts
        self.instances[msg.owner].samples = 0

    def _forward(self, msg: Message) -> None:
        if msg.owner in self.out or msg.round != self.round:
            return  # a task of a data owner dropped from its round, still on its way
        inst = self._instance(msg)
        start = self.events.now()
        slot = self.store.acquire(msg.owner, self._pinned())
        module = slot.module
        self._prefetch(msg.owner)
        saved = [0]

        def work() -> tuple[torch.Tensor, torch.Tensor]:
            assert msg.tensor is not None
            x = to_device(msg.tensor, self.torch_device).detach()
            x.requires_grad_(x.is_floating_point())
            out, saved[0] = inst.meter.run(lambda: module(x), module, x)
            return x, out

        result = self.device.run(TaskKind.FWD, work, (msg.owner, msg.batch))
        self.store.used(slot)
        if result is None:  # emulation only: no tensors, just their sizes
            self.stash[(msg.owner, msg.batch)] = (torch.empty(0), None, msg.virtual_bytes)
            out_msg = Message(
                Kind.ACTIVATION,
                self.name,
                msg.owner,
                msg.batch,
                msg.round,
                virtual_bytes=self.emulated_output_bytes,
            )
        else:
            x, out = result
            self.stash[(msg.owner, msg.batch)] = (x, out, saved[0])
            self.live_activation_bytes += saved[0]
            self.peak_activation_bytes = max(self.peak_activation_bytes, self.live_activation_bytes)
            self.store.batch_bytes = max(self.store.batch_bytes, saved[0])
            boundary = x.nbytes + out.nbytes  # its backward's gradient in and gradient out
            self.store.boundary_bytes = max(self.store.boundary_bytes, boundary)
            held = self.store.held(self.live_activation_bytes)
            self.peak_held_bytes = max(self.peak_held_bytes, held)
            inst.samples += x.shape[0]
            out_msg = Message(
                Kind.ACTIVATION,
                self.name,
                msg.owner,
                msg.batch,
                msg.round,
                tensor=to_host(out.detach()),
            )
        self.transport.send(self.next_hop(msg.owner), out_msg)
        self._record(msg, TaskKind.FWD, start, out_msg.nbytes)

    def _backward(self, msg: Message) -> None:
        if msg.owner in self.out or msg.round != self.round:
            return
        self._instance(msg)
        key = (msg.owner, msg.batch)
        if key not in self.stash:
            raise ValueError(
                f"gradient for data owner {msg.owner} batch {msg.batch} "
                f"has no matching forward pass at {self.name}"
            )
        start = self.events.now()
        slot = self.store.acquire(msg.owner, self._pinned())  # resident: its batch is in flight
        x, out, saved = self.stash.pop(key)
        self._prefetch(msg.owner)

        def work() -> torch.Tensor | None:
            assert out is not None and msg.tensor is not None
            out.backward(to_device(msg.tensor, self.torch_device))
            if slot.optimizer is not None:
                slot.optimizer.step()
                slot.optimizer.zero_grad(set_to_none=True)
            return to_host(x.grad) if x.grad is not None else None

        grad = self.device.run(TaskKind.BWD, work if out is not None else _none, key)
        self.store.used(slot)
        self.live_activation_bytes -= saved if out is not None else 0
        out_msg = Message(
            Kind.GRADIENT,
            self.name,
            msg.owner,
            msg.batch,
            msg.round,
            tensor=grad,
            virtual_bytes=0 if grad is not None else saved,
        )
        self.transport.send(self.prev_hop(msg.owner), out_msg)
        self._record(msg, TaskKind.BWD, start, out_msg.nbytes)

    def _aggregate(self, msg: Message) -> None:
        start = self.events.now()
        # Resident instances hold weights and optimizer state all round (their slots are never
        # freed, so now is their most); gradients exist for one at a time.
        grads = self.store.grad_bytes if self.store.slots else 0
        self.peak_state_bytes = max(self.peak_state_bytes, self.store.state_bytes() + grads)
        state = self.global_part.state_dict()
        # The data owners that finished the round. Averaged from the instances, which the round's
        # start alone resets, so a second request (a finisher lost meanwhile) averages afresh. A
        # node left with none of them replies with samples 0, which FedAvg leaves out at the
        # coordinator: its global part may hold an earlier request's average by then.
        mine = [self.instances[k] for k in msg.owners if k in self.instances]
        if mine:
            states = self.store.states([i.owner for i in mine])  # swapped-out ones read lazily
            state = fedavg_trained(states, [i.samples for i in mine], out=state)
        # Sent without a copy: the node changes its global part again only at the next round's
        # start, and the coordinator installs every reply before it starts that round.
        reply = Message(
            Kind.WEIGHTS,
            self.name,
            batch=msg.batch,
            round=self.round,
            tensors=dict(state),
            samples=sum(i.samples for i in mine),
        )
        self.transport.send(msg.sender, reply)
        self._record(msg, TaskKind.AGGREGATE, start, reply.nbytes)

    def _instance(self, msg: Message) -> Instance:
        if msg.owner not in self.instances:
            raise ValueError(
                f"unknown data owner {msg.owner} at {self.name} "
                f"(known: 0..{len(self.instances) - 1})"
            )
        return self.instances[msg.owner]

    def _record(self, msg: Message, kind: TaskKind, start: float, nbytes: int) -> None:
        self.events.add(
            TaskRecord(
                self.name, msg.owner, msg.batch, self.round, kind, start, self.events.now(), nbytes
            )
        )

    @property
    def peak_memory_bytes(self) -> int:
        """Peak tensor bytes held: all instances' state plus the most activations saved at once
        (under a budget: the resident instances' and the activations saved at the same time)."""
        if self.store.budget is not None:
            return self.peak_held_bytes
        return self.peak_state_bytes + self.peak_activation_bytes


def _none() -> None:
    return None
