"""Invariants of the simulation on random small pipelines, checked on its trace."""

from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from mpsl.estimate.costs import HopCosts, NodeCosts, OwnerCosts, PipelineCosts
from mpsl.estimate.simulate import SimResult, simulate
from mpsl.tasks import Order, TaskKind, TaskRecord, owner_endpoint, owner_link

# Every per-batch time of a data-owner group, in declaration order (the first 7: one batch's trip);
# the optional fields (a shared uplink) keep their defaults: private links.
OWNER_FIELDS = [f.name for f in dataclasses.fields(OwnerCosts) if f.default is dataclasses.MISSING][
    2:
]
# Whole milliseconds make simultaneous events common, which is where ordering bugs hide.
small = st.integers(0, 4).map(float)
positive = st.integers(1, 4).map(float)


@st.composite
def pipelines(draw: st.DrawFn) -> PipelineCosts:
    groups = tuple(
        OwnerCosts(f"g{i}", draw(st.integers(1, 3)), *(draw(small) for _ in OWNER_FIELDS))
        for i in range(draw(st.integers(1, 2)))
    )
    n = draw(st.integers(1, 3))
    nodes = tuple(NodeCosts(f"n{i}", i, i, draw(positive), draw(positive)) for i in range(n))
    hops = tuple(HopCosts(draw(positive), draw(positive)) for _ in range(n - 1))
    return PipelineCosts(groups, nodes, hops, draw(st.integers(1, 3)), draw(small))


def _chain(r: SimResult, n: int, k: int, b: int) -> list[TaskRecord]:
    """Owner k's batch b in the order the semantics prescribe."""
    names = [f"n{i}" for i in range(n)]
    me, link = owner_endpoint(k), owner_link(k)
    steps = [(me, "first_fwd"), (link, "up_act")]
    for i in range(n):
        steps.append((names[i], "fwd"))
        if i < n - 1:
            steps.append((f"{names[i]}->{names[i + 1]}", "act"))
    steps += [(link, "down_act"), (me, "last"), (link, "up_grad")]
    for i in reversed(range(n)):
        steps.append((names[i], "bwd"))
        if i > 0:
            steps.append((f"{names[i]}->{names[i - 1]}", "grad"))
    steps += [(link, "down_grad"), (me, "first_bwd")]
    index = {(t.node, t.kind): t for t in r.trace if t.owner == k and t.batch == b}
    assert len(index) == len(steps)
    return [index[s] for s in steps]


def _covered(intervals: list[tuple[float, float]], a: float, b: float) -> bool:
    """Whether [a, b) lies inside the union of the (sorted, disjoint) intervals."""
    for start, end in intervals:
        if start <= a < end:
            a = end
    return a >= b


@settings(max_examples=150, deadline=None)
@given(pipelines(), st.sampled_from(["fifo", "backward-first"]))
def test_trace_obeys_the_semantics(c: PipelineCosts, policy: str) -> None:
    r = simulate(c, policy=policy, trace=True)
    n, k_total, rb = len(c.nodes), c.num_owners, c.batches_per_round
    arrivals: dict[str, list[tuple[TaskRecord, float]]] = defaultdict(list)
    for k in range(k_total):
        prev_end = 0.0
        for b in range(rb):
            chain = _chain(r, n, k, b)
            assert chain[0].start == prev_end  # next batch starts when the last one ends
            for before, t in itertools.pairwise(chain):
                shared = t.node in r_names(r)
                # Private steps never wait; node and link jobs wait at most for their resource.
                assert t.start >= before.end if shared else t.start == before.end
                if shared:
                    arrivals[t.node].append((t, before.end))
            prev_end = chain[-1].end
        assert r.owner_finish_ms[k] / 1000 == prev_end  # the trace is in seconds
    for name, jobs in arrivals.items():
        busy = sorted((t.start, t.end) for t, _ in jobs)
        assert all(e1 <= s2 for (_, e1), (s2, _) in itertools.pairwise(busy))
        for t, arrived in jobs:
            assert _covered(busy, arrived, t.start)  # never idle while work waits
        _check_order(name, jobs, policy)
    assert r.training_ms == max(r.owner_finish_ms)
    for node, nc in zip(r.nodes, c.nodes, strict=True):
        assert node.busy_ms == rb * k_total * (nc.fwd_ms + nc.bwd_ms)
        assert node.tasks == 2 * rb * k_total
    assert r.round_ms >= r.training_ms


def r_names(r: SimResult) -> set[str]:
    return {n.name for n in r.nodes} | {ln.name for ln in r.links}


def _check_order(name: str, jobs: list[tuple[TaskRecord, float]], policy: str) -> None:
    """The job that starts is the first by policy among those waiting at that moment."""

    def key(t: TaskRecord, arrived: float) -> tuple[float, ...]:
        first = 0 if (policy == "fifo" or "->" in name or t.kind == "bwd") else 1
        return (first, arrived, t.owner)

    for t, arrived in jobs:
        for u, u_arrived in jobs:
            waiting = u_arrived <= t.start < u.start
            assert not waiting or key(t, arrived) < key(u, u_arrived)


@settings(max_examples=30, deadline=None)
@given(pipelines())
def test_one_owner_equals_sequential_sum(c: PipelineCosts) -> None:
    solo = PipelineCosts(
        (c.owners[0].__class__(**{**c.owners[0].__dict__, "count": 1}),),
        c.nodes,
        c.hops,
        c.batches_per_round,
        c.aggregation_ms,
    )
    o = solo.owners[0]
    trip = sum(getattr(o, f) for f in OWNER_FIELDS[:7])
    trip += sum(x.fwd_ms + x.bwd_ms for x in c.nodes) + sum(h.act_ms + h.grad_ms for h in c.hops)
    r = simulate(solo)
    assert r.round_ms == c.batches_per_round * trip + o.upload_model_ms + c.aggregation_ms + (
        o.download_model_ms
    )


COMPUTE = {"first_fwd", "fwd", "last", "bwd", "first_bwd"}


def _compute_intervals(r: SimResult) -> list[tuple[float, float]]:
    return sorted((t.start, t.end) for t in r.trace if t.kind in COMPUTE)


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    ends: list[float] = []
    most = 0
    for start, end in intervals:
        ends = [e for e in ends if e > start] + [end]
        most = max(most, len(ends))
    return most


@settings(max_examples=60, deadline=None)
@given(pipelines(), st.sampled_from(["fifo", "backward-first"]), st.integers(1, 3))
def test_a_shared_host_runs_at_most_its_cores_and_never_idles_on_one(
    c: PipelineCosts, policy: str, cores: int
) -> None:
    r = simulate(c, policy=policy, trace=True, cores=cores)
    busy = _compute_intervals(r)
    assert _most_at_once([(s, e) for s, e in busy if e > s]) <= cores
    # Every task still runs once and every batch still follows its route.
    rb, k_total = c.batches_per_round, c.num_owners
    for k in range(k_total):
        prev_end = 0.0
        for b in range(rb):
            chain = _chain(r, len(c.nodes), k, b)
            assert chain[0].start >= prev_end
            assert all(t.start >= u.end for u, t in itertools.pairwise(chain))
            prev_end = chain[-1].end
    if cores == 1:
        # Instant links: one core is never idle while a task is ready, so training is all work.
        no_links = dict.fromkeys(("up_act_ms", "down_act_ms", "up_grad_ms", "down_grad_ms"), 0.0)
        instant = dataclasses.replace(
            c,
            owners=tuple(dataclasses.replace(o, **no_links) for o in c.owners),
            hops=tuple(HopCosts(0.0, 0.0) for _ in c.hops),
        )
        work = sum(
            o.count * rb * (o.first_fwd_ms + o.last_ms + o.first_bwd_ms) for o in c.owners
        ) + sum(k_total * rb * (x.fwd_ms + x.bwd_ms) for x in c.nodes)
        assert simulate(instant, policy=policy, cores=1).training_ms == work


@settings(max_examples=40, deadline=None)
@given(pipelines(), st.sampled_from(["fifo", "backward-first"]))
def test_a_host_with_a_core_per_role_is_no_constraint(c: PipelineCosts, policy: str) -> None:
    alone = simulate(c, policy=policy)
    shared = simulate(c, policy=policy, cores=c.num_owners + len(c.nodes))
    assert shared.round_ms == alone.round_ms
    assert shared.owner_finish_ms == alone.owner_finish_ms


@st.composite
def one_order(draw: st.DrawFn, k_total: int) -> Order:
    """A random valid order of k_total data owners: each one's fwd somewhere before its bwd."""
    steps: list[tuple[int, str]] = []
    for k in draw(st.permutations(range(k_total))):
        at = draw(st.integers(0, len(steps)))
        steps.insert(at, (k, "fwd"))
        steps.insert(draw(st.integers(at + 1, len(steps))), (k, "bwd"))
    return Order.of(steps)


@settings(max_examples=60, deadline=None)
@given(st.data(), pipelines(), st.sampled_from([None, 1, 2]))
def test_every_node_runs_its_prescribed_order(
    data: st.DataObject, c: PipelineCosts, cores: int | None
) -> None:
    # One order for every node never deadlocks: a node's next task needs only tasks that come
    # before it in the same order, on every node.
    order = data.draw(one_order(c.num_owners))
    orders = dict.fromkeys(range(len(c.nodes)), order)
    r = simulate(c, policy="scheduled", orders=orders, trace=True, cores=cores)
    runs = len(order.actions) * c.batches_per_round
    expected = [(a.owner, a.batch, a.kind) for a in map(order.at, range(runs))]
    for node in r.nodes:
        ran = [(t.owner, t.batch, t.kind) for t in r.trace if t.node == node.name]
        assert ran == expected
    for k in range(c.num_owners):  # and every batch still follows its route
        for b in range(c.batches_per_round):
            chain = _chain(r, len(c.nodes), k, b)
            assert all(t.start >= u.end for u, t in itertools.pairwise(chain))
    assert {t.kind for t in r.trace if t.node in r_names(r)} <= {
        TaskKind.FWD, TaskKind.BWD, TaskKind.ACT, TaskKind.GRAD
    }  # fmt: skip
