"""The planning problem as arrays: every segment's time and memory on every node, every hop, and the
constant terms of the round, built once from a profile and a cluster.

Positions 0..M index the cuts inside the middle of the model: position i is cut ``first_cut + i``,
so a segment (i, k) with i < k holds layers first_cut+i+1 .. first_cut+k. The epoch objective of a
chain of N >= 2 segments is, exactly as in ``closed_form.multihop``::

    const + first_c[v1] + last_c[vN] + sum(f + b of each segment) + sum(2 * hop) + W * (F + B)

where F / B are the largest segment or hop time forward / backward and W = r*B*K - 1. One node
(N = 1) follows the one-hop formula instead (``one_hop_ms``).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mpsl.cluster import DEFAULT_SWAP_BYTES_PER_S, Cluster
from mpsl.errors import ConfigError, CutError
from mpsl.estimate.closed_form import RoundEstimate, multihop
from mpsl.estimate.costs import pipeline_costs, transfer_ms
from mpsl.estimate.memory import budgeted_node_memory, node_memory_bytes, paper_node_memory_bytes
from mpsl.profile.format import Profile

INF = math.inf


class Objective(enum.StrEnum):
    """What the planner minimises."""

    EPOCH = "epoch"  # the estimator's round time
    PAPER = "paper"  # the published ILP: max forward + max backward, no communication
    COST = "cost"  # price of the nodes used x round time
    MEMORY = "memory"  # the largest compute node's memory; ties: the shorter round


UNITS = {
    Objective.EPOCH: "s per round",
    Objective.PAPER: "ms per batch",
    Objective.COST: "price units per round",
    Objective.MEMORY: "bytes on the largest compute node",
}


@dataclass(frozen=True)
class Solution:
    """One plan as a solver found it: node of each middle part and the full cut list."""

    nodes: tuple[str, ...]
    cuts: tuple[int, ...]
    value: float  # the objective, in UNITS[objective]
    round_ms: float  # closed_form.multihop of this plan


@dataclass(frozen=True, eq=False)
class Problem:
    """Arrays of one planning instance (see the module docstring for the indexing)."""

    profile: Profile
    cluster: Cluster
    first_cut: int
    last_cut: int
    objective: Objective
    sizes: tuple[int, ...]  # allowed numbers of compute nodes
    max_round_s: float | None
    names: tuple[str, ...]
    seg_f: np.ndarray = field(repr=False)  # (n, P, P) forward ms; inf where not measured / i >= k
    seg_b: np.ndarray = field(repr=False)  # (n, P, P) backward + optimizer ms
    seg_need: np.ndarray = field(repr=False)  # (P, P) bytes a node needs for the segment
    seg_mem: np.ndarray = field(repr=False)  # (n, P, P) seg_need capped by the node's budget
    measured: np.ndarray = field(repr=False)  # (n, P, P) every layer timed on the node's device
    seg_ok: np.ndarray = field(repr=False)  # (n, P, P) measured and seg_mem fits in memory
    hop: np.ndarray = field(repr=False)  # (n, n, P) transfer ms of the cut's activation; inf: none
    first_c: np.ndarray = field(repr=False)  # (n,) owner link terms of the first node
    last_c: np.ndarray = field(repr=False)  # (n,) owner link terms of the last node
    memory: np.ndarray = field(repr=False)  # (n,) memory_bytes
    price: np.ndarray = field(repr=False)  # (n,) price_per_hour
    const_ms: float  # N >= 2: start/end compute, last part, aggregation
    const1_ms: float  # N = 1: start/end compute, aggregation
    rounds: int  # R = r * B * K batches through the pipeline per round

    @property
    def n(self) -> int:
        """Number of compute nodes in the cluster."""
        return len(self.names)

    @property
    def positions(self) -> int:
        """P = M + 1 cut positions, M = middle layers."""
        return self.last_cut - self.first_cut + 1

    @property
    def weight(self) -> int:
        """W = R - 1: how often the pipe-full batch time repeats."""
        return self.rounds - 1

    @property
    def num_owners(self) -> int:
        """K."""
        return self.cluster.num_data_owners

    def one_hop_ms(self, u: int) -> float:
        """Round time with node ``u`` running the whole middle alone (inf if it cannot)."""
        m = self.positions - 1
        if not self.seg_ok[u, 0, m]:
            return INF
        work = self.seg_f[u, 0, m] + self.seg_b[u, 0, m]
        return float(self.const1_ms + self.first_c[u] + self.rounds * work)

    def cuts_of(self, segments: Sequence[tuple[int, int, int]]) -> tuple[int, ...]:
        """Full cut list of a chain of (node, i, k) segments."""
        return (self.first_cut, *(self.first_cut + int(k) for _, _, k in segments))

    def solution(self, nodes: Sequence[int], cuts: Sequence[int]) -> Solution:
        """Evaluate a plan exactly with the estimator and wrap it."""
        names = tuple(self.names[u] for u in nodes)
        est = self.estimate(names, cuts)
        return Solution(names, tuple(cuts), self.value(names, cuts, est), est.round_ms)

    def estimate(self, names: Sequence[str], cuts: Sequence[int]) -> RoundEstimate:
        """closed_form.multihop over pipeline_costs: the predicted round."""
        return multihop(pipeline_costs(self.profile, self.cluster, cuts, names))

    def value(self, names: Sequence[str], cuts: Sequence[int], est: RoundEstimate) -> float:
        """The objective of a plan in UNITS[objective]."""
        if self.objective is Objective.EPOCH:
            return est.round_s
        if self.objective is Objective.MEMORY:
            return float(self.largest_bytes(names, cuts))
        if self.objective is Objective.COST:
            hourly = sum(self.cluster.node(n).price_per_hour for n in names)
            return hourly * est.round_s / 3600.0
        costs = pipeline_costs(self.profile, self.cluster, cuts, names)
        # the published ILP's time: compute only (no swap, as its memory model has no budget)
        fwd = max(c.fwd_ms - c.swap_ms for c in costs.nodes)
        return fwd + max(c.bwd_ms for c in costs.nodes)

    def obstacle(self, names: Sequence[str], cuts: Sequence[int]) -> str | None:
        """Why a plan cannot run (a layer not measured on its node, a node short of memory)."""
        for name, lo, hi in zip(names, cuts, cuts[1:], strict=False):
            node = self.cluster.node(name)
            for i in range(lo + 1, hi + 1):
                if node.device not in self.profile.layers[i - 1].ms:
                    return f"layer {i} is not measured on node '{name}' (device '{node.device}')"
            need = self.node_need_bytes(name, lo + 1, hi)
            if need > node.memory_bytes:
                return (
                    f"node '{name}' needs {gb(need)} for layers {lo + 1}..{hi} with "
                    f"{self.num_owners} data owners but has {gb(node.memory_bytes)}"
                )
        return None

    def largest_bytes(self, names: Sequence[str], cuts: Sequence[int]) -> int:
        """Memory of the plan's largest compute node (under its budget if it has one)."""
        return max(
            self.node_need_bytes(name, lo + 1, hi)
            for name, lo, hi in zip(names, cuts, cuts[1:], strict=False)
        )

    def need_bytes(self, first: int, last: int) -> int:
        """Memory a compute node needs to host layers first..last under this objective's model."""
        scale = self.cluster.training.batch_size / self.profile.batch_size
        return need_bytes(self.profile, first, last, self.num_owners, self.objective, scale)

    def node_need_bytes(self, name: str, first: int, last: int) -> int:
        """need_bytes capped by node ``name``'s memory budget (the estimator's model only)."""
        budget = self.cluster.node(name).memory_budget_bytes
        if budget is None or self.objective is Objective.PAPER:
            return self.need_bytes(first, last)
        scale = self.cluster.training.batch_size / self.profile.batch_size
        return budgeted_node_memory(self.profile, first, last, self.num_owners, budget, scale).bytes


def gb(num_bytes: float) -> str:
    """Bytes as decimal gigabytes, for messages."""
    return f"{num_bytes / 1e9:.2f} GB"


def need_bytes(
    profile: Profile, first: int, last: int, owners: int, objective: Objective, scale: float = 1.0
) -> int:
    """The memory model of ``objective``: the paper's for paper, the estimator's otherwise.

    ``scale`` is the cluster's batch size over the profile's (activations grow with the batch).
    """
    if objective is Objective.PAPER:
        return paper_node_memory_bytes(profile, first, last, owners)
    return node_memory_bytes(profile, first, last, owners, scale=scale)


def _check_inputs(profile: Profile, cluster: Cluster, first_cut: int, last_cut: int) -> None:
    s = profile.num_layers
    for flag, cut in (("--first-cut", first_cut), ("--last-cut", last_cut)):
        if not 1 <= cut <= s - 1:
            raise CutError(
                f"{flag} {cut} is outside {profile.model}'s layers 1..{s}; choose 1..{s - 1} so "
                f"that the data owner keeps at least one layer at each end"
            )
    if first_cut >= last_cut:
        raise CutError(
            f"--first-cut {first_cut} must be below --last-cut {last_cut}: compute nodes share "
            f"layers first+1..last; choose e.g. --first-cut {min(first_cut, last_cut) - 1 or 1} "
            f"--last-cut {max(first_cut, last_cut)}"
        )
    profile.require_devices(cluster.devices())
    for g in cluster.data_owners:
        for layer in [*range(1, first_cut + 1), *range(last_cut + 1, s + 1)]:
            profile.timing(g.device, layer)  # raises FormatError naming the layer and device


def _sizes(hops: int | str, n: int, m: int) -> tuple[int, ...]:
    top = min(n, m)
    if hops == "auto":
        return tuple(range(1, top + 1))
    if not isinstance(hops, int) or isinstance(hops, bool):
        raise ConfigError(
            f"expected a number of compute nodes or 'auto'; got {hops!r}", field="--hops"
        )
    if not 1 <= hops <= top:
        why = (
            "a plan uses at least 1 compute node"
            if hops < 1
            else f"the cluster has {n} compute nodes"
            if hops > n
            else f"the middle (layers between the cuts) has {m} layers"
        )
        raise ConfigError(
            f"--hops {hops} is not possible: {why}; choose 1..{top} or auto", field="--hops"
        )
    return (hops,)


def _refuse_sharing(cluster: Cluster) -> None:
    """ConfigError for shared hosts or uplinks: the planner's costs take every node's cores and
    every data owner's link as its own, so its plan for such a cluster would be optimistic."""
    hosts = sorted({n.host for n in cluster.compute_nodes if n.host is not None})
    uplinks = sorted({g.uplink for g in cluster.data_owners if g.uplink is not None})
    if hosts or uplinks:
        shared = [f"host {h}" for h in hosts] + [f"uplink {u}" for u in uplinks]
        raise ConfigError(
            f"shared {', '.join(shared)}: the planner models every compute node with cores of its "
            "own and every data owner with a link of its own, so its plan would be optimistic; "
            "plan on the cluster without 'host' and 'uplink', then check the plan on this one "
            "with `mpsl estimate --method sim` (docs/planner.md)",
            field="host" if hosts else "uplink",
        )


def build_problem(
    profile: Profile,
    cluster: Cluster,
    first_cut: int,
    last_cut: int,
    objective: str | Objective = Objective.EPOCH,
    hops: int | str = "auto",
    max_round_s: float | None = None,
) -> Problem:
    """Validate the inputs and precompute every array the solvers share."""
    try:
        obj = Objective(objective)
    except ValueError:
        raise ConfigError(
            f"expected one of {', '.join(o.value for o in Objective)}; got {objective!r}",
            field="--objective",
        ) from None
    if max_round_s is not None and max_round_s <= 0:
        raise ConfigError(
            f"expected a positive number of seconds; got {max_round_s}", field="--max-round-s"
        )
    if max_round_s is not None and obj in (Objective.PAPER, Objective.MEMORY):
        raise ConfigError(
            f"the {obj.value} objective takes no round-time limit; use --objective epoch or cost",
            field="--max-round-s",
        )
    _check_inputs(profile, cluster, first_cut, last_cut)
    _refuse_sharing(cluster)
    nodes = cluster.compute_nodes
    n, m = len(nodes), last_cut - first_cut
    p = m + 1
    scale = cluster.training.batch_size / profile.batch_size
    middle = profile.layers[first_cut:last_cut]

    seg_f = np.full((n, p, p), INF)
    seg_b = np.full((n, p, p), INF)
    measured = np.zeros((n, p, p), dtype=bool)
    upper = np.triu(np.ones((p, p), dtype=bool), 1)
    for u, node in enumerate(nodes):
        has = np.array([node.device in lp.ms for lp in middle])
        f = np.array([lp.ms[node.device].fwd if node.device in lp.ms else 0.0 for lp in middle])
        b = np.array(
            [
                lp.ms[node.device].bwd + lp.ms[node.device].opt if node.device in lp.ms else 0.0
                for lp in middle
            ]
        )
        cf, cb = np.concatenate([[0.0], np.cumsum(f)]), np.concatenate([[0.0], np.cumsum(b)])
        gaps = np.concatenate([[0], np.cumsum(~has)])
        ok = upper & (gaps[None, :] - gaps[:, None] == 0)
        measured[u] = ok
        seg_f[u] = np.where(ok, (cf[None, :] - cf[:, None]) * node.slowdown * scale, INF)
        seg_b[u] = np.where(ok, (cb[None, :] - cb[:, None]) * node.slowdown * scale, INF)

    need = np.zeros((p, p), dtype=np.int64)
    owners = cluster.num_data_owners
    for i in range(p):
        for k in range(i + 1, p):
            need[i, k] = need_bytes(profile, first_cut + i + 1, first_cut + k, owners, obj, scale)
    memory = np.array([node.memory_bytes for node in nodes], dtype=float)
    seg_mem = np.broadcast_to(need, (n, p, p)).copy()
    if obj is not Objective.PAPER:
        _apply_budgets(profile, cluster, first_cut, seg_mem, seg_f, scale)
    seg_ok = measured & (seg_mem <= memory[:, None, None])

    hop = np.full((n, n, p), INF)
    for v, sender in enumerate(nodes):
        for u, receiver in enumerate(nodes):
            if u == v:
                continue
            bps, lat = cluster.link(sender.name, receiver.name)
            for i in range(1, m):
                out = profile.layers[first_cut + i - 1].output_bytes * scale
                hop[v, u, i] = 0.0 if obj is Objective.PAPER else transfer_ms(out, bps, lat)

    first_c, last_c, const, const1 = _owner_terms(profile, cluster, first_cut, last_cut, scale)
    t = cluster.training
    return Problem(
        profile=profile,
        cluster=cluster,
        first_cut=first_cut,
        last_cut=last_cut,
        objective=obj,
        sizes=_sizes(hops, n, m),
        max_round_s=max_round_s,
        names=tuple(node.name for node in nodes),
        seg_f=seg_f,
        seg_b=seg_b,
        seg_need=need,
        seg_mem=seg_mem,
        measured=measured,
        seg_ok=seg_ok,
        hop=hop,
        first_c=first_c,
        last_c=last_c,
        memory=memory,
        price=np.array([node.price_per_hour for node in nodes], dtype=float),
        const_ms=const,
        const1_ms=const1,
        rounds=t.local_epochs * t.batches_per_epoch * cluster.num_data_owners,
    )


def _apply_budgets(
    profile: Profile,
    cluster: Cluster,
    first_cut: int,
    seg_mem: np.ndarray,
    seg_f: np.ndarray,
    scale: float,
) -> None:
    """Nodes with a memory_budget_bytes: cap each segment's memory at the budget and add the
    expected swap per forward to its time, as estimate.costs.pipeline_costs does."""
    owners, p = cluster.num_data_owners, seg_mem.shape[1]
    for u, node in enumerate(cluster.compute_nodes):
        if node.memory_budget_bytes is None:
            continue
        rate = node.swap_bytes_per_s or DEFAULT_SWAP_BYTES_PER_S
        for i in range(p):
            for k in range(i + 1, p):
                mem = budgeted_node_memory(
                    profile,
                    first_cut + i + 1,
                    first_cut + k,
                    owners,
                    node.memory_budget_bytes,
                    scale,
                )
                seg_mem[u, i, k] = mem.bytes
                seg_f[u, i, k] += mem.swap_ms(rate)


def _owner_terms(
    profile: Profile, cluster: Cluster, first_cut: int, last_cut: int, scale: float
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Data-owner terms of the round, as pipeline_costs and multihop define them (means over
    data owners): per first node, per last node, and the constants of N >= 2 and N = 1."""
    s, k = profile.num_layers, cluster.num_data_owners
    names = [node.name for node in cluster.compute_nodes]
    act0 = profile.layers[first_cut - 1].output_bytes * scale
    actn = profile.layers[last_cut - 1].output_bytes * scale
    params = sum(
        profile.layers[i - 1].param_bytes
        for i in [*range(1, first_cut + 1), *range(last_cut + 1, s + 1)]
    )
    first_c, last_c = np.zeros(len(names)), np.zeros(len(names))
    compute = last_part = agg = 0.0
    for gname, g in zip(cluster.group_names(), cluster.data_owners, strict=True):
        w = g.count / k

        def span(lo: int, hi: int, dev: str = g.device, slow: float = g.slowdown) -> float:
            ts = [profile.timing(dev, i) for i in range(lo, hi + 1)]
            return (sum(t.fwd for t in ts) + sum(t.bwd + t.opt for t in ts)) * slow * scale

        compute += w * span(1, first_cut)
        last_part += w * span(last_cut + 1, s)
        agg += w * 2 * transfer_ms(params, g.link_bps, g.link_latency_s)
        for u, name in enumerate(names):
            first_c[u] += w * 2 * transfer_ms(act0, *cluster.link(gname, name))
            last_c[u] += w * 2 * transfer_ms(actn, *cluster.link(gname, name))
    return first_c, last_c, compute + last_part + agg, compute + agg
