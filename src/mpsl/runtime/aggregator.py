"""The aggregator: averages the data owners' first and last parts (FedAvg) at the end of a round."""

from __future__ import annotations

from mpsl.runtime.events import EventLog
from mpsl.runtime.messages import Kind, Message
from mpsl.runtime.transport import Transport
from mpsl.runtime.worker import Worker
from mpsl.tasks import AGGREGATOR, TaskKind, TaskRecord
from mpsl.training.fedavg import fedavg_trained


class Aggregator(Worker):
    """Collects the data owners' WEIGHTS; on the coordinator's AGGREGATE, averages those of the
    data owners it names (the round's finishers) by samples and sends the result on."""

    def __init__(
        self, *, owners: int, transport: Transport, events: EventLog, name: str = AGGREGATOR
    ) -> None:
        self.owners = owners
        self.transport, self.events = transport, events
        self.name = name
        self._weights: dict[int, Message] = {}  # the latest round's WEIGHTS, by data owner
        self._request: Message | None = None  # an AGGREGATE waiting for its data owners' weights

    def _handle(self, msg: Message) -> None:
        if msg.kind is Kind.WEIGHTS and 0 <= msg.owner < self.owners:
            self._forget_before(msg.round)
            self._weights[msg.owner] = msg
        elif msg.kind is Kind.AGGREGATE:
            self._forget_before(msg.round)
            self._request = msg
        else:
            raise ValueError(
                f"unexpected {msg.kind.value} from {msg.sender} (data owner {msg.owner})"
            )
        request = self._request
        if request is None:
            return
        # The weights of a finisher can arrive after the request (another connection).
        ready = [self._weights.get(k) for k in request.owners]
        if all(m is not None and m.round == request.round for m in ready):
            self._request = None
            # by data owner, not arrival: the float sum is then the same every run
            self._average(request, [m for m in ready if m is not None])

    def _forget_before(self, r: int) -> None:
        """Drop what earlier rounds left (the weights of a data owner dropped then)."""
        self._weights = {k: m for k, m in self._weights.items() if m.round >= r}

    def _where(self, msg: Message) -> str:
        return "aggregator"

    def _average(self, request: Message, messages: list[Message]) -> None:
        start = self.events.now()
        avg = fedavg_trained([m.tensors for m in messages], [m.samples for m in messages])
        r = request.round
        reply = Message(
            Kind.WEIGHTS,
            self.name,
            batch=request.batch,
            round=r,
            tensors=avg,
            samples=sum(m.samples for m in messages),
        )
        self.transport.send(self.coordinator, reply)
        self.events.add(
            TaskRecord(
                self.name, -1, -1, r, TaskKind.AGGREGATE, start, self.events.now(), reply.nbytes
            )
        )
