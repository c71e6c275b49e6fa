"""Per-batch costs of a deployment: what each compute node, link and data owner spends on a batch.

The closed form, the simulation and the planner all read these numbers, so they agree by
construction. Times are milliseconds for one batch of the cluster's batch size; a profile measured
at another batch size is scaled linearly (time and bytes), which is a documented approximation.
Every task (a compute node's forward or backward, a data owner's first-part forward, last part,
first-part backward) also pays the profile's per-task overhead of its device, if measured
(``Profile.task_overhead_ms``; not scaled with the batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mpsl.cluster import DEFAULT_SWAP_BYTES_PER_S, Cluster
from mpsl.errors import FormatError
from mpsl.estimate.memory import budgeted_node_memory
from mpsl.profile.format import Profile
from mpsl.split import part_ranges
from mpsl.tasks import AGGREGATOR


@dataclass(frozen=True)
class OwnerCosts:
    """One data-owner group: its parts' compute and its link transfers, per batch."""

    name: str
    count: int
    first_fwd_ms: float
    first_bwd_ms: float  # backward + optimizer step of the first part
    last_ms: float  # forward, loss, backward and optimizer step of the last part
    up_act_ms: float  # activation of cut c0 to the first compute node
    down_act_ms: float  # activation of cut cN from the last compute node
    up_grad_ms: float  # gradient of cut cN to the last compute node
    down_grad_ms: float  # gradient of cut c0 from the first compute node
    upload_model_ms: float  # first + last part to the aggregator
    download_model_ms: float
    uplink: str | None = None  # a shared link its owners' transfers take turns on
    # latency in the transfers to/from the first and the last compute node: it delays them
    # without occupying a shared uplink
    first_latency_ms: float = 0.0
    last_latency_ms: float = 0.0
    model_latency_ms: float = 0.0  # likewise, of the model upload and download


@dataclass(frozen=True)
class NodeCosts:
    """One compute node hosting one middle part."""

    name: str
    first_layer: int
    last_layer: int
    fwd_ms: float  # forward, and the swap below
    bwd_ms: float  # backward + optimizer step
    swap_ms: float = 0.0  # expected instance swap per forward under a memory budget (in fwd_ms)
    host: str | None = None  # a machine shared with other compute nodes


@dataclass(frozen=True)
class HopCosts:
    """The link from compute node i to node i+1: activation forward, gradient back."""

    act_ms: float
    grad_ms: float


@dataclass(frozen=True)
class PipelineCosts:
    """Everything the estimators need about one deployment of one cut list."""

    owners: tuple[OwnerCosts, ...]
    nodes: tuple[NodeCosts, ...]
    hops: tuple[HopCosts, ...]
    batches_per_round: int  # r * B for each data owner
    aggregation_ms: float  # the aggregator's averaging work
    host_cores: dict[str, int] = field(default_factory=dict)  # shared hosts: tasks at once

    @property
    def num_owners(self) -> int:
        """K: data owners of all groups."""
        return sum(o.count for o in self.owners)

    def owner_mean(self, attr: str) -> float:
        """Mean over data owners (weighted by group size) of one OwnerCosts field."""
        return sum(getattr(o, attr) * o.count for o in self.owners) / self.num_owners


def transfer_ms(num_bytes: float, bps: float, latency_s: float = 0.0) -> float:
    """Milliseconds to move ``num_bytes`` over a link of ``bps`` bits/s with ``latency_s``."""
    return 1000.0 * (num_bytes * 8.0 / bps + latency_s)


def timing_needs(
    cluster: Cluster, cuts: Sequence[int], num_layers: int, nodes: Sequence[str] | None = None
) -> dict[str, list[int]]:
    """Device -> the 1-based layers whose timings running ``cuts`` on ``nodes`` reads."""
    ranges = part_ranges(cuts, num_layers)
    names = list(nodes) if nodes is not None else [n.name for n in cluster.compute_nodes]
    needs: dict[str, set[int]] = {}
    for name, (first, last) in zip(names, ranges[1:-1], strict=False):
        needs.setdefault(cluster.node(name).device, set()).update(range(first, last + 1))
    (a, b), (c, d) = ranges[0], ranges[-1]  # the data owner's first and last part
    for group in cluster.data_owners:
        needs.setdefault(group.device, set()).update([*range(a, b + 1), *range(c, d + 1)])
    return {d: sorted(ls) for d, ls in needs.items()}


def span_needs(
    cluster: Cluster, first_cut: int, last_cut: int, num_layers: int
) -> dict[str, list[int]]:
    """Device -> layers when any compute node may host any of the middle layers
    first_cut+1..last_cut (the planner's and the scheduler's view). Cuts outside the model are
    left to the caller to refuse: only layers 1..num_layers are listed."""
    first_cut, last_cut = max(0, min(first_cut, num_layers)), max(0, min(last_cut, num_layers))
    needs: dict[str, set[int]] = {}
    for node in cluster.compute_nodes:
        needs.setdefault(node.device, set()).update(range(first_cut + 1, last_cut + 1))
    own = [*range(1, first_cut + 1), *range(last_cut + 1, num_layers + 1)]
    for group in cluster.data_owners:
        needs.setdefault(group.device, set()).update(own)
    return {d: sorted(ls) for d, ls in needs.items()}


def node_swap_ms(profile: Profile, cluster: Cluster, name: str, first: int, last: int) -> float:
    """Expected swap ms per forward of node ``name`` hosting layers first..last: 0 without a
    ``memory_budget_bytes`` or when all K instances fit in it (memory.NodeMemory.swap_ms)."""
    node = cluster.node(name)
    if node.memory_budget_bytes is None:
        return 0.0
    scale = cluster.training.batch_size / profile.batch_size
    mem = budgeted_node_memory(
        profile, first, last, cluster.num_data_owners, node.memory_budget_bytes, scale
    )
    return mem.swap_ms(node.swap_bytes_per_s or DEFAULT_SWAP_BYTES_PER_S)


def pipeline_costs(
    profile: Profile,
    cluster: Cluster,
    cuts: Sequence[int],
    nodes: Sequence[str] | None = None,
    aggregator_ms: float = 0.0,
) -> PipelineCosts:
    """Per-batch costs of running ``cuts`` with middle part i on ``nodes[i]``.

    ``nodes`` defaults to the first N compute nodes of the cluster, in file order.
    """
    ranges = part_ranges(cuts, profile.num_layers)
    middle = ranges[1:-1]
    names = list(nodes) if nodes is not None else [n.name for n in cluster.compute_nodes]
    if len(names) < len(middle):
        raise FormatError(
            f"cut list {list(cuts)} has {len(middle)} compute-node parts but the cluster offers "
            f"{len(names)} compute nodes; use fewer cuts or add nodes"
        )
    names = names[: len(middle)]
    if len(set(names)) != len(names):
        raise FormatError(f"a compute node can host one part only; got {names}")
    profile.require_devices(cluster.devices())
    scale = cluster.training.batch_size / profile.batch_size

    def span(device: str, first: int, last: int, slowdown: float) -> tuple[float, float]:
        fwd = bwd = 0.0
        for layer in range(first, last + 1):
            t = profile.timing(device, layer)
            fwd += t.fwd
            bwd += t.bwd + t.opt
        return fwd * slowdown * scale, bwd * slowdown * scale

    def overhead(device: str, slowdown: float) -> float:
        return profile.task_overhead(device) * slowdown

    def out_bytes(layer: int) -> float:
        return profile.layers[layer - 1].output_bytes * scale

    node_costs = []
    for name, (first, last) in zip(names, middle, strict=True):
        node = cluster.node(name)
        fwd, bwd = span(node.device, first, last, node.slowdown)
        extra = overhead(node.device, node.slowdown)
        swap = node_swap_ms(profile, cluster, name, first, last)
        node_costs.append(
            NodeCosts(name, first, last, fwd + extra + swap, bwd + extra, swap, node.host)
        )
    hops = []
    for a, b, (_, last) in zip(names, names[1:], middle, strict=False):
        bps, lat = cluster.link(a, b)
        hops.append(
            HopCosts(transfer_ms(out_bytes(last), bps, lat), transfer_ms(out_bytes(last), bps, lat))
        )
    first_part, last_part = ranges[0], ranges[-1]
    model_bytes = sum(
        profile.layers[i - 1].param_bytes
        for lo, hi in (first_part, last_part)
        for i in range(lo, hi + 1)
    )
    owners = []
    for group_name, group in zip(cluster.group_names(), cluster.data_owners, strict=True):
        f_fwd, f_bwd = span(group.device, *first_part, group.slowdown)
        l_fwd, l_bwd = span(group.device, *last_part, group.slowdown)
        extra = overhead(group.device, group.slowdown)
        up = cluster.owner_link(group_name, names[0])
        down = cluster.owner_link(group_name, names[-1])
        to_aggregator = cluster.owner_link(group_name, AGGREGATOR)
        uplink = cluster.uplink(group_name)
        act0, actn = out_bytes(first_part[1]), out_bytes(middle[-1][1])
        owners.append(
            OwnerCosts(
                name=group_name,
                count=group.count,
                first_fwd_ms=f_fwd + extra,
                first_bwd_ms=f_bwd + extra,
                last_ms=l_fwd + l_bwd + extra,
                up_act_ms=transfer_ms(act0, *up),
                down_act_ms=transfer_ms(actn, *down),
                up_grad_ms=transfer_ms(actn, *down),
                down_grad_ms=transfer_ms(act0, *up),
                upload_model_ms=transfer_ms(model_bytes, *to_aggregator),
                download_model_ms=transfer_ms(model_bytes, *to_aggregator),
                uplink=uplink.name if uplink is not None else None,
                first_latency_ms=1000.0 * up[1],
                last_latency_ms=1000.0 * down[1],
                model_latency_ms=1000.0 * to_aggregator[1],
            )
        )
    t = cluster.training
    used_hosts = {n.host for n in node_costs}
    return PipelineCosts(
        owners=tuple(owners),
        nodes=tuple(node_costs),
        hops=tuple(hops),
        batches_per_round=t.local_epochs * t.batches_per_epoch,
        aggregation_ms=aggregator_ms,
        host_cores={h: c for h, c in cluster.host_cores().items() if h in used_hosts},
    )
