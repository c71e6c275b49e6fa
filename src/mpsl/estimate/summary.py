"""One estimate of a deployment: round time (closed form or simulation), memory and utilization.

This is what ``mpsl estimate`` prints; it lives here so that the command stays a thin parser and
other callers (reports, benchmarks) get the same numbers.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mpsl.cluster import Cluster
from mpsl.errors import ConfigError, MpslError
from mpsl.estimate.closed_form import (
    RoundEstimate,
    horizontal_one_hop,
    multihop,
    on_device_fedavg,
    sequential_sl,
)
from mpsl.estimate.costs import PipelineCosts, pipeline_costs, timing_needs
from mpsl.estimate.memory import memory_by_role
from mpsl.estimate.simulate import hop_latencies_ms, simulate, uplink_names
from mpsl.profile.format import Profile
from mpsl.profile.impute import Imputation, Imputed, complete, imputed_json
from mpsl.tasks import QueuePolicy, TaskRecord, hop_link


class Method(StrEnum):
    """How the round time is predicted."""

    CLOSED = "closed"
    SIM = "sim"


@dataclass(frozen=True)
class NodeEstimate:
    """One compute node: its part, its load and its memory."""

    name: str
    device: str
    first_layer: int
    last_layer: int
    busy_ms: float
    utilization: float
    memory_bytes: int
    capacity_bytes: float
    max_queue: int | None = None  # simulation only
    mean_queue: float | None = None
    max_in_flight: int | None = None  # simulation only: most batches holding activations here

    @property
    def fits(self) -> bool:
        """Whether the node's memory holds its K instances and in-flight activations."""
        return self.memory_bytes <= self.capacity_bytes


@dataclass(frozen=True)
class GroupEstimate:
    """One data-owner group: the memory each of its owners needs for its two parts."""

    name: str
    count: int
    device: str
    memory_bytes: int
    capacity_bytes: float

    @property
    def fits(self) -> bool:
        """Whether one owner of this group can hold its first and last part."""
        return self.memory_bytes <= self.capacity_bytes


@dataclass(frozen=True)
class RoleLoad:
    """One role over a round: a compute node, a data owner (its own compute and own link), a
    link between compute nodes or a shared uplink. Busy time is its work, however it is ordered."""

    name: str
    busy_ms: float
    utilization: float  # busy / round time


@dataclass(frozen=True)
class Estimate:
    """Everything ``mpsl estimate`` reports; times in milliseconds (JSON form: seconds)."""

    method: Method
    policy: QueuePolicy | None
    cuts: tuple[int, ...]
    round_ms: float
    terms: dict[str, float]
    nodes: tuple[NodeEstimate, ...]
    groups: tuple[GroupEstimate, ...]
    links: dict[str, tuple[float, int]] = field(default_factory=dict)  # busy ms, transfers
    baselines: dict[str, RoundEstimate | str] = field(default_factory=dict)  # str: why missing
    trace: tuple[TaskRecord, ...] = ()  # simulation only; seconds from the start of the round
    imputed: tuple[Imputed, ...] = ()  # profile timings estimated, not measured
    training_ms: float = 0.0  # the r local epochs of every data owner: the papers' epoch time
    aggregation_ms: float = 0.0  # upload, averaging, download after training
    roles: tuple[RoleLoad, ...] = ()  # the busiest first

    @property
    def bound(self) -> RoleLoad | None:
        """The role busy longest: it bounds the round (nothing ends before its work does)."""
        return self.roles[0] if self.roles else None

    @property
    def round_s(self) -> float:
        """Round time in seconds."""
        return self.round_ms / 1000.0

    def to_json(self) -> dict[str, Any]:
        """The JSON form printed by ``mpsl estimate --json`` (docs/estimate.md)."""
        out: dict[str, Any] = {
            "method": self.method.value,
            "cuts": list(self.cuts),
            "round_s": self.round_s,
            "epoch_s": self.training_ms / 1000.0,
            "aggregation_s": self.aggregation_ms / 1000.0,
            "terms": {k: v / 1000.0 for k, v in self.terms.items()},
            "memory_bytes": {n.name: n.memory_bytes for n in self.nodes},
            "fits": {n.name: n.fits for n in self.nodes},
            "utilization": {n.name: n.utilization for n in self.nodes},
            "busy_s": {n.name: n.busy_ms / 1000.0 for n in self.nodes},
        }
        out["memory_bytes"]["data_owner"] = max(g.memory_bytes for g in self.groups)
        out["fits"].update({g.name: g.fits for g in self.groups})
        if self.policy is not None:
            out["policy"] = self.policy.value
        if self.method is Method.SIM:
            out["queues"] = {n.name: {"max": n.max_queue, "mean": n.mean_queue} for n in self.nodes}
            out["in_flight"] = {n.name: n.max_in_flight for n in self.nodes}
            out["links"] = {
                name: {"busy_s": busy / 1000.0, "transfers": count}
                for name, (busy, count) in self.links.items()
            }
        out["imputed"] = imputed_json(self.imputed)
        out["roles"] = {
            r.name: {"busy_s": r.busy_ms / 1000.0, "utilization": r.utilization} for r in self.roles
        }
        bound = self.bound
        if bound is not None:
            share = bound.busy_ms / self.training_ms if self.training_ms else 0.0
            out["bound"] = {
                "role": bound.name,
                "busy_s": bound.busy_ms / 1000.0,
                "share_of_epoch": share,
            }
        if self.baselines:
            out["baselines"] = {
                name: {"error": b}
                if isinstance(b, str)
                else {"round_s": b.round_s, "terms": {k: v / 1000.0 for k, v in b.terms.items()}}
                for name, b in self.baselines.items()
            }
        return out


def baselines(
    costs: PipelineCosts, profile: Profile, cluster: Cluster
) -> dict[str, RoundEstimate | str]:
    """The closed-form baselines; a baseline the profile cannot support gives the reason instead."""
    result: dict[str, RoundEstimate | str] = {
        "horizontal_one_hop": horizontal_one_hop(costs, helpers=len(costs.nodes)),
        "sequential_sl": sequential_sl(costs),
    }
    try:
        result["on_device_fedavg"] = on_device_fedavg(profile, cluster)
    except MpslError as exc:  # e.g. a device never measured on some layer
        result["on_device_fedavg"] = str(exc)
    return result


def closed_form_busy(costs: PipelineCosts) -> dict[str, float]:
    """Busy ms of every role over a round, from the per-batch costs alone: a data-owner group's
    entry is each of its owners' (own compute and own link), a shared uplink carries all its
    owners' transfers; in the simulation's words (``SimResult.busy``)."""
    k, rb = costs.num_owners, costs.batches_per_round
    busy = {n.name: rb * k * (n.fwd_ms + n.bwd_ms) for n in costs.nodes}
    for o in costs.owners:
        compute = o.first_fwd_ms + o.last_ms + o.first_bwd_ms
        link = o.up_act_ms + o.down_act_ms + o.up_grad_ms + o.down_grad_ms
        busy[o.name] = rb * (compute + (0.0 if o.uplink else link))
        if o.uplink is not None:
            up = o.up_act_ms + o.up_grad_ms - o.first_latency_ms - o.last_latency_ms
            down = o.down_act_ms + o.down_grad_ms - o.first_latency_ms - o.last_latency_ms
            for name, ms in ((f"{o.uplink}.up", up), (f"{o.uplink}.down", down)):
                busy[name] = busy.get(name, 0.0) + rb * o.count * ms
    for host, cores in costs.host_cores.items():
        on = [n for n in costs.nodes if n.host == host]
        busy[f"host {host}"] = sum(busy[n.name] for n in on) / cores
    names = [n.name for n in costs.nodes]
    for (a, b), h in zip(itertools.pairwise(names), costs.hops, strict=True):
        busy[hop_link(a, b)] = rb * k * h.act_ms
        busy[hop_link(b, a)] = rb * k * h.grad_ms
    return busy


def role_loads(busy: Mapping[str, float], round_ms: float) -> tuple[RoleLoad, ...]:
    """Every role's load, the busiest first (ties: the order given)."""
    order = sorted(busy, key=lambda r: -busy[r])
    return tuple(RoleLoad(r, busy[r], busy[r] / round_ms if round_ms > 0 else 0.0) for r in order)


def estimate(
    profile: Profile,
    cluster: Cluster,
    cuts: Sequence[int],
    nodes: Sequence[str] | None = None,
    *,
    method: Method | str = Method.CLOSED,
    policy: QueuePolicy | str | None = None,
    stragglers: Mapping[int, float] | None = None,
    aggregator_ms: float = 0.0,
    with_baselines: bool = False,
    trace: bool = False,
    shared_cores: int | None = None,
    imputation: Imputation | None = None,
    source: str = "cluster",
) -> Estimate:
    """Predict one round of ``cuts`` on ``cluster``: time, per-node load and memory.

    ``shared_cores``: the simulation puts every role on one host with this many cores (an
    in-process ``mpsl run``, whose roles take turns: 1). ``imputation``: how to fill timings the
    profile lacks (default: refuse them, naming them)."""
    try:
        how = Method(method)
    except ValueError:
        raise ConfigError(
            f"unknown method '{method}'; choose closed or sim", field="method"
        ) from None
    if how is Method.CLOSED and (
        policy is not None or stragglers or trace or shared_cores is not None
    ):
        raise ConfigError(
            "queue policy, stragglers, shared cores and traces need the simulation; "
            "use method 'sim'",
            field="method",
        )
    profile.require_devices(cluster.devices(), source)
    needs = timing_needs(cluster, cuts, profile.num_layers, nodes)
    profile, imputed = complete(profile, needs, imputation, source)
    costs = pipeline_costs(profile, cluster, cuts, nodes, aggregator_ms=aggregator_ms)
    shared = sorted(costs.host_cores) + uplink_names(costs)
    if how is Method.CLOSED and shared:
        raise ConfigError(
            f"{source}: shared hosts and uplinks ({', '.join(shared)}) make tasks wait for each "
            "other, which the closed form does not model; use method 'sim'",
            field="method",
        )
    k, rb = costs.num_owners, costs.batches_per_round
    scale = cluster.training.batch_size / profile.batch_size
    budgets = {n.name: cluster.node(n.name).memory_budget_bytes for n in costs.nodes}
    memory = memory_by_role(profile, cuts, k, [n.name for n in costs.nodes], scale, budgets)
    links: dict[str, tuple[float, int]] = {}
    records: tuple[TaskRecord, ...] = ()
    pol: QueuePolicy | None = None
    if how is Method.CLOSED:
        est = multihop(costs)
        round_ms, terms = est.round_ms, dict(est.terms)
        aggregation = terms["aggregation"]
        role_busy = closed_form_busy(costs)
        busy = [rb * k * (n.fwd_ms + n.bwd_ms) for n in costs.nodes]
        queues: list[tuple[int | None, float | None, int | None]] = [(None, None, None)] * len(
            costs.nodes
        )
    else:
        pol = QueuePolicy.parse(policy or QueuePolicy.FIFO)
        if pol is QueuePolicy.SCHEDULED:
            raise ConfigError(
                "the scheduled policy follows prescribed task orders, which an estimate does not "
                "take; choose fifo or backward-first, or give orders to estimate.simulate.simulate",
                field="policy",
            )
        sim = simulate(
            costs,
            policy=pol,
            stragglers=stragglers,
            hop_latency_ms=hop_latencies_ms(costs, cluster),
            trace=trace,
            cores=shared_cores,
        )
        round_ms, terms = sim.round_ms, sim.terms()
        aggregation = sim.aggregation_ms
        role_busy = sim.busy()
        busy = [n.busy_ms for n in sim.nodes]
        queues = [(n.max_queue, n.mean_queue, n.max_in_flight) for n in sim.nodes]
        links = {ln.name: (ln.busy_ms, ln.transfers) for ln in sim.links}
        records = sim.trace
    node_estimates = tuple(
        NodeEstimate(
            name=n.name,
            device=cluster.node(n.name).device,
            first_layer=n.first_layer,
            last_layer=n.last_layer,
            busy_ms=b,
            utilization=b / round_ms if round_ms > 0 else 0.0,
            memory_bytes=memory[n.name],
            capacity_bytes=cluster.node(n.name).memory_bytes,
            max_queue=q[0],
            mean_queue=q[1],
            max_in_flight=q[2],
        )
        for n, b, q in zip(costs.nodes, busy, queues, strict=True)
    )
    groups = tuple(
        GroupEstimate(name, g.count, g.device, memory["data_owner"], g.memory_bytes)
        for name, g in zip(cluster.group_names(), cluster.data_owners, strict=True)
    )
    return Estimate(
        method=how,
        policy=pol,
        cuts=tuple(cuts),
        round_ms=round_ms,
        terms=terms,
        nodes=node_estimates,
        groups=groups,
        links=links,
        baselines=baselines(costs, profile, cluster) if with_baselines else {},
        trace=records,
        imputed=imputed,
        training_ms=round_ms - aggregation,
        aggregation_ms=aggregation,
        roles=role_loads(role_busy, round_ms),
    )
