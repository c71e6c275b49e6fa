"""The coordinator: starts rounds, collects results, assembles and evaluates the global model.

It talks to the roles only through a transport, so the same code drives threads in one process
and processes on other hosts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from mpsl.data.base import Labeled
from mpsl.errors import RuntimeFailure, TransportTimeout
from mpsl.runtime.messages import Kind, Message, strip_prefix
from mpsl.runtime.transport import Transport
from mpsl.tasks import AGGREGATOR, COORDINATOR, owner_endpoint
from mpsl.training.fedavg import fedavg_trained
from mpsl.training.steps import evaluate, torch_threads

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (round, data owners finished)


@dataclass(frozen=True)
class RoundResult:
    """What one round produced."""

    round: int
    loss: float  # mean training loss over all samples of the round
    test_loss: float
    accuracy: float
    seconds: float
    samples: int


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
        # Over a network, an aggregator's WEIGHTS can overtake a data owner's ROUND_DONE: messages
        # that arrive before they are expected wait here.
        self._early: list[Message] = []

    def run_round(self, r: int, progress: Progress | None = None) -> RoundResult:
        """One round: every data owner trains, then FedAvg everywhere, then evaluation."""
        start = time.perf_counter()
        # The global parts go out without a copy: the coordinator changes them only when it
        # installs the round's results, after every role has loaded them (a role loads them
        # before anything else in the round, and the results come after its work).
        for node, part in zip(self.nodes, self.node_parts, strict=True):
            self.transport.send(
                node,
                Message(
                    Kind.ROUND_START, self.name, round=r, tensors=self.parts[part].state_dict()
                ),
            )
        owner_state = {f"first.{k}": v for k, v in self.parts[0].state_dict().items()}
        owner_state |= {f"last.{k}": v for k, v in self.parts[-1].state_dict().items()}
        for k in range(self.owners):
            self.transport.send(
                owner_endpoint(k),
                Message(Kind.ROUND_START, self.name, round=r, tensors=owner_state),
            )
        loss_sum, samples = 0.0, 0
        for done in range(1, self.owners + 1):
            msg = self._expect(Kind.ROUND_DONE, r)
            loss_sum += msg.value
            samples += msg.samples
            if progress:
                progress(r, done)
        for node in self.nodes:
            self.transport.send(node, Message(Kind.AGGREGATE, self.name, round=r))
        replies = [self._expect(Kind.WEIGHTS, r) for _ in range(len(self.nodes) + 1)]
        self._install(replies)
        seconds = time.perf_counter() - start
        test_loss, accuracy = float("nan"), float("nan")
        if self.test:
            with torch_threads(self.eval_threads):
                test_loss, accuracy = evaluate(self.model, self.test)
        return RoundResult(r, loss_sum / max(samples, 1), test_loss, accuracy, seconds, samples)

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

    def _expect(self, kind: Kind, r: int) -> Message:
        for i, early in enumerate(self._early):
            if early.kind is kind and early.round == r:
                return self._early.pop(i)
        while True:
            try:
                msg = self.transport.recv(self.name, timeout=self.timeout_s)
            except TransportTimeout as exc:
                raise RuntimeFailure(
                    f"round {r}: no {kind.value} message ({exc}); every other role waits too: "
                    f"a role hangs, or a prescribed task order cannot be followed"
                ) from None
            if msg.kind is Kind.ERROR:
                raise RuntimeFailure(msg.text)
            if msg.kind is kind and msg.round == r:
                return msg
            if msg.kind in (Kind.ROUND_DONE, Kind.WEIGHTS) and msg.round == r:
                self._early.append(msg)
                continue
            raise RuntimeFailure(
                f"round {r}: expected {kind.value}, got {msg.kind.value} "
                f"(round {msg.round}) from {msg.sender}"
            )
