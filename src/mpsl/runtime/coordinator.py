"""The coordinator: starts rounds, collects results, assembles and evaluates the global model.

It talks to the roles only through a transport, so the same code drives threads in one process
and processes on other hosts.

Data owners may leave (a LEFT message: stopped, or found lost by whoever watches them). One that
leaves during a round is dropped from it: the compute nodes discard its tasks (DROP), and FedAvg
runs over the data owners that finished (AGGREGATE names them), so its partial work never reaches
the global model. Until it rejoins (``rejoin``) it sits out the rounds that follow. A round with
fewer than ``min_owners`` data owners left fails. A compute node or the aggregator that leaves
ends the run: its instances hold every data owner's part of the round.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from torch import nn

from mpsl.data.base import Labeled
from mpsl.errors import RuntimeFailure, TransportTimeout
from mpsl.runtime.messages import Kind, Message, strip_prefix
from mpsl.runtime.transport import Transport
from mpsl.tasks import AGGREGATOR, COORDINATOR, owner_endpoint, owner_index
from mpsl.training.fedavg import fedavg_trained
from mpsl.training.steps import evaluate, torch_threads

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (round, data owners finished)


@dataclass
class _RoundState:
    """Who is where in one round: still training, finished, dropped."""

    round: int
    roster: int  # data owners that started it
    waiting: set[int] = field(default_factory=set)
    finished: dict[int, Message] = field(default_factory=dict)
    dropped: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class RoundResult:
    """What one round produced."""

    round: int
    loss: float  # mean training loss over all samples of the round
    test_loss: float
    accuracy: float
    seconds: float
    samples: int
    dropped: tuple[str, ...] = ()  # data owners that left during the round: their work discarded
    absent: tuple[str, ...] = ()  # data owners gone before the round began (sat it out)


class Coordinator:
    """Drives rounds over a transport: start, wait for data owners, aggregate, evaluate."""

    def __init__(
        self,
        *,
        transport: Transport,
        parts: Sequence[nn.Module],
        model: nn.Module,
        owners: int,
        test: Labeled | None,
        nodes: Sequence[str],
        node_parts: Sequence[int],
        name: str = COORDINATOR,
        aggregator: str = AGGREGATOR,
        timeout_s: float = 600.0,
        eval_threads: int | None = None,
        min_owners: int = 1,
    ) -> None:
        self.transport = transport
        # The name of each compute node and the part it hosts: a chain hosts part i + 1 on its
        # i-th node; in horizontally scaled one hop, several nodes host the same middle part.
        self.nodes = list(nodes)
        self.node_parts = list(node_parts)
        self.parts = parts  # share modules with ``model``: loading a part updates the model
        self.model = model
        self.owners = owners
        self.test = test
        self.name, self.aggregator = name, aggregator
        self.timeout_s = timeout_s
        # torch threads for evaluation, when the caller's thread runs with fewer during rounds
        # (the in-process engine shares the cores among its role threads)
        self.eval_threads = eval_threads
        self.min_owners = min_owners
        self.lost: dict[int, str] = {}  # data owners that left, and how, until they rejoin

    def run_round(self, r: int, progress: Progress | None = None) -> RoundResult:
        """One round: every data owner present trains, then FedAvg everywhere, then evaluation."""
        start = time.perf_counter()
        roster = [k for k in range(self.owners) if k not in self.lost]
        self._enough(r, len(roster))
        # The global parts go out without a copy: the coordinator changes them only when it
        # installs the round's results, after every role has loaded them (a role loads them
        # before anything else in the round, and the results come after its work).
        for node, part in zip(self.nodes, self.node_parts, strict=True):
            self.transport.send(
                node,
                Message(
                    Kind.ROUND_START,
                    self.name,
                    round=r,
                    tensors=self.parts[part].state_dict(),
                    owners=tuple(roster),
                ),
            )
        owner_state = {f"first.{k}": v for k, v in self.parts[0].state_dict().items()}
        owner_state |= {f"last.{k}": v for k, v in self.parts[-1].state_dict().items()}
        for k in roster:
            self.transport.send(
                owner_endpoint(k),
                Message(Kind.ROUND_START, self.name, round=r, tensors=owner_state),
            )
        state = _RoundState(r, len(roster))
        state.waiting = set(roster)
        absent = self.owners - len(roster)
        while state.waiting:
            msg = self._receive(r, "round_done")
            if msg.kind is Kind.LEFT:
                if not self._drop(msg, state):
                    continue
            elif msg.kind is Kind.ROUND_DONE and msg.round == r and msg.owner in state.waiting:
                state.waiting.discard(msg.owner)
                state.finished[msg.owner] = msg
            else:
                log.warning("round %d: ignored %s from %s", r + 1, msg.kind.value, msg.sender)
                continue
            if progress:
                progress(r, absent + len(state.finished) + len(state.dropped))
        finished, dropped = state.finished, state.dropped
        self._install(self._aggregate(state))
        seconds = time.perf_counter() - start
        test_loss, accuracy = float("nan"), float("nan")
        if self.test:
            with torch_threads(self.eval_threads):
                test_loss, accuracy = evaluate(self.model, self.test)
        samples = sum(m.samples for m in finished.values())
        loss = sum(m.value for m in finished.values()) / max(samples, 1)
        return RoundResult(
            r,
            loss,
            test_loss,
            accuracy,
            seconds,
            samples,
            dropped=tuple(owner_endpoint(k) for k in sorted(dropped)),
            absent=tuple(owner_endpoint(k) for k in range(self.owners) if k not in roster),
        )

    def rejoin(self, k: int) -> None:
        """Data owner ``k`` is back: it takes part again from the next round."""
        if self.lost.pop(k, None) is not None:
            log.info("%s rejoins at the next round", owner_endpoint(k))

    def _aggregate(self, state: _RoundState) -> list[Message]:
        """FedAvg over the data owners that finished: every node's part and the aggregator's.

        A finisher that leaves before the replies are in may never have delivered its weights
        to the aggregator: it is dropped, and the averaging asked again without it.
        """
        r, attempt = state.round, 0
        while True:
            finishers = tuple(sorted(state.finished))
            ask = Message(Kind.AGGREGATE, self.name, batch=attempt, round=r, owners=finishers)
            for member in [*self.nodes, self.aggregator]:
                self.transport.send(member, ask)
            replies: dict[str, Message] = {}
            while len(replies) < len(self.nodes) + 1:
                msg = self._receive(r, "weights")
                if msg.kind is Kind.LEFT:
                    if self._drop(msg, state):
                        break
                elif msg.kind is Kind.WEIGHTS and msg.round == r and msg.batch == attempt:
                    replies[msg.sender] = msg
                else:  # the answer to an earlier request, or a late word from a dropped owner
                    log.debug("round %d: ignored %s from %s", r + 1, msg.kind.value, msg.sender)
            else:
                return list(replies.values())
            attempt += 1

    def _drop(self, msg: Message, state: _RoundState) -> bool:
        """A LEFT during round ``state.round``: whether it drops a data owner of the round.

        One still training leaves its tasks behind (DROP tells the compute nodes to discard them);
        one that finished may not have delivered its weights to the aggregator: either way its
        work leaves the round.
        """
        k = self._left(msg)
        if k in state.waiting:
            state.waiting.discard(k)
            for node in self.nodes:
                self.transport.send(node, Message(Kind.DROP, self.name, k, round=state.round))
        elif k in state.finished:
            del state.finished[k]
        else:
            return False
        state.dropped.append(k)
        self._enough(state.round, state.roster - len(state.dropped))
        return True

    def _left(self, msg: Message) -> int:
        """The data owner that left (noted as lost); a compute node or the aggregator fails."""
        if msg.sender not in self.owner_names:
            raise RuntimeFailure(msg.text or f"{msg.sender} left the run")
        k = owner_index(msg.sender)
        if k not in self.lost:
            log.warning("%s; it is dropped until it rejoins", msg.text or f"{msg.sender} left")
            self.lost[k] = msg.text
        return k

    def _enough(self, r: int, remaining: int) -> None:
        """Fail round ``r`` when fewer than ``min_owners`` data owners are left in it."""
        if remaining >= self.min_owners:
            return
        gone = "; ".join(f"{owner_endpoint(k)}: {why}" for k, why in sorted(self.lost.items()))
        raise RuntimeFailure(
            f"round {r + 1}: only {remaining} of {self.owners} data owners are left, fewer than "
            f"min_data_owners ({self.min_owners}); lost: {gone or 'none'}"
        )

    @property
    def owner_names(self) -> set[str]:
        """The data owners' endpoint names."""
        return {owner_endpoint(k) for k in range(self.owners)}

    def stop(self, endpoints: list[str]) -> None:
        """Tell every role to finish."""
        for e in endpoints:
            self.transport.send(e, Message(Kind.STOP, self.name))

    def _install(self, replies: list[Message]) -> None:
        """Load the new global parts; nodes sharing a part are averaged by samples (FedAvg)."""
        by_part: dict[int, list[Message]] = {}
        endpoints = dict(zip(self.nodes, self.node_parts, strict=True))
        for msg in replies:
            if msg.sender == self.aggregator:
                self.parts[0].load_state_dict(strip_prefix(msg.tensors, "first."))
                self.parts[-1].load_state_dict(strip_prefix(msg.tensors, "last."))
            elif msg.sender in endpoints:
                by_part.setdefault(endpoints[msg.sender], []).append(msg)
            else:
                raise RuntimeFailure(f"weights from unknown sender {msg.sender}")
        order = {name: i for i, name in enumerate(endpoints)}
        for part, msgs in by_part.items():
            msgs.sort(key=lambda m: order[m.sender])  # a fixed float sum order, not arrival
            state = fedavg_trained([m.tensors for m in msgs], [m.samples for m in msgs])
            self.parts[part].load_state_dict(state)

    def _receive(self, r: int, what: str) -> Message:
        """The next message of round ``r``; an ERROR, or silence past ``timeout_s``, fails it."""
        try:
            msg = self.transport.recv(self.name, timeout=self.timeout_s)
        except TransportTimeout as exc:
            raise RuntimeFailure(
                f"round {r + 1}: no {what} message ({exc}); every other role waits too: "
                f"a role hangs, or a prescribed task order cannot be followed"
            ) from None
        if msg.kind is Kind.ERROR:
            raise RuntimeFailure(msg.text)
        return msg
