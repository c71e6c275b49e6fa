"""A scenario from a profile and a cluster file: the deployment's own data owners and helpers.

Data owners come from the cluster's groups (``count`` each, in file order), helpers are its compute
nodes. A slowdown multiplies the times of its device (the group's for parts 1 and 3, the node's for
part 2); links are ``Cluster.link(group, node)`` (the group's rate unless a link override names the
pair), and each message also pays the link latency. A helper's capacity is its ``memory_bytes``.
The profile must be measured at the cluster's batch size: times do not scale linearly with it.
Timings the profile lacks are refused unless an ``Imputation`` is given (``mpsl.profile.impute``);
the imputed entries are returned with the scenario.
"""

from __future__ import annotations

from collections.abc import Sequence

from mpsl.cluster import Cluster
from mpsl.errors import ConfigError
from mpsl.estimate.costs import span_needs
from mpsl.profile.format import Profile
from mpsl.profile.impute import Imputation, Imputed, complete
from mpsl.schedule.parts import (
    OwnerSide,
    assemble,
    cut_bytes,
    helper_demand_bytes,
    owner_side,
    part_ranges,
    part_time,
)
from mpsl.schedule.scenario import Scenario


def from_cluster(
    profile: Profile,
    cluster: Cluster,
    cuts: Sequence[int],
    source: str = "cluster",
    imputation: Imputation | None = None,
) -> tuple[Scenario, tuple[Imputed, ...]]:
    """The scheduling scenario of ``cluster`` training ``profile``'s model cut at ``cuts``, and
    the timings imputed for it."""
    profile.require_devices(cluster.devices(), source)
    if cluster.training.batch_size != profile.batch_size:
        raise ConfigError(
            f"the cluster trains batches of {cluster.training.batch_size} but the profile of "
            f"{profile.model} was measured at {profile.batch_size}; profile at the cluster's batch "
            f"size or set training.batch_size to {profile.batch_size}",
            field="training.batch_size",
            source=source,
        )
    _, p2, _ = part_ranges(profile, cuts)  # checks the cuts before anything reads them
    needs = span_needs(cluster, cuts[0], cuts[1], profile.num_layers)
    profile, imputed = complete(profile, needs, imputation, source)
    nodes = cluster.compute_nodes
    helpers = [part_time(profile, n.device, p2).scaled(n.slowdown) for n in nodes]
    owners: list[OwnerSide] = []
    owner_names: list[str] = []
    bps: list[list[float]] = []
    latency: list[list[float]] = []
    for name, group in zip(cluster.group_names(), cluster.data_owners, strict=True):
        side = owner_side(profile, group.device, cuts)
        side = OwnerSide(side.part1.scaled(group.slowdown), side.part3.scaled(group.slowdown))
        links = [cluster.link(name, n.name) for n in nodes]
        for i in range(group.count):
            owners.append(side)
            owner_names.append(f"{name}#{i} ({group.device})")
            bps.append([rate for rate, _ in links])
            latency.append([lat for _, lat in links])
    demand = helper_demand_bytes(profile, cuts)
    scenario = assemble(
        owners,
        helpers,
        bps,
        cut_bytes(profile, cuts),
        [demand] * len(owners),
        [int(n.memory_bytes) for n in nodes],
        latency_s=latency,
        owner_names=owner_names,
        helper_names=[f"{n.name} ({n.device})" for n in nodes],
        source=f"{source}: {profile.model} cuts {cuts[0]},{cuts[1]}",
    )
    return scenario, imputed
