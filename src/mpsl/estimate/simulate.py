"""Discrete-event simulation of one round of multihop parallel split learning.

The runtime's emulation mode follows the same rules, so the two can be compared event by event:

- Each data owner has one batch in flight: batch b+1 starts when batch b's first-part backward ends.
  Its own compute (first-part forward, last part, first-part backward, each times its straggler
  factor) and its own link transfers (full duplex) are plain delays, unless its group sits behind
  a shared ``uplink``: then its transfers take turns with those of every owner behind that uplink,
  one at a time per direction in hand-over order (like a compute-to-compute link); the uplink's
  rate caps each transfer's and its latency adds to each.
- A compute node runs one task (forward or backward of its part) at a time, picked from its queue by
  the policy: ``fifo`` (earliest arrival first) or ``backward-first`` (any backward task before any
  forward task, earliest arrival first within a kind). A node given an ``Order`` runs exactly that
  order instead, batch after batch; a task that arrives before its turn waits (the runtime's
  ``scheduled`` policy). Handing output to a link never blocks a node.
- Each directed compute-to-compute link is a shared FIFO resource: one transfer at a time, in
  hand-over order; a link's latency is added after the transfer without occupying the link.
- Simultaneous events are all applied before any node or link picks its next job; ties in a queue
  go to the lower data-owner index.
- Compute nodes that name the same ``host`` share its cores: a task starts only when one of the
  host's cores is free (a core runs one task at its profiled time); waiting tasks get cores in the
  order they became ready (ties: node order). Optionally (``cores``) every role computes on one
  shared host instead, as in-process runs do, data owners' own compute included (ties: the compute
  nodes' first). The in-process engine's cooperative scheduling is ``cores=1``.
- When every data owner has run r*B batches, each uploads its first and last part (in parallel,
  but one after another behind a shared uplink), the aggregator averages once all uploads are in,
  then each downloads (likewise). Round time is the end of the last download. Compute nodes average
  their own instances at no cost.
- Straggler analysis: every role's busy time (a compute node's tasks; a data owner's own compute
  and its own link; a link's transfers) over the round is its utilization; the role busy the
  longest bounds the round (no role can finish its work faster than its busy time).

The trace is in the runtime's words (``mpsl.tasks``): a data owner's own compute on ``owner1``..,
its link on ``owner1.link``.., hops on ``a->b``, compute nodes under the cluster's node names.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mpsl.cluster import Cluster
from mpsl.errors import ConfigError
from mpsl.estimate.costs import OwnerCosts, PipelineCosts, pipeline_costs
from mpsl.profile.format import Profile
from mpsl.tasks import (
    AGGREGATOR,
    Order,
    QueuePolicy,
    TaskKind,
    TaskRecord,
    hop_link,
    owner_endpoint,
    owner_link,
)


@dataclass(frozen=True)
class NodeStats:
    """A compute node over one round; queue lengths count waiting tasks, not the running one."""

    name: str
    busy_ms: float
    utilization: float  # busy / round time
    max_queue: int
    mean_queue: float  # time-weighted over the training phase
    tasks: int
    max_in_flight: int = 0  # most batches forwarded here and not yet backpropagated, at once


@dataclass(frozen=True)
class LinkStats:
    """A directed compute-to-compute link over one round."""

    name: str
    busy_ms: float
    transfers: int


@dataclass(frozen=True)
class HostStats:
    """A shared host over one round: its compute nodes' busy time per core."""

    name: str  # "host <name>"; "host" for --shared-cores (every role on one host)
    busy_ms: float  # busy time of the tasks it ran / its cores
    cores: int


@dataclass(frozen=True)
class OwnerStats:
    """A data owner over one round: its own compute, and its own link (unless shared)."""

    name: str
    compute_ms: float
    link_ms: float  # transfers on its own link; 0 behind a shared uplink (see the uplink's stats)
    utilization: float  # (compute + link) / round time
    finish_ms: float  # when its last batch ended


@dataclass(frozen=True)
class SimResult:
    """Simulated round: its time, its phases and what each node and link did."""

    round_ms: float
    training_ms: float  # until the last data owner finished its last batch
    aggregation_ms: float  # upload, averaging, download after training
    policy: QueuePolicy
    nodes: tuple[NodeStats, ...]
    links: tuple[LinkStats, ...]
    owner_finish_ms: tuple[float, ...]
    trace: tuple[TaskRecord, ...] = ()  # seconds from the start of the round
    owners: tuple[OwnerStats, ...] = ()
    hosts: tuple[HostStats, ...] = ()

    @property
    def round_s(self) -> float:
        """Round time in seconds."""
        return self.round_ms / 1000.0

    def terms(self) -> dict[str, float]:
        """The simulated phases in milliseconds, like a closed-form estimate's terms."""
        return {"training": self.training_ms, "aggregation": self.aggregation_ms}

    def busy(self) -> dict[str, float]:
        """Busy milliseconds of every role: compute nodes, data owners (own compute and own
        link), links (compute-to-compute and shared uplinks), shared hosts (per core)."""
        out = {n.name: n.busy_ms for n in self.nodes}
        out.update({o.name: o.compute_ms + o.link_ms for o in self.owners})
        out.update({ln.name: ln.busy_ms for ln in self.links})
        out.update({h.name: h.busy_ms for h in self.hosts})
        return out

    def bottleneck(self) -> tuple[str, float]:
        """(role, busy share of the training phase) of the role busy longest: the one that
        bounds the round (ties: the first in busy()'s order)."""
        busy = self.busy()
        name = max(busy, key=lambda r: busy[r])
        return name, busy[name] / self.training_ms if self.training_ms > 0 else 0.0


@dataclass(frozen=True)
class _Stage:
    """One step of a batch's route: a private delay (no resource) or a job on a node or link."""

    node: str  # where it is recorded in the trace
    kind: TaskKind
    ms: float  # for a link: the time it occupies the link, latency excluded
    resource: int | None = None  # index into _Simulation.resources
    latency: float = 0.0

    @property
    def computes(self) -> bool:
        """A task of a compute node or of a data owner's own compute (not a transfer)."""
        return self.kind.computes


class _Resource:
    """A node or link: one job at a time from a priority queue, with busy and queue accounting.

    With an ``order`` a job's priority is its position in the node's run, and only the job whose
    turn it is may start.
    """

    def __init__(self, name: str, order: Order | None = None) -> None:
        self.name = name
        self.order = order
        self.queue: list[tuple[Any, ...]] = []
        self.busy = False
        self.busy_ms = 0.0
        self.jobs = 0
        self.max_queue = 0
        self.area = 0.0  # integral of queue length over time
        self.last_change = 0.0
        self.idle_since = 0.0  # when its last job ended
        self.in_flight = 0  # batches holding saved activations here (compute nodes)
        self.max_in_flight = 0

    def _account(self, now: float) -> None:
        self.area += len(self.queue) * (now - self.last_change)
        self.last_change = now

    def ready(self) -> bool:
        """A job waits and, under an order, it is its turn."""
        return bool(self.queue) and (self.order is None or self.queue[0][0] == self.jobs)

    def push(self, now: float, key: tuple[Any, ...]) -> None:
        self._account(now)
        heapq.heappush(self.queue, key)

    def pop(self, now: float) -> tuple[Any, ...]:
        self._account(now)
        return heapq.heappop(self.queue)


def _transfer(link: str, kind: TaskKind, ms: float, latency: float, shared: int | None) -> _Stage:
    """A data owner's transfer: a plain delay on its own link, or a job on a shared uplink (whose
    latency delays delivery without occupying it)."""
    if shared is None:
        return _Stage(link, kind, ms)
    return _Stage(link, kind, ms - latency, shared, latency)


def uplink_names(c: PipelineCosts) -> list[str]:
    """The shared uplinks of ``c``'s data owners, in order of first use."""
    return list(dict.fromkeys(o.uplink for o in c.owners if o.uplink is not None))


def _routes(c: PipelineCosts, factors: list[float], latency: list[float]) -> list[list[_Stage]]:
    """The stages every batch of each data owner goes through, in order (resources: nodes
    0..N-1, then forward links 0..N-2, then backward links 0..N-2, then each shared uplink's up
    and down direction)."""
    n = len(c.nodes)
    uplinks = uplink_names(c)
    owners = [o for o in c.owners for _ in range(o.count)]
    fwd = [_Stage(x.name, TaskKind.FWD, x.fwd_ms, i) for i, x in enumerate(c.nodes)]
    bwd = [_Stage(x.name, TaskKind.BWD, x.bwd_ms, i) for i, x in enumerate(c.nodes)]
    names = [x.name for x in c.nodes]
    act = [_Stage(hop_link(names[i], names[i + 1]), TaskKind.ACT, h.act_ms - latency[i], n + i,
                  latency[i]) for i, h in enumerate(c.hops)]  # fmt: skip
    grad = [_Stage(hop_link(names[i + 1], names[i]), TaskKind.GRAD, h.grad_ms - latency[i],
                   2 * n - 1 + i, latency[i]) for i, h in enumerate(c.hops)]  # fmt: skip
    middle_fwd = [s for i in range(n) for s in ([fwd[i], act[i]] if i < n - 1 else [fwd[i]])]
    middle_bwd = [s for i in reversed(range(n)) for s in ([bwd[i], grad[i - 1]] if i else [bwd[i]])]
    routes = []
    for k, (o, f) in enumerate(zip(owners, factors, strict=True)):
        me, link = owner_endpoint(k), owner_link(k)
        up = down = None  # a private link: its transfers are plain delays
        if o.uplink is not None:
            up = 3 * n - 2 + 2 * uplinks.index(o.uplink)
            down = up + 1
        first_lat, last_lat = o.first_latency_ms, o.last_latency_ms
        routes.append([
            _Stage(me, TaskKind.FIRST_FWD, o.first_fwd_ms * f),
            _transfer(link, TaskKind.UP_ACT, o.up_act_ms, first_lat, up),
            *middle_fwd,
            _transfer(link, TaskKind.DOWN_ACT, o.down_act_ms, last_lat, down),
            _Stage(me, TaskKind.LAST, o.last_ms * f),
            _transfer(link, TaskKind.UP_GRAD, o.up_grad_ms, last_lat, up),
            *middle_bwd,
            _transfer(link, TaskKind.DOWN_GRAD, o.down_grad_ms, first_lat, down),
            _Stage(me, TaskKind.FIRST_BWD, o.first_bwd_ms * f),
        ])  # fmt: skip
    return routes


class _Simulation:
    """One round's event loop; build, call run(), read the fields."""

    def __init__(self, costs: PipelineCosts, policy: QueuePolicy, routes: list[list[_Stage]],
                 trace: bool, cores: int | None = None,
                 orders: Mapping[int, Order] | None = None) -> None:  # fmt: skip
        self.c = costs
        n = len(costs.nodes)
        # Free cores of each shared host; which host each compute node and the data owners'
        # own compute use (None: a device of its own).
        self.free: list[int]
        self.node_pool: list[int | None]
        self.owner_pool: int | None = None
        if cores is not None:  # every role on one host
            self.free, self.node_pool, self.owner_pool = [cores], [0] * n, 0
        else:
            hosts = list(costs.host_cores)
            self.free = [costs.host_cores[h] for h in hosts]
            self.node_pool = [hosts.index(x.host) if x.host else None for x in costs.nodes]
        # data owners' own compute waiting for a core: (ready time, seq, owner, batch, stage)
        self.host_queue: list[tuple[float, int, int, int, int]] = []
        self.policy = policy
        self.routes = routes
        self.keep_trace = trace
        # (node, owner, batch, kind, start ms, end ms): TaskRecords once sorted
        self.records: list[tuple[str, int, int, TaskKind, float, float]] = []
        names = [x.name for x in costs.nodes]
        pairs = list(itertools.pairwise(names))
        self.resources = [_Resource(x, (orders or {}).get(i)) for i, x in enumerate(names)]
        self.resources += [_Resource(hop_link(a, b)) for a, b in pairs]
        self.resources += [_Resource(hop_link(b, a)) for a, b in pairs]
        for name in uplink_names(costs):
            self.resources += [_Resource(f"{name}.up"), _Resource(f"{name}.down")]
        # (time, seq, done, owner, batch, stage); done: the stage's job on its resource ended
        self.events: list[tuple[float, int, bool, int, int, int]] = []
        self.seq = itertools.count()
        self.finish = [0.0] * len(routes)

    def record(self, node: str, k: int, b: int, kind: TaskKind, start: float, end: float) -> None:
        if self.keep_trace:
            self.records.append((node, k, b, kind, start, end))

    def trace(self) -> tuple[TaskRecord, ...]:
        """The recorded tasks as TaskRecords in seconds, by start, end, node and data owner."""
        rows = sorted(self.records, key=lambda r: (r[4], r[5], r[0], r[1]))
        return tuple(
            TaskRecord(node, k, b, 0, kind, start / 1000.0, end / 1000.0)
            for node, k, b, kind, start, end in rows
        )

    def at(self, time: float, done: bool, k: int, b: int, s: int) -> None:
        heapq.heappush(self.events, (time, next(self.seq), done, k, b, s))

    def run(self) -> None:
        for k in range(len(self.routes)):
            self.at(0.0, False, k, 0, 0)
        while self.events:
            now = self.events[0][0]
            while self.events and self.events[0][0] == now:
                _, _, done, k, b, s = heapq.heappop(self.events)
                if done:
                    self.job_done(now, k, b, s)
                else:
                    self.enter(now, k, b, s)
            self.dispatch(now)
        stuck = [res for res in self.resources if res.queue]
        if stuck:  # only prescribed orders can leave work waiting for good
            waits = ", ".join(
                f"{res.name} waits to run {res.order.at(res.jobs)}" for res in stuck if res.order
            )
            raise ConfigError(
                f"the prescribed task orders deadlock: {waits} (data owner, F/B, batch), and none "
                "of them can arrive; order each node's tasks as the nodes before and after it do",
                field="orders",
            )

    def enter(self, now: float, k: int, b: int, s: int) -> None:
        """Batch b of owner k reaches stage s of its route (past the end: the batch is done)."""
        route = self.routes[k]
        if s == len(route):
            if b + 1 < self.c.batches_per_round:
                self.enter(now, k, b + 1, 0)
            else:
                self.finish[k] = now
            return
        stage = route[s]
        # (Work of no time needs no core: it ends at once, before anyone picks a next job.)
        if stage.resource is None and self.owner_pool is not None and stage.computes and stage.ms:
            heapq.heappush(self.host_queue, (now, next(self.seq), k, b, s))
        elif stage.resource is None:
            self.record(stage.node, k, b, stage.kind, now, now + stage.ms)
            self.at(now + stage.ms, False, k, b, s + 1)
        else:
            res = self.resources[stage.resource]
            if res.order is not None:  # its place in the node's prescribed run
                first = res.order.position(k, stage.kind, b)
            else:
                first = self.policy.rank(stage.kind)
            res.push(now, (first, now, k, next(self.seq), b, s))

    def job_done(self, now: float, k: int, b: int, s: int) -> None:
        stage = self.routes[k][s]
        pool = self.pool(stage)
        if pool is not None:
            self.free[pool] += 1
        if stage.resource is None:  # a data owner's own compute, on a shared core
            self.enter(now, k, b, s + 1)
            return
        res = self.resources[stage.resource]
        res.busy, res.idle_since = False, now
        # A batch holds its saved activations at a node from its forward to its backward.
        if stage.kind is TaskKind.FWD:
            res.in_flight += 1
            res.max_in_flight = max(res.max_in_flight, res.in_flight)
        elif stage.kind is TaskKind.BWD:
            res.in_flight -= 1
        if stage.latency > 0:
            self.at(now + stage.latency, False, k, b, s + 1)
        else:
            self.enter(now, k, b, s + 1)

    def pool(self, stage: _Stage) -> int | None:
        """The shared host whose core a computing stage holds (None: none)."""
        if not stage.computes:
            return None
        if stage.resource is None:
            return self.owner_pool
        return self.node_pool[stage.resource]

    def dispatch(self, now: float) -> None:
        """Every idle node and link with work waiting starts its next job (on a shared host,
        compute starts only as cores allow)."""
        n = len(self.c.nodes)
        for i, res in enumerate(self.resources):
            if not res.busy and res.ready() and (i >= n or self.node_pool[i] is None):
                self.start(now, res)
        for pool in range(len(self.free)):
            self.share_cores(now, n, pool)
        for res in self.resources:
            # Counted once jobs have started: a task that finds its resource idle never waits.
            res.max_queue = max(res.max_queue, len(res.queue))

    def start(self, now: float, res: _Resource) -> None:
        *_, k, _, b, s = res.pop(now)
        stage = self.routes[k][s]
        res.busy, res.busy_ms, res.jobs = True, res.busy_ms + stage.ms, res.jobs + 1
        self.record(stage.node, k, b, stage.kind, now, now + stage.ms)
        self.at(now + stage.ms, True, k, b, s)

    def share_cores(self, now: float, n: int, pool: int) -> None:
        """Free cores of host ``pool`` go to its waiting compute, the earliest ready first."""
        while self.free[pool] > 0:
            # (ready time, tie, node index or -1 for a data owner's compute). A node's next task
            # asks for a core once it arrived and the node finished its previous one.
            ready = [(max(res.queue[0][1], res.idle_since), i, i)
                     for i, res in enumerate(self.resources[:n])
                     if self.node_pool[i] == pool and not res.busy and res.ready()]  # fmt: skip
            if self.host_queue and self.owner_pool == pool:
                ready.append((self.host_queue[0][0], n, -1))
            if not ready:
                return
            self.free[pool] -= 1
            *_, which = min(ready)
            if which >= 0:
                self.start(now, self.resources[which])
                continue
            _, _, k, b, s = heapq.heappop(self.host_queue)
            stage = self.routes[k][s]
            self.record(stage.node, k, b, stage.kind, now, now + stage.ms)
            self.at(now + stage.ms, True, k, b, s)

    def aggregate(self, training: float) -> float:
        """Round end: parallel uploads, averaging once all are in, parallel downloads."""
        owners = [o for o in self.c.owners for _ in range(o.count)]
        ups = self.moves(training, owners, TaskKind.UPLOAD)
        averaged = max(ups) + self.c.aggregation_ms
        self.record(AGGREGATOR, -1, -1, TaskKind.AGGREGATE, max(ups), averaged)
        return max(self.moves(averaged, owners, TaskKind.DOWNLOAD))

    def moves(self, start: float, owners: list[OwnerCosts], kind: TaskKind) -> list[float]:
        """When each owner's model upload (or download) from ``start`` arrives: at once on its own
        link, one after another in owner order behind a shared uplink."""
        free: dict[str, float] = {}
        ends = []
        for k, o in enumerate(owners):
            ms = o.upload_model_ms if kind is TaskKind.UPLOAD else o.download_model_ms
            begin = start
            if o.uplink is not None:
                lat = min(o.model_latency_ms, ms)
                begin = free.get(o.uplink, start)
                free[o.uplink] = begin + ms - lat
            self.record(owner_link(k), k, -1, kind, begin, begin + ms)
            ends.append(begin + ms)
        return ends


def simulate(
    costs: PipelineCosts,
    *,
    policy: QueuePolicy | str = QueuePolicy.FIFO,
    stragglers: Mapping[int, float] | None = None,
    hop_latency_ms: Sequence[float] | None = None,
    trace: bool = False,
    cores: int | None = None,
    orders: Mapping[int, Order] | None = None,
) -> SimResult:
    """Simulate one round of ``costs``.

    ``stragglers`` maps a 0-based data-owner index (groups in cluster order) to a factor that
    multiplies that owner's own compute. ``hop_latency_ms[i]`` is the part of hop i's transfer time
    that is latency (it delays delivery but does not occupy the link); default none. ``cores``:
    every role computes on one host with this many cores (default: each on its own device).
    ``orders`` maps a compute node's 0-based chain position to the ``Order`` it runs, which must
    serve every data owner; the others follow ``policy`` (``scheduled``: every node needs one).
    """
    if cores is not None and cores < 1:
        raise ConfigError(f"a shared host needs at least 1 core; got {cores}", field="cores")
    pol = QueuePolicy.parse(policy, field="policy")
    _check_orders(costs, pol, orders or {})
    k_total = costs.num_owners
    factors = [1.0] * k_total
    for k, factor in (stragglers or {}).items():
        if not 0 <= k < k_total:
            raise ConfigError(
                f"straggler index {k} is not a data owner; choose 0..{k_total - 1}",
                field="stragglers",
            )
        if factor <= 0:
            raise ConfigError(
                f"straggler factor of owner {k} must be positive; got {factor}", field="stragglers"
            )
        factors[k] = float(factor)
    latency = list(hop_latency_ms) if hop_latency_ms is not None else [0.0] * len(costs.hops)
    if len(latency) != len(costs.hops):
        raise ConfigError(
            f"need {len(costs.hops)} hop latencies, got {len(latency)}", field="hop_latency_ms"
        )
    for hop, lat in zip(costs.hops, latency, strict=True):
        if not 0 <= lat <= min(hop.act_ms, hop.grad_ms):
            raise ConfigError(
                f"hop latency {lat} ms must lie in 0..its transfer time", field="hop_latency_ms"
            )
    sim = _Simulation(costs, pol, _routes(costs, factors, latency), trace, cores, orders)
    sim.run()
    training = max(sim.finish)
    round_ms = sim.aggregate(training)
    n = len(costs.nodes)
    nodes = tuple(
        NodeStats(
            name=x.name,
            busy_ms=x.busy_ms,
            utilization=x.busy_ms / round_ms if round_ms > 0 else 0.0,
            max_queue=x.max_queue,
            mean_queue=x.area / training if training > 0 else 0.0,
            tasks=x.jobs,
            max_in_flight=x.max_in_flight,
        )
        for x in sim.resources[:n]
    )
    links = tuple(LinkStats(x.name, x.busy_ms, x.jobs) for x in sim.resources[n:])
    owners = []
    rb = costs.batches_per_round
    for k, route in enumerate(sim.routes):
        compute = rb * sum(st.ms for st in route if st.resource is None and st.computes)
        link = rb * sum(st.ms for st in route if st.resource is None and not st.computes)
        owners.append(
            OwnerStats(
                name=owner_endpoint(k),
                compute_ms=compute,
                link_ms=link,
                utilization=(compute + link) / round_ms if round_ms > 0 else 0.0,
                finish_ms=sim.finish[k],
            )
        )
    hosts = tuple(
        HostStats(name, busy / cores, cores)
        for name, busy, cores in _host_busy(costs, nodes, owners, cores)
    )
    return SimResult(
        round_ms=round_ms,
        training_ms=training,
        aggregation_ms=round_ms - training,
        policy=pol,
        nodes=nodes,
        links=links,
        owner_finish_ms=tuple(sim.finish),
        trace=sim.trace(),
        owners=tuple(owners),
        hosts=hosts,
    )


def _host_busy(
    costs: PipelineCosts,
    nodes: Sequence[NodeStats],
    owners: Sequence[OwnerStats],
    cores: int | None,
) -> list[tuple[str, float, int]]:
    """(role name, busy ms of all its tasks, cores) of each shared host."""
    if cores is not None:
        work = sum(n.busy_ms for n in nodes) + sum(o.compute_ms for o in owners)
        return [("host", work, cores)]
    return [
        (f"host {h}", sum(n.busy_ms for n, x in zip(nodes, costs.nodes, strict=True)
                          if x.host == h), c)
        for h, c in costs.host_cores.items()
    ]  # fmt: skip


def _check_orders(costs: PipelineCosts, policy: QueuePolicy, orders: Mapping[int, Order]) -> None:
    """Raise ConfigError unless each order is for a node of ``costs`` and serves every owner."""
    n, k_total = len(costs.nodes), costs.num_owners
    for i, order in orders.items():
        if not 0 <= i < n:
            raise ConfigError(
                f"an order is given for compute node {i}; the pipeline has nodes 0..{n - 1}",
                field="orders",
            )
        if order.owners != list(range(k_total)):
            raise ConfigError(
                f"the order of compute node {i} ({costs.nodes[i].name}) serves data owners "
                f"{order.owners}; expected all of 0..{k_total - 1}, as every batch passes every "
                "compute node",
                field="orders",
            )
    missing = [costs.nodes[i].name for i in range(n) if i not in orders]
    if policy is QueuePolicy.SCHEDULED and missing:
        raise ConfigError(
            f"the scheduled policy needs an order for every compute node; missing: "
            f"{', '.join(missing)}; give one or choose fifo or backward-first",
            field="orders",
        )


def hop_latencies_ms(costs: PipelineCosts, cluster: Cluster) -> list[float]:
    """Latency of each hop between consecutive compute nodes of ``costs``, in milliseconds."""
    names = [n.name for n in costs.nodes]
    return [1000.0 * cluster.link(a, b)[1] for a, b in itertools.pairwise(names)]


def simulate_deployment(
    profile: Profile,
    cluster: Cluster,
    cuts: Sequence[int],
    nodes: Sequence[str] | None = None,
    *,
    policy: QueuePolicy | str = QueuePolicy.FIFO,
    stragglers: Mapping[int, float] | None = None,
    aggregator_ms: float = 0.0,
    trace: bool = False,
    orders: Mapping[int, Order] | None = None,
) -> SimResult:
    """Simulate one round of ``cuts`` on ``cluster``: the ideal pipeline time of that setting,
    which an emulated run of the same setting should match."""
    costs = pipeline_costs(profile, cluster, cuts, nodes, aggregator_ms=aggregator_ms)
    return simulate(
        costs,
        policy=policy,
        stragglers=stragglers,
        hop_latency_ms=hop_latencies_ms(costs, cluster),
        trace=trace,
        orders=orders,
    )
