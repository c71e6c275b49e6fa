"""The aggregator: averages the data owners' first and last parts (FedAvg) at the end of a round."""

from __future__ import annotations

import logging

from mpsl.runtime.events import EventLog
from mpsl.runtime.messages import Kind, Message
from mpsl.runtime.transport import Transport
from mpsl.tasks import TaskKind, TaskRecord
from mpsl.training.steps import fedavg

log = logging.getLogger(__name__)


class Aggregator:
    """Collects WEIGHTS from every data owner, averages them by samples, sends the result on."""

    def __init__(
        self,
        owners: int,
        transport: Transport,
        events: EventLog,
        name: str = "aggregator",
        coordinator: str = "coordinator",
    ) -> None:
        self.owners = owners
        self.transport, self.events = transport, events
        self.name, self.coordinator = name, coordinator

    def serve(self) -> None:
        """Average one round's weights at a time until STOP."""
        pending: dict[int, Message] = {}
        while True:
            msg = self.transport.recv(self.name)
            if msg.kind is Kind.STOP:
                return
            try:
                if msg.kind is not Kind.WEIGHTS or not 0 <= msg.owner < self.owners:
                    raise ValueError(
                        f"unexpected {msg.kind.value} from {msg.sender} (data owner {msg.owner})"
                    )
                pending[msg.owner] = msg
                if len(pending) == self.owners:
                    # by data owner, not arrival: the float sum is then the same every run
                    self._average([pending[k] for k in sorted(pending)])
                    pending.clear()
            except Exception as exc:
                log.exception("aggregator failed")
                text = f"aggregator: {type(exc).__name__}: {exc}"
                self.transport.send(self.coordinator, Message(Kind.ERROR, self.name, text=text))

    def _average(self, messages: list[Message]) -> None:
        start = self.events.now()
        trained = [m for m in messages if m.samples > 0] or messages
        weights = [max(m.samples, 1) for m in trained]
        avg = fedavg([m.tensors for m in trained], weights)
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
