"""A run assembled once: config -> data, model, cuts, parts and layout; and each role built from it.

Every engine builds its roles here: the in-process engine (all roles in one process), a deployed
member (one role per process) and the deployment coordinator. What differs between them is only the
transport and where the data comes from.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from mpsl.data import Dataset, load_dataset, partition
from mpsl.data.base import Labeled
from mpsl.errors import ConfigError
from mpsl.models import LayerChain, build_model
from mpsl.runtime.accelerator import resolve_device
from mpsl.runtime.aggregator import Aggregator
from mpsl.runtime.compute_node import ComputeNode
from mpsl.runtime.config import RunConfig
from mpsl.runtime.coordinator import Coordinator
from mpsl.runtime.data_owner import DataOwner
from mpsl.runtime.device import REAL, Device
from mpsl.runtime.events import EventLog
from mpsl.runtime.layout import Layout, RoleKind
from mpsl.runtime.transport import Transport
from mpsl.split import even_cuts, split_model
from mpsl.tasks import Order, QueuePolicy, owner_index
from mpsl.training.defences import Defences
from mpsl.training.steps import OptimizerFactory, Workload, make_optimizer

Role = ComputeNode | DataOwner | Aggregator


def load_run_data(config: RunConfig) -> Dataset:
    """The dataset a config names; mnist, cifar10, npz and images are read from its data_path."""
    shape = tuple(config.input_shape) if config.input_shape else None
    return load_dataset(config.dataset, config.data_path, shape, config.num_classes, config.seed)


def resolve_cuts(config: RunConfig, num_layers: int) -> tuple[int, ...]:
    """The config's cuts, or an even split over its number of compute nodes (default 2)."""
    if config.cuts is not None:
        return tuple(config.cuts)
    return even_cuts(num_layers, len(config.nodes) if config.nodes else config.compute_nodes or 2)


def optimizer_factory(config: RunConfig) -> OptimizerFactory:
    """A function that makes the configured optimizer for one part instance."""

    def make(module: nn.Module) -> torch.optim.Optimizer | None:
        return make_optimizer(
            module.parameters(), config.optimizer, config.lr, config.momentum, config.weight_decay
        )

    return make


def owner_shares(config: RunConfig, dataset: Dataset) -> list[Labeled]:
    """Each data owner's training samples under the config's partitioning and seed."""
    idx = partition(
        dataset.train.y.numpy(), config.data_owners, config.partition, config.alpha, config.seed
    )
    return [dataset.train.subset(torch.from_numpy(i)) for i in idx]


def make_layout(config: RunConfig, cuts: Sequence[int], assignment: Sequence[int] | None) -> Layout:
    """The chain (or, with an assignment of data owners to helpers, one hop) of a run."""
    hops = len(cuts) - 1
    if assignment is None:
        return Layout.chain(hops, config.data_owners, config.nodes)
    if hops != 1:
        raise ConfigError(
            f"an assignment of data owners to helpers is for one hop (2 cuts, P = 3); "
            f"got cuts {list(cuts)}",
            field="cuts",
        )
    if len(assignment) != config.data_owners:
        raise ConfigError(
            f"the assignment names a helper for {len(assignment)} data owners but the "
            f"run has {config.data_owners}",
            field="data_owners",
        )
    return Layout.horizontal(assignment, config.nodes if config.nodes else None)


@dataclass
class RunSetup:
    """Everything a run's roles are built from. ``dataset`` is None where no role needs it."""

    config: RunConfig
    model: LayerChain
    cuts: tuple[int, ...]
    parts: list[nn.Module]  # share modules with ``model``
    layout: Layout
    input_shape: tuple[int, ...]
    num_classes: int
    dataset: Dataset | None = None

    @classmethod
    def build(
        cls,
        config: RunConfig,
        *,
        dataset: Dataset | None = None,
        model: LayerChain | None = None,
        assignment: Sequence[int] | None = None,
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
    ) -> RunSetup:
        """Assemble ``config``; without ``input_shape`` the dataset is loaded to learn it."""
        if input_shape is not None:
            shape = tuple(input_shape)
        else:
            dataset = dataset or load_run_data(config)
            shape = tuple(dataset.input_shape)
        classes = num_classes or config.num_classes or (dataset.num_classes if dataset else 0)
        if not classes:
            raise ConfigError("the number of classes is unknown", field="num_classes")
        model = model or build_model(config.model, classes, shape, seed=config.seed)
        cuts = resolve_cuts(config, model.num_layers)
        parts: list[nn.Module] = list(split_model(model, cuts))
        layout = make_layout(config, cuts, assignment)
        config.check_node_devices(len(layout.nodes))
        return cls(config, model, cuts, parts, layout, shape, classes, dataset)

    @property
    def workload(self) -> Workload:
        """What every data owner trains each round."""
        c = self.config
        return Workload(c.batch_size, c.local_epochs, c.batches_per_epoch, c.seed)

    def owner_share(self, k: int) -> Labeled:
        """Data owner ``k``'s training samples (loading the dataset if this setup has none)."""
        if self.dataset is None:
            self.dataset = load_run_data(self.config)
        return owner_shares(self.config, self.dataset)[k]

    def owner_shares(self) -> list[Labeled]:
        """Every data owner's training samples."""
        if self.dataset is None:
            self.dataset = load_run_data(self.config)
        return owner_shares(self.config, self.dataset)


def build_role(
    setup: RunSetup,
    name: str,
    transport: Transport,
    events: EventLog,
    *,
    device: Device = REAL,
    emulated_bytes: Mapping[str, int] | None = None,
    order: Order | None = None,
    share: Labeled | None = None,
    node_device: str | None = None,
) -> Role:
    """The role ``name`` of ``setup`` on ``transport``, with its own copy of its parts.

    ``order``: the task order a compute node follows (scheduled queue); ``share``: a data owner's
    samples when the caller has already partitioned them; ``emulated_bytes``: output sizes of
    the first part ("first") and of each compute node, sent instead of tensors in emulation;
    ``node_device``: a compute node's device instead of the config's (a member's ``--device``).
    """
    layout, config = setup.layout, setup.config
    sizes = emulated_bytes or {}
    kind = layout.role_of(name)
    make_opt = optimizer_factory(config)
    if kind is RoleKind.COMPUTE_NODE:
        i = layout.nodes.index(name)
        if order is not None and order.owners != list(layout.served[i]):
            raise ConfigError(
                f"the task order of {name} ({order}) covers data owners {order.owners}; "
                f"{name} serves {list(layout.served[i])}",
                field="schedule",
            )
        policy = QueuePolicy.SCHEDULED if order is not None else QueuePolicy(config.queue_policy)
        spec, field = (
            (node_device, "--device") if node_device else (config.device_of(i), "node_device")
        )
        return ComputeNode(
            name=name,
            part=copy.deepcopy(setup.parts[layout.node_parts[i]]),
            prev_hop=layout.prev_hop(i),
            next_hop=layout.next_hop(i),
            transport=transport,
            events=events,
            make_optimizer=make_opt,
            policy=policy,
            order=order,
            device=device,
            owners=layout.served[i],
            emulated_output_bytes=sizes.get(name, 0),
            memory_budget=config.node_memory_budget,
            torch_device=resolve_device(spec, field),
        )
    if kind is RoleKind.DATA_OWNER:
        k = owner_index(name)
        entry, exit_ = layout.route(k)
        return DataOwner(
            index=k,
            data=share if share is not None else setup.owner_share(k),
            first=copy.deepcopy(setup.parts[0]),
            last=copy.deepcopy(setup.parts[-1]),
            first_node=entry,
            last_node=exit_,
            transport=transport,
            events=events,
            make_optimizer=make_opt,
            workload=setup.workload,
            device=device,
            emulated_output_bytes=(sizes.get("first", 0), sizes.get(exit_, 0)),
            defences=Defences.of(config),
        )
    if kind is RoleKind.AGGREGATOR:
        return Aggregator(owners=config.data_owners, transport=transport, events=events)
    raise ConfigError(f"'{name}' is the coordinator; use build_coordinator", field="name")


def build_coordinator(
    setup: RunSetup, transport: Transport, *, evaluate: bool = True
) -> Coordinator:
    """The coordinator of ``setup``: it holds the global parts (shared with ``setup.model``)."""
    test = setup.dataset.test if evaluate and setup.dataset is not None else None
    return Coordinator(
        transport=transport,
        parts=setup.parts,
        model=setup.model,
        owners=setup.config.data_owners,
        test=test,
        nodes=setup.layout.nodes,
        node_parts=setup.layout.node_parts,
        min_owners=setup.config.min_owners(),
    )
