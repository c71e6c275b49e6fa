"""Co-located compute nodes (a shared host) and data owners behind one shared uplink, in the cluster
file and the simulation; the straggler analysis (per-role busy time, the role that bounds)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pydantic import ValidationError

from mpsl.cluster import Cluster
from mpsl.errors import ConfigError
from mpsl.estimate.simulate import simulate_deployment
from mpsl.estimate.summary import estimate
from mpsl.tasks import TaskKind, TaskRecord
from small_setups import TOY_CUTS, TOY_PROFILE, toy_cluster


def _overlaps(records: list[TaskRecord]) -> bool:
    spans = sorted((r.start, r.end) for r in records if r.end > r.start)
    return any(b[0] < a[1] - 1e-12 for a, b in itertools.pairwise(spans))


def test_two_nodes_on_one_single_core_host_take_longer_than_on_two_hosts() -> None:
    apart = simulate_deployment(TOY_PROFILE, toy_cluster(), TOY_CUTS, trace=True)
    shared = simulate_deployment(TOY_PROFILE, toy_cluster(hosts=("h", "h")), TOY_CUTS, trace=True)
    assert shared.round_ms > apart.round_ms
    # the same work, but never two tasks of the host at once
    assert [n.busy_ms for n in shared.nodes] == [n.busy_ms for n in apart.nodes]
    host_tasks = [r for r in shared.trace if r.node in ("n0", "n1")]
    assert not _overlaps(host_tasks)
    assert _overlaps([r for r in apart.trace if r.node in ("n0", "n1")])
    # the host is a role: the busiest, most of the epoch (each node alone, about half of it)
    est = estimate(TOY_PROFILE, toy_cluster(hosts=("h", "h")), TOY_CUTS, method="sim")
    assert est.bound is not None and est.bound.name == "host h"
    assert est.to_json()["bound"]["share_of_epoch"] > 0.8
    assert est.to_json()["roles"]["n0"]["busy_s"] < 0.6 * est.bound.busy_ms / 1000
    # a host with a core per node is no different from two machines
    two_cores = simulate_deployment(TOY_PROFILE, toy_cluster(hosts=("h", "h"), cores=2), TOY_CUTS)
    assert two_cores.round_ms == pytest.approx(apart.round_ms)


def test_owners_behind_one_uplink_take_longer_than_on_their_own_links() -> None:
    own = simulate_deployment(TOY_PROFILE, toy_cluster(), TOY_CUTS, trace=True)
    shared = simulate_deployment(TOY_PROFILE, toy_cluster(uplink_bps=1e6), TOY_CUTS, trace=True)
    assert shared.round_ms > own.round_ms
    assert shared.aggregation_ms > own.aggregation_ms  # uploads take turns too
    up, down = (TaskKind.UP_ACT, TaskKind.UP_GRAD), (TaskKind.DOWN_ACT, TaskKind.DOWN_GRAD)
    for kinds in (up, down):
        assert not _overlaps([r for r in shared.trace if r.kind in kinds])
    assert _overlaps([r for r in own.trace if r.kind in up])  # all start their batch at once
    # the uplink is a role of its own; the owners' own link time moved onto it
    busy = shared.busy()
    assert busy["ap.up"] > 0 and busy["ap.down"] > 0
    assert all(o.link_ms == 0 for o in shared.owners)
    # a transfer goes at the slower of the owner's own link and the uplink
    fast = simulate_deployment(TOY_PROFILE, toy_cluster(uplink_bps=1e9), TOY_CUTS)
    slow = simulate_deployment(TOY_PROFILE, toy_cluster(uplink_bps=5e5), TOY_CUTS)
    assert fast.round_ms == pytest.approx(shared.round_ms) and slow.round_ms > shared.round_ms


def test_the_closed_form_refuses_shared_hosts_and_uplinks() -> None:
    for clus in (toy_cluster(hosts=("h", "h")), toy_cluster(uplink_bps=1e6)):
        with pytest.raises(ConfigError, match="use method 'sim'"):
            estimate(TOY_PROFILE, clus, TOY_CUTS)
        assert estimate(TOY_PROFILE, clus, TOY_CUTS, method="sim").round_ms > 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hosts": [{"name": "nowhere"}]}, "hosts\\[0\\] 'nowhere' is the host of no compute node"),
        ({"group_uplink": "ap"}, "data_owners\\[0\\].uplink 'ap' is not in links.uplinks"),
        ({"host_cores": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_hosts_and_uplinks_are_named(change: dict[str, Any], message: str) -> None:
    spec = toy_cluster(hosts=("h", None)).model_dump(exclude_none=True)
    if "hosts" in change:
        spec["hosts"] = change["hosts"]
    if "group_uplink" in change:
        spec["data_owners"][0]["uplink"] = change["group_uplink"]
    if "host_cores" in change:
        spec["hosts"] = [{"name": "h", "cores": 0}]
    with pytest.raises(ValidationError, match=message):
        Cluster.model_validate(spec)


def test_epoch_and_aggregation_add_up_to_the_round() -> None:
    for method in ("closed", "sim"):
        est = estimate(TOY_PROFILE, toy_cluster(), TOY_CUTS, method=method)
        assert est.training_ms > 0 and est.aggregation_ms > 0
        assert est.training_ms + est.aggregation_ms == pytest.approx(est.round_ms)
        out = est.to_json()
        assert out["epoch_s"] + out["aggregation_s"] == pytest.approx(out["round_s"])


def test_a_data_owner_with_heavy_own_layers_bounds_the_round() -> None:
    # Balanced: a compute node, whose work all data owners share, is the busiest role.
    est = estimate(TOY_PROFILE, toy_cluster(), TOY_CUTS, method="sim")
    assert est.bound is not None and est.bound.name in ("n0", "n1")
    # Owner 2 computes 20x slower: it is busy almost the whole epoch, and bounds the round.
    slow = estimate(TOY_PROFILE, toy_cluster(), TOY_CUTS, method="sim", stragglers={1: 20.0})
    assert slow.bound is not None and slow.bound.name == "owner2"
    assert slow.to_json()["bound"]["share_of_epoch"] > 0.9
    util = {r.name: r.utilization for r in slow.roles}
    assert util["owner2"] > 5 * util["owner1"]
    # The closed form names the same busiest role from the work alone (stragglers aside).
    closed = estimate(TOY_PROFILE, toy_cluster(), TOY_CUTS)
    assert closed.bound is not None and closed.bound.name == est.bound.name
