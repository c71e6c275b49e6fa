"""The in-process engine: every role a greenlet or a thread, all talking through one transport.

It assembles the run once (``setup.RunSetup``), builds every role from it, starts them and lets
the coordinator drive the rounds. Emulation (device times, link rates) plugs in through ``Device``
and ``links.EmulatedLinks`` in place of the transport; nothing else changes.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from mpsl.data import Dataset
from mpsl.errors import ConfigError
from mpsl.models import LayerChain
from mpsl.runtime.clock import Timeline
from mpsl.runtime.compute_node import ComputeNode
from mpsl.runtime.config import RunConfig
from mpsl.runtime.cooperative import CooperativeTransport, GreenletScheduler
from mpsl.runtime.coordinator import Progress, RoundResult
from mpsl.runtime.data_owner import DataOwner
from mpsl.runtime.device import REAL, Device
from mpsl.runtime.events import EventLog
from mpsl.runtime.links import EmulatedLinks, LinkModel
from mpsl.runtime.setup import Role, RunSetup, build_coordinator, build_role
from mpsl.runtime.transport import InProcessTransport, Observed, Observer
from mpsl.tasks import AGGREGATOR, COORDINATOR, Order, owner_endpoint
from mpsl.training.allocator import keep_freed_memory
from mpsl.training.steps import torch_threads

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """Everything a run produced, for reports."""

    config: RunConfig
    cuts: tuple[int, ...]
    rounds: list[RoundResult]
    events: EventLog
    bytes_per_link: dict[str, int]
    peak_memory_bytes: dict[str, int]
    model: LayerChain
    extra: dict[str, object] = field(default_factory=dict)


def share_cores(budget: int, roles: int) -> int:
    """Torch intra-op threads for each of ``roles`` computing role threads sharing ``budget``.

    A fixed share, so that the roles never oversubscribe the budget however their tasks overlap.
    Each role thread computing with more than one thread keeps its own OpenMP pool; pools that
    outnumber the cores stop spinning and must be woken for every parallel operation. On 2 cores,
    even with one data owner (one task at a time), 2 threads per role made a digits_cnn round
    slower than 1 (0.54 s against 0.29 s) and a ResNet-18 round no faster (0.72 s, 0.69 s).
    """
    return max(1, budget // max(1, roles))


def _with_threads(serve: Callable[[], None], threads: int) -> Callable[[], None]:
    def run() -> None:
        torch.set_num_threads(threads)
        serve()

    return run


R = TypeVar("R", ComputeNode, DataOwner)


def _of(kind: type[R], role: Role) -> R:
    assert isinstance(role, kind)
    return role


SCHEDULING = ("cooperative", "threads")


class InProcessEngine:
    """Runs MP-SL with every role in this process.

    ``scheduling``: ``cooperative`` (the default for real compute) runs every role as a greenlet
    of the calling thread, one task at a time with all of torch's threads (``cooperative.py``);
    ``threads`` (the default, and the only choice, when a device or link is emulated) runs every
    role as a thread with a share of the cores. Building one switches this process's allocator to
    keep freed memory (``keep_freed_memory``). ``observer`` sees every message the roles send,
    with its destination, before delivery (``transport.Observed``; the privacy audit records what
    compute nodes receive with it); it changes nothing in training.
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        dataset: Dataset | None = None,
        model: LayerChain | None = None,
        devices: Mapping[str, Device] | None = None,
        link_model: LinkModel | None = None,
        emulated_bytes: Mapping[str, int] | None = None,
        evaluate: bool = True,
        assignment: Sequence[int] | None = None,
        orders: Mapping[int, Order] | None = None,
        threads_per_role: int | None = None,
        scheduling: str | None = None,
        observer: Observer | None = None,
    ) -> None:
        keep_freed_memory()
        self.setup = RunSetup.build(config, dataset=dataset, model=model, assignment=assignment)
        self.config = config
        self.model, self.cuts, self.parts = self.setup.model, self.setup.cuts, self.setup.parts
        self.devices = devices or {}
        emulating = link_model is not None or any(d.emulated for d in self.devices.values())
        self.scheduling = scheduling or ("threads" if emulating else "cooperative")
        if self.scheduling not in SCHEDULING:
            raise ConfigError(
                f"scheduling must be one of {', '.join(SCHEDULING)}, got '{self.scheduling}'",
                field="scheduling",
            )
        if self.scheduling == "cooperative" and emulating:
            raise ConfigError(
                "emulated devices and links need a thread per role (their tasks sleep); "
                "use scheduling 'threads'",
                field="scheduling",
            )
        orders = dict(orders or {})  # helper index -> prescribed task order
        if orders and config.batches_per_epoch is None:
            raise ConfigError(
                "following a task order needs the same number of batches for every data owner; "
                "set batches_per_epoch",
                field="batches_per_epoch",
            )
        # Who runs when, and emulated time, are the engine's: the transport only delivers.
        self.scheduler = GreenletScheduler() if self.scheduling == "cooperative" else None
        self.clock = Timeline()
        self.transport: InProcessTransport | EmulatedLinks | CooperativeTransport | Observed
        if self.scheduler is not None:
            self.transport = CooperativeTransport(self.scheduler)
        elif link_model is not None:
            self.transport = EmulatedLinks(link_model, self.clock)
        else:
            self.transport = InProcessTransport()
        if observer is not None:
            self.transport = Observed(self.transport, observer)
        self.events = EventLog()
        # torch threads of each role (None: share_cores)
        self.threads_per_role = threads_per_role or config.threads
        layout = self.setup.layout
        shares = self.setup.owner_shares()

        def role(name: str, **kw: Any) -> Role:
            device = self.devices.get(name, REAL)
            if device.emulated:
                device = dataclasses.replace(device, clock=self.clock)
            return build_role(
                self.setup, name, self.transport, self.events, device=device,
                emulated_bytes=emulated_bytes, **kw,
            )  # fmt: skip

        self.nodes = [
            _of(ComputeNode, role(name, order=orders.get(i))) for i, name in enumerate(layout.nodes)
        ]
        self.owners = [
            _of(DataOwner, role(owner_endpoint(k), share=shares[k]))
            for k in range(config.data_owners)
        ]
        self.aggregator = role(AGGREGATOR)
        self.coordinator = build_coordinator(self.setup, self.transport, evaluate=evaluate)

    def run(
        self,
        progress: Progress | None = None,
        on_round: Callable[[RoundResult], None] | None = None,
        start_round: int = 0,
    ) -> RunResult:
        """Train rounds ``start_round``.. of the configured rounds; the roles end with the run.

        Resuming: load the global weights of the last completed round into ``self.model`` first;
        every role starts each round from the global weights, and the data order of a round
        derives from the seed and the round alone.
        """
        if not 0 <= start_round <= self.config.rounds:
            raise ConfigError(
                f"start round {start_round} is outside 0..{self.config.rounds}", field="rounds"
            )
        self._start = start_round
        roles: list[Role] = [*self.nodes, *self.owners, self.aggregator]
        budget = torch.get_num_threads()
        if self.scheduler is not None:
            results = self._run_cooperative(self.scheduler, roles, progress, on_round)
        else:
            results = self._run_threads(roles, budget, progress, on_round)
        links = {
            f"{a}->{b}": v
            for (a, b), v in sorted(self.transport.bytes_sent.items())
            if COORDINATOR not in (a, b)
        }
        memory = {n.name: n.peak_memory_bytes for n in self.nodes}
        memory |= {o.name: o.peak_memory_bytes for o in self.owners}
        return RunResult(self.config, self.cuts, results, self.events, links, memory, self.model)

    def _rounds(
        self,
        threads: int,
        progress: Progress | None,
        on_round: Callable[[RoundResult], None] | None,
    ) -> list[RoundResult]:
        results: list[RoundResult] = []
        for r in range(self._start, self.config.rounds):
            with torch_threads(threads):
                result = self.coordinator.run_round(r, progress)
            results.append(result)
            if on_round:
                on_round(result)
        return results

    def _run_cooperative(
        self,
        scheduler: GreenletScheduler,
        roles: Sequence[Role],
        progress: Progress | None,
        on_round: Callable[[RoundResult], None] | None,
    ) -> list[RoundResult]:
        """Every role a greenlet of this thread; every task gets all of torch's threads."""
        for role in roles:
            scheduler.spawn(role.serve)
        try:
            return self._rounds(self.config.threads or torch.get_num_threads(), progress, on_round)
        finally:
            self.coordinator.stop([r.name for r in roles])
            if hung := scheduler.finish():
                log.warning("roles still waiting after the stop: %s", ", ".join(hung))

    def _run_threads(
        self,
        roles: Sequence[Role],
        budget: int,
        progress: Progress | None,
        on_round: Callable[[RoundResult], None] | None,
    ) -> list[RoundResult]:
        """Every role a thread, each computing with its share of the cores."""
        per_role = self.threads_per_role or share_cores(budget, len(self.nodes) + len(self.owners))
        threads = [
            threading.Thread(target=_with_threads(r.serve, per_role), name=r.name, daemon=True)
            for r in roles
        ]
        for t in threads:
            t.start()
        self.coordinator.eval_threads = budget  # evaluation runs while every role waits
        try:
            # the coordinator's share of the cores
            return self._rounds(per_role, progress, on_round)
        finally:
            self.coordinator.stop([r.name for r in roles])
            for t in threads:
                t.join(timeout=10)
            self.transport.close()
            # torch.set_num_threads also sets the default of threads started later (the roles')
            torch.set_num_threads(budget)
