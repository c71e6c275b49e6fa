"""The in-process engine: every role a greenlet or a thread, all talking through one transport.

It builds the model, splits it, partitions the data, starts the roles and lets the coordinator
drive the rounds. Emulation (device times, link rates) plugs in through ``Device`` and the
transport's link model; nothing else changes.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from mpsl.data import Dataset, load_dataset, partition
from mpsl.data.base import Labeled
from mpsl.errors import ConfigError
from mpsl.models import LayerChain, build_model
from mpsl.runtime.aggregator import Aggregator
from mpsl.runtime.compute_node import ComputeNode
from mpsl.runtime.config import RunConfig
from mpsl.runtime.cooperative import CooperativeTransport
from mpsl.runtime.coordinator import Coordinator, Progress, RoundResult
from mpsl.runtime.data_owner import DataOwner
from mpsl.runtime.device import REAL, Device
from mpsl.runtime.events import EventLog
from mpsl.runtime.transport import InProcessTransport, LinkModel
from mpsl.split import even_cuts, split_model
from mpsl.tasks import Order, QueuePolicy, node_endpoint, owner_endpoint
from mpsl.training.allocator import keep_freed_memory
from mpsl.training.steps import Workload, make_optimizer, torch_threads

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layout:
    """Routing: the part each node hosts, whom it serves, and each data owner's entry/exit node."""

    node_parts: list[int]
    served: list[list[int] | None]  # None: every data owner
    entry: list[int]  # node receiving data owner k's first activation
    exit: list[int]  # node sending data owner k the last activation
    chain_length: int  # nodes in a data owner's path

    @classmethod
    def chain(cls, nodes: int, owners: int) -> Layout:
        """Multihop: node i hosts part i + 1; every data owner passes through every node."""
        return cls(
            list(range(1, nodes + 1)), [None] * nodes, [0] * owners, [nodes - 1] * owners, nodes
        )

    @classmethod
    def horizontal(cls, assignment: list[int]) -> Layout:
        """One hop, several helpers: helper h hosts the middle part for its data owners."""
        helpers = max(assignment) + 1
        served = [[k for k, h in enumerate(assignment) if h == helper] for helper in range(helpers)]
        return cls([1] * helpers, list(served), assignment, assignment, 1)

    def prev_hop(self, i: int) -> Callable[[int], str]:
        """Where node i sends gradients."""
        return owner_endpoint if i % self.chain_length == 0 else (lambda _k: node_endpoint(i - 1))

    def next_hop(self, i: int) -> Callable[[int], str]:
        """Where node i sends activations."""
        last = i % self.chain_length == self.chain_length - 1
        return owner_endpoint if last else (lambda _k: node_endpoint(i + 1))


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


def resolve_cuts(config: RunConfig, num_layers: int) -> tuple[int, ...]:
    """The config's cuts, or an even split over its number of compute nodes (default 2)."""
    if config.cuts is not None:
        return tuple(config.cuts)
    return even_cuts(num_layers, config.compute_nodes or 2)


def optimizer_factory(config: RunConfig) -> Callable[[nn.Module], torch.optim.Optimizer | None]:
    """A function that makes the configured optimizer for one part instance."""

    def make(module: nn.Module) -> torch.optim.Optimizer | None:
        return make_optimizer(
            module.parameters(), config.optimizer, config.lr, config.momentum, config.weight_decay
        )

    return make


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


def owner_shares(config: RunConfig, dataset: Dataset) -> list[Labeled]:
    """Each data owner's training samples under the config's partitioning and seed."""
    idx = partition(
        dataset.train.y.numpy(), config.data_owners, config.partition, config.alpha, config.seed
    )
    return [dataset.train.subset(torch.from_numpy(i)) for i in idx]


def owner_workload(config: RunConfig) -> Workload:
    """What every data owner trains each round."""
    return Workload(config.batch_size, config.local_epochs, config.batches_per_epoch, config.seed)


def load_run_data(config: RunConfig) -> Dataset:
    """The dataset a config names."""
    shape = tuple(config.input_shape) if config.input_shape else None
    return load_dataset(config.dataset, config.data_path, shape, config.num_classes, config.seed)


SCHEDULING = ("cooperative", "threads")


class InProcessEngine:
    """Runs MP-SL with every role in this process.

    ``scheduling``: ``cooperative`` (the default for real compute) runs every role as a greenlet
    of the calling thread, one task at a time with all of torch's threads (``cooperative.py``);
    ``threads`` (the default, and the only choice, when a device or link is emulated) runs every
    role as a thread with a share of the cores. Building one switches this process's allocator to
    keep freed memory (``keep_freed_memory``).
    """

    def __init__(
        self,
        config: RunConfig,
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
    ) -> None:
        keep_freed_memory()
        self.config = config
        self.dataset = dataset or load_run_data(config)
        self.model = model or build_model(
            config.model,
            config.num_classes or self.dataset.num_classes,
            self.dataset.input_shape,
            seed=config.seed,
        )
        self.cuts = resolve_cuts(config, self.model.num_layers)
        self.parts = split_model(self.model, self.cuts)
        self.devices = devices or {}
        self.emulated_bytes = emulated_bytes or {}
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
        self.transport: InProcessTransport | CooperativeTransport = (
            CooperativeTransport()
            if self.scheduling == "cooperative"
            else InProcessTransport(link_model)
        )
        self.events = EventLog()
        self.evaluate = evaluate
        self.assignment = assignment  # helper of each data owner (horizontal one hop)
        self.orders = dict(orders or {})  # helper -> prescribed (owner, fwd/bwd) order
        self.threads_per_role = threads_per_role  # torch threads of each role (None: share_cores)
        self._build_roles()

    def _device(self, name: str) -> Device:
        return self.devices.get(name, REAL)

    def _build_roles(self) -> None:
        cfg = self.config
        owners = cfg.data_owners
        shares = owner_shares(cfg, self.dataset)
        opt = optimizer_factory(cfg)
        layout = self._layout()
        nodes = [node_endpoint(i) for i in range(len(layout.node_parts))]
        self.nodes = [
            ComputeNode(
                nodes[i],
                copy.deepcopy(self.parts[part]),
                layout.prev_hop(i),
                layout.next_hop(i),
                self.transport,
                self.events,
                opt,
                QueuePolicy.SCHEDULED if i in self.orders else QueuePolicy(cfg.queue_policy),
                self._device(nodes[i]),
                emulated_output_bytes=self.emulated_bytes.get(nodes[i], 0),
                # named, so that the node allocates its instances now rather than in round one
                owners=layout.served[i] if layout.served[i] is not None else range(owners),
                order=self.orders.get(i),
            )
            for i, part in enumerate(layout.node_parts)
        ]
        workload = owner_workload(cfg)
        self.owners = [
            DataOwner(
                k,
                shares[k],
                copy.deepcopy(self.parts[0]),
                copy.deepcopy(self.parts[-1]),
                nodes[layout.entry[k]],
                nodes[layout.exit[k]],
                self.transport,
                self.events,
                opt,
                workload,
                self._device(owner_endpoint(k)),
                emulated_output_bytes=(
                    self.emulated_bytes.get("first", 0),
                    self.emulated_bytes.get(nodes[layout.exit[k]], 0),
                ),
            )
            for k in range(owners)
        ]
        self.aggregator = Aggregator(owners, self.transport, self.events)
        test = self.dataset.test if self.evaluate else None
        self.coordinator = Coordinator(
            self.transport, self.parts, self.model, owners, test, node_parts=layout.node_parts
        )

    def _layout(self) -> Layout:
        """Which node hosts which part, and how data owners route through the nodes."""
        owners = self.config.data_owners
        if self.assignment is None:
            return Layout.chain(len(self.parts) - 2, owners)
        if len(self.parts) != 3:
            raise ConfigError(
                f"an assignment of data owners to helpers is for one hop (2 cuts, P = 3); "
                f"got cuts {list(self.cuts)}",
                field="cuts",
            )
        if len(self.assignment) != owners:
            raise ConfigError(
                f"the assignment names a helper for {len(self.assignment)} data owners but the "
                f"run has {owners}",
                field="data_owners",
            )
        if self.orders and self.config.batches_per_epoch is None:
            raise ConfigError(
                "following a task order needs the same number of batches for every data owner; "
                "set batches_per_epoch",
                field="batches_per_epoch",
            )
        return Layout.horizontal(list(self.assignment))

    def run(
        self,
        progress: Progress | None = None,
        on_round: Callable[[RoundResult], None] | None = None,
    ) -> RunResult:
        """Train for the configured rounds; the roles end with the run."""
        roles: list[ComputeNode | DataOwner | Aggregator] = [
            *self.nodes,
            *self.owners,
            self.aggregator,
        ]
        budget = torch.get_num_threads()
        if isinstance(self.transport, CooperativeTransport):
            results = self._run_cooperative(self.transport, roles, progress, on_round)
        else:
            results = self._run_threads(roles, budget, progress, on_round)
        links = {
            f"{a}->{b}": v
            for (a, b), v in sorted(self.transport.bytes_sent.items())
            if a != "coordinator" and b != "coordinator"
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
        for r in range(self.config.rounds):
            with torch_threads(threads):
                result = self.coordinator.run_round(r, progress)
            results.append(result)
            if on_round:
                on_round(result)
        return results

    def _run_cooperative(
        self,
        transport: CooperativeTransport,
        roles: Sequence[ComputeNode | DataOwner | Aggregator],
        progress: Progress | None,
        on_round: Callable[[RoundResult], None] | None,
    ) -> list[RoundResult]:
        """Every role a greenlet of this thread; every task gets all of torch's threads."""
        for role in roles:
            transport.spawn(role.serve)
        try:
            return self._rounds(torch.get_num_threads(), progress, on_round)
        finally:
            self.coordinator.stop([r.name for r in roles])
            if hung := transport.finish():
                log.warning("roles still waiting after the stop: %s", ", ".join(hung))

    def _run_threads(
        self,
        roles: Sequence[ComputeNode | DataOwner | Aggregator],
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
