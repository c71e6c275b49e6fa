"""The aggregator: averages the data owners' first and last parts (FedAvg) at the end of a round."""

from __future__ import annotations

from mpsl.runtime.events import EventLog
from mpsl.runtime.messages import Kind, Message
from mpsl.runtime.transport import Transport
from mpsl.runtime.worker import Worker
from mpsl.tasks import AGGREGATOR, TaskKind, TaskRecord
from mpsl.training.fedavg import fedavg_trained


class Aggregator(Worker):
    """Collects WEIGHTS from every data owner, averages them by samples, sends the result on."""

    def __init__(
        self, *, owners: int, transport: Transport, events: EventLog, name: str = AGGREGATOR
    ) -> None:
        self.owners = owners
        self.transport, self.events = transport, events
        self.name = name
        self._pending: dict[int, Message] = {}

    def _handle(self, msg: Message) -> None:
        if msg.kind is not Kind.WEIGHTS or not 0 <= msg.owner < self.owners:
            raise ValueError(
                f"unexpected {msg.kind.value} from {msg.sender} (data owner {msg.owner})"
            )
        self._pending[msg.owner] = msg
        if len(self._pending) == self.owners:
            # by data owner, not arrival: the float sum is then the same every run
            self._average([self._pending[k] for k in sorted(self._pending)])
            self._pending.clear()

    def _where(self, msg: Message) -> str:
        return "aggregator"

    def _average(self, messages: list[Message]) -> None:
        start = self.events.now()
        avg = fedavg_trained([m.tensors for m in messages], [m.samples for m in messages])
        r = messages[0].round
        reply = Message(
            Kind.WEIGHTS, self.name, round=r, tensors=avg, samples=sum(m.samples for m in messages)
        )
        self.transport.send(self.coordinator, reply)
        self.events.add(
            TaskRecord(
                self.name, -1, -1, r, TaskKind.AGGREGATE, start, self.events.now(), reply.nbytes
            )
        )
