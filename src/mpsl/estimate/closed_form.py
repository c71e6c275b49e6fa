"""The closed-form training-time model of the reference (EdgeSys'25), and its baselines.

Multihop round = start + pipe-empty + (r*B*K - 1) * (L_fwd + L_back) + end + aggregation, where
L_fwd / L_back are the slowest pipeline stage forward / backward. We count the compute-to-compute
links as pipeline stages too (they overlap computation, so only the slowest stage sets the pace).
It is an optimistic bound: it assumes the pipeline is always full; the simulation refines it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mpsl.cluster import Cluster
from mpsl.estimate.costs import PipelineCosts, transfer_ms
from mpsl.profile.format import Profile


@dataclass(frozen=True)
class RoundEstimate:
    """A predicted round time with the terms that make it up (all in milliseconds)."""

    round_ms: float
    terms: dict[str, float] = field(default_factory=dict)

    @property
    def round_s(self) -> float:
        """Round time in seconds."""
        return self.round_ms / 1000.0


def stage_maxima(c: PipelineCosts) -> tuple[float, float]:
    """(L_fwd, L_back): the slowest pipeline stage in each direction, links included."""
    l_fwd = max([n.fwd_ms for n in c.nodes] + [h.act_ms for h in c.hops])
    l_back = max([n.bwd_ms for n in c.nodes] + [h.grad_ms for h in c.hops])
    return l_fwd, l_back


def aggregation_ms(c: PipelineCosts) -> float:
    """Upload of (M1, MP) to the aggregator, averaging, download to all data owners (means)."""
    return c.owner_mean("upload_model_ms") + c.aggregation_ms + c.owner_mean("download_model_ms")


def multihop(c: PipelineCosts) -> RoundEstimate:
    """The reference's multihop round time (one hop when there is one compute node)."""
    k, rb = c.num_owners, c.batches_per_round
    start = c.owner_mean("first_fwd_ms") + c.owner_mean("up_act_ms")
    end = c.owner_mean("down_grad_ms") + c.owner_mean("first_bwd_ms")
    agg = aggregation_ms(c)
    if len(c.nodes) == 1:
        node = c.nodes[0]
        body = rb * k * (node.fwd_ms + node.bwd_ms)
        terms = {"start": start, "pipeline": body, "end": end, "aggregation": agg}
        return RoundEstimate(start + body + end + agg, terms)
    l_fwd, l_back = stage_maxima(c)
    pipe_empty = (
        sum(n.fwd_ms + n.bwd_ms for n in c.nodes)
        + sum(h.act_ms + h.grad_ms for h in c.hops)
        + c.owner_mean("down_act_ms")
        + c.owner_mean("last_ms")
        + c.owner_mean("up_grad_ms")
    )
    pipe_full = (rb * k - 1) * (l_fwd + l_back)
    terms = {
        "start": start,
        "pipe_empty": pipe_empty,
        "pipe_full": pipe_full,
        "end": end,
        "aggregation": agg,
        "L_fwd": l_fwd,
        "L_back": l_back,
    }
    return RoundEstimate(start + pipe_empty + pipe_full + end + agg, terms)


def horizontal_one_hop(c: PipelineCosts, helpers: int) -> RoundEstimate:
    """Horizontally scaled one-hop parallel SL: data owners spread evenly over ``helpers`` copies
    of a node that runs the whole middle; the most loaded helper sets the round time."""
    k, rb = c.num_owners, c.batches_per_round
    per_helper = -(-k // helpers)
    fwd = sum(n.fwd_ms for n in c.nodes)
    bwd = sum(n.bwd_ms for n in c.nodes)
    start = c.owner_mean("first_fwd_ms") + c.owner_mean("up_act_ms")
    end = c.owner_mean("down_grad_ms") + c.owner_mean("first_bwd_ms")
    body = rb * per_helper * (fwd + bwd)
    agg = aggregation_ms(c)
    terms = {"start": start, "pipeline": body, "end": end, "aggregation": agg}
    return RoundEstimate(start + body + end + agg, terms)


def sequential_sl(c: PipelineCosts) -> RoundEstimate:
    """SplitNN: data owners take turns; each batch makes the whole round trip alone."""
    trip = sum(
        o.count
        * (
            o.first_fwd_ms
            + o.up_act_ms
            + o.down_act_ms
            + o.last_ms
            + o.up_grad_ms
            + o.down_grad_ms
            + o.first_bwd_ms
        )
        for o in c.owners
    )
    middle = c.num_owners * (
        sum(n.fwd_ms + n.bwd_ms for n in c.nodes) + sum(h.act_ms + h.grad_ms for h in c.hops)
    )
    body = c.batches_per_round * (trip + middle)
    agg = aggregation_ms(c)
    return RoundEstimate(body + agg, {"training": body, "aggregation": agg})


def on_device_fedavg(profile: Profile, cluster: Cluster) -> RoundEstimate:
    """FedAvg with the whole model trained on each data owner; the slowest group sets the pace.

    Whole-model upload and download over each group's link make up aggregation (means).
    """
    t = cluster.training
    scale = t.batch_size / profile.batch_size
    batches = t.local_epochs * t.batches_per_epoch
    model_bytes = sum(layer.param_bytes for layer in profile.layers)
    training, agg, total = 0.0, 0.0, cluster.num_data_owners
    for group in cluster.data_owners:
        timings = [profile.timing(group.device, i) for i in range(1, profile.num_layers + 1)]
        per_batch = sum(lt.fwd + lt.bwd + lt.opt for lt in timings)
        training = max(training, batches * per_batch * scale * group.slowdown)
        move = transfer_ms(model_bytes, group.link_bps, group.link_latency_s)
        agg += 2 * move * group.count / total
    return RoundEstimate(training + agg, {"training": training, "aggregation": agg})
