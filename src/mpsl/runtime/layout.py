"""Routing: which compute node hosts which part, whom it serves, and each data owner's path.

The plan's placement lives here: a compute node is named (``node1``.. by default, or the cluster's
node names a plan chose), and every role addresses its peers by these names only.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mpsl.errors import ConfigError
from mpsl.tasks import AGGREGATOR, COORDINATOR, node_endpoint, owner_endpoint


class RoleKind(enum.StrEnum):
    """The roles of a run (also the names of the deployment's member commands)."""

    COMPUTE_NODE = "compute-node"
    AGGREGATOR = "aggregator"
    DATA_OWNER = "data-owner"
    COORDINATOR = "coordinator"


@dataclass(frozen=True)
class Layout:
    """Compute nodes (names, hosted parts, served data owners) and each data owner's route."""

    nodes: tuple[str, ...]  # endpoint name of each compute node
    node_parts: tuple[int, ...]  # index of the part each node hosts
    served: tuple[tuple[int, ...], ...]  # data owners each node serves
    entry: tuple[int, ...]  # node receiving data owner k's first activation
    exit: tuple[int, ...]  # node sending data owner k the last activation
    chain_length: int  # nodes in a data owner's path
    owners: int

    @classmethod
    def chain(cls, hops: int, owners: int, names: Sequence[str] | None = None) -> Layout:
        """Multihop: the i-th node hosts part i + 1; every data owner passes through every node."""
        names = tuple(names) if names is not None else tuple(map(node_endpoint, range(hops)))
        if len(names) != hops:
            raise ConfigError(
                f"{hops} middle parts need {hops} compute node names; got {list(names)}",
                field="nodes",
            )
        everyone = tuple(range(owners))
        return cls(
            names,
            tuple(range(1, hops + 1)),
            (everyone,) * hops,
            (0,) * owners,
            (hops - 1,) * owners,
            hops,
            owners,
        )

    @classmethod
    def horizontal(cls, assignment: Sequence[int], names: Sequence[str] | None = None) -> Layout:
        """One hop, several helpers: helper h hosts the middle part for its data owners."""
        helpers = max(assignment) + 1
        names = tuple(names) if names is not None else tuple(map(node_endpoint, range(helpers)))
        if len(names) != helpers:
            raise ConfigError(
                f"the assignment uses {helpers} helpers; got names {list(names)}", field="nodes"
            )
        served = tuple(
            tuple(k for k, h in enumerate(assignment) if h == helper) for helper in range(helpers)
        )
        owners = len(assignment)
        return cls(names, (1,) * helpers, served, tuple(assignment), tuple(assignment), 1, owners)

    def prev_hop(self, i: int) -> Callable[[int], str]:
        """Where node i sends gradients."""
        if i % self.chain_length == 0:
            return owner_endpoint
        prev = self.nodes[i - 1]
        return lambda _k: prev

    def next_hop(self, i: int) -> Callable[[int], str]:
        """Where node i sends activations."""
        if i % self.chain_length == self.chain_length - 1:
            return owner_endpoint
        nxt = self.nodes[i + 1]
        return lambda _k: nxt

    def route(self, owner: int) -> tuple[str, str]:
        """(entry node, exit node) of data owner ``owner``."""
        return self.nodes[self.entry[owner]], self.nodes[self.exit[owner]]

    @property
    def members(self) -> list[str]:
        """Every role but the coordinator: compute nodes, the aggregator, data owners."""
        return [*self.nodes, AGGREGATOR, *map(owner_endpoint, range(self.owners))]

    def role_of(self, name: str) -> RoleKind:
        """The role ``name`` plays in this run; ConfigError naming the members otherwise."""
        if name in self.nodes:
            return RoleKind.COMPUTE_NODE
        if name == AGGREGATOR:
            return RoleKind.AGGREGATOR
        if name == COORDINATOR:
            return RoleKind.COORDINATOR
        owners = {owner_endpoint(k) for k in range(self.owners)}
        if name in owners:
            return RoleKind.DATA_OWNER
        raise ConfigError(
            f"'{name}' is not a member of this run; members: {', '.join(self.members)}",
            field="name",
        )
