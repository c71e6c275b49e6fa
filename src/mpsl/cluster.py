"""Cluster: the data owners, compute nodes and links of a deployment, and the training workload.

JSON form (docs/formats.md)::

    {"data_owners": [{"count": 30, "device": "d1", "memory_bytes": 4e9, "link_bps": 8e6}],
     "compute_nodes": [{"name": "vm1", "device": "VM", "memory_bytes": 16e9, "slowdown": 1.0,
                        "price_per_hour": 0.4}],
     "links": {"compute_to_compute_bps": 7.13e9},
     "training": {"batch_size": 128, "batches_per_epoch": 16, "local_epochs": 2}}

Optional: compute nodes on one machine name the same ``host`` (``hosts`` gives its ``cores``, the
number of tasks it runs at once at their profiled time; default 1), and data-owner groups behind
one shared link name the same ``uplink`` (``links.uplinks`` gives its rate).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mpsl.errors import FormatError
from mpsl.fileformat import load_model, save_model
from mpsl.tasks import node_name_problem


class DataOwnerGroup(BaseModel):
    """``count`` data owners of the same device and link."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = Field(default=None, description="default: owners<i> (1-based group index)")
    count: int = Field(ge=1)
    device: str
    memory_bytes: float = Field(gt=0)
    link_bps: float = Field(gt=0, description="data owner <-> compute node and aggregator")
    link_latency_s: float = Field(default=0.0, ge=0)
    slowdown: float = Field(default=1.0, gt=0)
    uplink: str | None = Field(
        default=None,
        description="a shared link of links.uplinks that all its owners' traffic takes",
    )


DEFAULT_SWAP_BYTES_PER_S = 1e9
"""Bytes per second a swapped instance moves to or from local disk when the cluster file gives no
``swap_bytes_per_s``: a safetensors write + read of 100 MB in /tmp measured 0.82-2.26 GB/s (median
1.09 GB/s) round trip; docs/estimate.md."""


class ComputeNode(BaseModel):
    """One compute node (a server) that can host one middle part."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    device: str
    memory_bytes: float = Field(gt=0)
    slowdown: float = Field(default=1.0, gt=0)
    price_per_hour: float = Field(default=0.0, ge=0)
    memory_budget_bytes: float | None = Field(
        default=None,
        gt=0,
        description="the runtime's node_memory_budget: instances beyond it are swapped to disk",
    )
    swap_bytes_per_s: float | None = Field(
        default=None,
        gt=0,
        description="disk write + read rate of swapped instances; default DEFAULT_SWAP_BYTES_PER_S",
    )
    host: str | None = Field(
        default=None, description="the machine it runs on; nodes naming one host share its cores"
    )


class Host(BaseModel):
    """A machine that several compute nodes share."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    # A profile measured with the whole machine (torch uses every core) means one task at a time.
    cores: int = Field(default=1, ge=1, description="tasks it runs at once at their profiled time")


class Uplink(BaseModel):
    """One link that several data owners share (an access point, a home router)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    bps: float = Field(gt=0)
    latency_s: float = Field(default=0.0, ge=0)


class LinkOverride(BaseModel):
    """The link between two named endpoints (compute nodes or data-owner groups), both ways."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    a: str
    b: str
    bps: float = Field(gt=0)
    latency_s: float = Field(default=0.0, ge=0)


class Links(BaseModel):
    """Link rates not given per data-owner group."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    compute_to_compute_bps: float = Field(gt=0)
    compute_to_compute_latency_s: float = Field(default=0.0, ge=0)
    overrides: list[LinkOverride] = Field(default_factory=list)
    uplinks: list[Uplink] = Field(default_factory=list)


class Training(BaseModel):
    """The workload of one round."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    batch_size: int = Field(default=128, gt=0)
    batches_per_epoch: int = Field(default=16, gt=0)
    local_epochs: int = Field(default=2, gt=0)


class Cluster(BaseModel):
    """Data owners, compute nodes, links and workload."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    data_owners: list[DataOwnerGroup] = Field(min_length=1)
    compute_nodes: list[ComputeNode] = Field(min_length=1)
    links: Links
    training: Training = Field(default_factory=Training)
    hosts: list[Host] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names(self) -> Cluster:
        names = [n.name for n in self.compute_nodes] + self.group_names()
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"names must be unique across compute nodes and groups: {dupes}")
        for node in self.compute_nodes:
            if problem := node_name_problem(node.name):
                raise ValueError(problem)
        for o in self.links.overrides:
            for end in (o.a, o.b):
                if end not in names:
                    raise ValueError(
                        f"link override names unknown endpoint '{end}'; known: {names}"
                    )
        used_hosts = {n.host for n in self.compute_nodes if n.host is not None}
        for i, host in enumerate(self.hosts):
            if host.name not in used_hosts:
                raise ValueError(
                    f"hosts[{i}] '{host.name}' is the host of no compute node; name it in a "
                    "compute node's 'host' or remove it"
                )
        uplinks = [u.name for u in self.links.uplinks]
        if len(set(uplinks)) != len(uplinks):
            raise ValueError(f"links.uplinks names must be unique: {uplinks}")
        for i, g in enumerate(self.data_owners):
            if g.uplink is not None and g.uplink not in uplinks:
                raise ValueError(
                    f"data_owners[{i}].uplink '{g.uplink}' is not in links.uplinks "
                    f"({', '.join(uplinks) or 'none given'})"
                )
        return self

    def host_cores(self) -> dict[str, int]:
        """Cores of every host some compute node names (1 unless ``hosts`` says otherwise)."""
        given = {h.name: h.cores for h in self.hosts}
        return {n.host: given.get(n.host, 1) for n in self.compute_nodes if n.host is not None}

    def uplink(self, group: str) -> Uplink | None:
        """The shared link data-owner group ``group`` sits behind, if any."""
        g = dict(zip(self.group_names(), self.data_owners, strict=True))[group]
        return next((u for u in self.links.uplinks if u.name == g.uplink), None)

    def owner_link(self, group: str, node: str) -> tuple[float, float]:
        """(bits per second, latency s) of group ``group``'s owners to ``node`` (or the
        aggregator): their own link, capped by the rate of a shared uplink and plus its latency."""
        bps, latency = self.link(group, node)
        up = self.uplink(group)
        if up is None:
            return bps, latency
        return min(bps, up.bps), latency + up.latency_s

    def group_names(self) -> list[str]:
        """Name of each data-owner group (given, or owners<i>)."""
        return [g.name or f"owners{i}" for i, g in enumerate(self.data_owners, 1)]

    @property
    def num_data_owners(self) -> int:
        """K: all data owners of all groups."""
        return sum(g.count for g in self.data_owners)

    def node(self, name: str) -> ComputeNode:
        """The compute node called ``name``."""
        for n in self.compute_nodes:
            if n.name == name:
                return n
        known = ", ".join(n.name for n in self.compute_nodes)
        raise FormatError(f"cluster has no compute node '{name}'; nodes: {known}")

    def link(self, a: str, b: str) -> tuple[float, float]:
        """(bits per second, latency in seconds) between endpoints ``a`` and ``b``."""
        for o in self.links.overrides:
            if {o.a, o.b} == {a, b}:
                return o.bps, o.latency_s
        groups = dict(zip(self.group_names(), self.data_owners, strict=True))
        for end in (a, b):
            if end in groups:
                return groups[end].link_bps, groups[end].link_latency_s
        return self.links.compute_to_compute_bps, self.links.compute_to_compute_latency_s

    def devices(self) -> list[tuple[str, str]]:
        """(where in the file, device name) of every compute node and data-owner group."""
        wanted = [(f"compute_nodes[{i}]", n.device) for i, n in enumerate(self.compute_nodes)]
        return wanted + [(f"data_owners[{i}]", g.device) for i, g in enumerate(self.data_owners)]

    @classmethod
    def load(cls, path: str | Path) -> Cluster:
        """Read and validate a cluster file."""
        return load_model(cls, path)

    def save(self, path: str | Path) -> None:
        """Write this cluster as JSON."""
        save_model(self, path)


def reference_testbed(
    compute_nodes: list[dict[str, Any]],
    owners: int = 100,
    data_owners: list[dict[str, Any]] | None = None,
) -> Cluster:
    """The MP-SL evaluation's testbed (reference README): d1 data owners at 8 Mbit/s, compute
    nodes linked at 7.13 Gbit/s, B = 16 batches of 128 per local epoch, r = 2 local epochs.

    ``data_owners`` replaces the default single group of ``owners`` d1 data owners.
    """
    groups = data_owners or [
        {"count": owners, "device": "d1", "memory_bytes": 4e9, "link_bps": 8e6}
    ]
    return Cluster.model_validate(
        {
            "data_owners": groups,
            "compute_nodes": compute_nodes,
            "links": {"compute_to_compute_bps": 7.13e9},
            "training": {"batch_size": 128, "batches_per_epoch": 16, "local_epochs": 2},
        }
    )
