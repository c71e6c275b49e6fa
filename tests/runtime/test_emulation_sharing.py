"""Emulated shared hosts and uplinks: the runtime's devices and links take turns as the cluster
file says, and the emulated round follows the simulation of the same cluster."""

from __future__ import annotations

import pytest

from mpsl.cluster import Cluster
from mpsl.emulate.emulation import Emulation
from mpsl.estimate.simulate import simulate_deployment
from mpsl.runtime.device import SharedHost
from small_setups import TOY_CUTS, TOY_PROFILE, toy_cluster


def _cluster(link_bps: float, host: bool = False, uplink: bool = False) -> Cluster:
    hosts = ("h", "h") if host else (None, None)
    return toy_cluster(hosts=hosts, link_bps=link_bps, uplink_bps=link_bps if uplink else None)


def test_a_shared_host_fills_the_earliest_gap_on_any_core() -> None:
    host = SharedHost("h", cores=1)
    assert host.claim(5.0, 2.0) == 5.0  # [5, 7)
    assert host.claim(1.0, 3.0) == 1.0  # ready earlier, fits before: [1, 4)
    assert host.claim(3.0, 2.0) == 7.0  # [4, 5) is too short: after the last
    two = SharedHost("h2", cores=2)
    assert [two.claim(0.0, 1.0) for _ in range(3)] == [0.0, 0.0, 1.0]


# Compute-bound (fast links) for a shared host, link-bound (40 ms a transfer) for an uplink.
@pytest.mark.parametrize(("sharing", "link_bps"), [({"host": True}, 1e9), ({"uplink": True}, 2e5)])
def test_emulated_sharing_takes_longer_and_follows_the_simulation(
    sharing: dict[str, bool], link_bps: float
) -> None:
    shared, apart = _cluster(link_bps, **sharing), _cluster(link_bps)
    measured = {}
    for name, clus in (("shared", shared), ("apart", apart)):
        result = Emulation(TOY_PROFILE, clus, TOY_CUTS, time_scale=1.0).run()
        measured[name] = result.rounds[0].seconds * 1000.0
    predicted = {
        name: simulate_deployment(TOY_PROFILE, clus, TOY_CUTS).round_ms
        for name, clus in (("shared", shared), ("apart", apart))
    }
    assert predicted["shared"] > 1.15 * predicted["apart"]  # the setting makes sharing matter
    assert measured["shared"] > 1.1 * measured["apart"]
    # Emulated time follows the modelled deployment, not the machine running it: within 1% on an
    # idle machine; a thread running late can lose its turn on a shared host (9% seen under load).
    for name in measured:
        assert measured[name] == pytest.approx(predicted[name], rel=0.15)
