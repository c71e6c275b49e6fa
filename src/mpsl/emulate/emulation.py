"""Emulating a deployment described by a profile and a cluster, with the real runtime.

Every task takes exactly its profiled time (``Device``) and every message its link's time (the
transport's link model). With ``compute=False`` the model is replaced by stand-in layers that do
nothing and messages carry only their size, so large models and many data owners fit on one
machine; with ``compute=True`` the real model trains and tasks are padded to the profiled time.
Compute nodes that share a ``host`` share one ``SharedHost`` of its cores; data owners behind a
shared ``uplink`` send and receive over one channel per direction (``links.Transfer``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import nn

from mpsl.cluster import Cluster
from mpsl.data.base import Dataset, Labeled
from mpsl.estimate.costs import pipeline_costs, timing_needs
from mpsl.models import LayerChain
from mpsl.profile.format import Profile
from mpsl.profile.impute import Imputation, complete
from mpsl.runtime.config import RunConfig
from mpsl.runtime.device import Device, SharedHost
from mpsl.runtime.engine import InProcessEngine, RunResult
from mpsl.runtime.links import LinkModel, Transfer
from mpsl.runtime.messages import Kind, Message
from mpsl.split import part_ranges
from mpsl.tasks import COORDINATOR, QueuePolicy, TaskKind, owner_endpoint


def stand_in_model(model: str, layer_names: Sequence[str]) -> LayerChain:
    """A chain of parameter-free layers named ``layer_names``: what an emulated run computes."""
    layers: list[tuple[str, nn.Module]] = [(name, nn.Identity()) for name in layer_names]
    return LayerChain(f"{model}-emulated", layers, (1,))


def stand_in_data(samples: int) -> Dataset:
    """``samples`` zero samples of one feature, labelled 0: what stand-in layers train on."""
    x = torch.zeros(samples, 1)
    data = Labeled(x, torch.zeros(samples, dtype=torch.long))
    return Dataset("emulated", data, Labeled(x[:1], data.y[:1]), 1)


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the garbage collector from stalling every role thread in the middle of a run.

    A full collection walks every object of the process (~0.1 s with torch loaded) while holding
    the interpreter: every role stalls at once, which the emulated clocks absorb only if a later
    wait is long enough (not near the end of a round). Objects alive before the run are frozen
    (exempt from collection) until it ends; what the run creates is still collected.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def epoch_seconds(result: RunResult) -> float:
    """The first round's training phase in the run's seconds: from its first task to the end of
    the last data owner's last batch (the simulation's ``training_ms``)."""
    records = [r for r in result.events.records if r.round == 0]
    trained = [r.end for r in records if r.kind is TaskKind.FIRST_BWD]
    return max(trained) - min(r.start for r in records) if trained else 0.0


def owner_groups(cluster: Cluster) -> list[int]:
    """Index of the data-owner group of each data owner, in order."""
    return [g for g, group in enumerate(cluster.data_owners) for _ in range(group.count)]


class Emulation:
    """Devices, link model and message sizes that make the runtime behave like ``cluster``."""

    def __init__(
        self,
        profile: Profile,
        cluster: Cluster,
        cuts: Sequence[int],
        nodes: Sequence[str] | None = None,
        time_scale: float = 1.0,
        stragglers: Mapping[int, float] | None = None,
        imputation: Imputation | None = None,
        source: str = "cluster",
    ) -> None:
        profile.require_devices(cluster.devices(), source)
        needs = timing_needs(cluster, cuts, profile.num_layers, nodes)
        profile, self.imputed = complete(profile, needs, imputation, source)
        self.profile, self.cluster = profile, cluster
        self.cuts = tuple(cuts)
        self.costs = pipeline_costs(profile, cluster, cuts, nodes)
        self.time_scale = time_scale
        self.stragglers = dict(stragglers or {})
        self.groups = owner_groups(cluster)
        self.node_names = [n.name for n in self.costs.nodes]
        ranges = part_ranges(cuts, profile.num_layers)
        scale = cluster.training.batch_size / profile.batch_size
        self.output_bytes = {
            "first": int(profile.layers[ranges[0][1] - 1].output_bytes * scale),
            **{
                name: int(profile.layers[last - 1].output_bytes * scale)
                for name, (_, last) in zip(self.node_names, ranges[1:-1], strict=True)
            },
        }
        self.owner_model_bytes = sum(
            profile.layers[i - 1].param_bytes
            for lo, hi in (ranges[0], ranges[-1])
            for i in range(lo, hi + 1)
        )

    def devices(self) -> dict[str, Device]:
        """Emulated task times of every compute node and data owner (already time-scaled)."""
        s = self.time_scale
        hosts = {h: SharedHost(h, c) for h, c in self.costs.host_cores.items()}
        result = {
            n.name: Device(
                {TaskKind.FWD: n.fwd_ms * s, TaskKind.BWD: n.bwd_ms * s},
                host=hosts[n.host] if n.host is not None else None,
            )
            for n in self.costs.nodes
        }
        for k, g in enumerate(self.groups):
            o = self.costs.owners[g]
            f = s * self.stragglers.get(k, 1.0)
            result[owner_endpoint(k)] = Device(
                {
                    TaskKind.FIRST_FWD: o.first_fwd_ms * f,
                    TaskKind.LAST: o.last_ms * f,
                    TaskKind.FIRST_BWD: o.first_bwd_ms * f,
                }
            )
        return result

    def link_model(self) -> LinkModel:
        """Rates between roles: owner links (shared uplinks one channel per direction),
        compute-to-compute links; control is instant."""
        names = self.cluster.group_names()
        owners = {owner_endpoint(k): names[g] for k, g in enumerate(self.groups)}
        nodes = set(self.node_names)
        s = self.time_scale

        def model(sender: str, dest: str, msg: Message) -> Transfer | None:
            nbytes = msg.nbytes
            if msg.kind in (Kind.WEIGHTS, Kind.ROUND_START) and (
                sender in owners or dest in owners
            ):
                nbytes = self.owner_model_bytes  # the first and last parts, up or down
            owner = sender if sender in owners else dest if dest in owners else None
            if owner is not None and (sender != COORDINATOR or msg.kind is Kind.ROUND_START):
                group = owners[owner]
                peer = dest if owner == sender else sender
                bps, latency = self.cluster.owner_link(group, peer)
                uplink = self.cluster.uplink(group)
                channel = None
                if uplink is not None:
                    channel = (f"uplink:{uplink.name}", "up" if owner == sender else "down")
                return Transfer(bps / s, latency * s, nbytes, channel)
            if sender in nodes and dest in nodes:
                bps, latency = self.cluster.link(sender, dest)
                return Transfer(bps / s, latency * s, nbytes)
            return None

        return model

    def run(
        self,
        compute: bool = False,
        policy: QueuePolicy = QueuePolicy.FIFO,
        model: LayerChain | None = None,
        dataset: Dataset | None = None,
        seed: int = 0,
    ) -> RunResult:
        """One emulated round; returns the runtime's result (events, round seconds)."""
        t = self.cluster.training
        k = len(self.groups)
        if not compute:
            model = stand_in_model(self.profile.model, [lp.name for lp in self.profile.layers])
            dataset = stand_in_data(t.batch_size * k)
        config = RunConfig.model_validate(
            {
                "dataset": "synthetic",
                "data_owners": k,
                "cuts": list(self.cuts),
                "nodes": self.node_names,
                "rounds": 1,
                "local_epochs": t.local_epochs,
                "batches_per_epoch": t.batches_per_epoch,
                "batch_size": t.batch_size,
                "queue_policy": policy.value,
                "seed": seed,
            }
        )
        devices = {n: dataclasses.replace(d, compute=compute) for n, d in self.devices().items()}
        engine = InProcessEngine(
            config,
            dataset=dataset,
            model=model,
            devices=devices,
            link_model=self.link_model(),
            emulated_bytes=self.output_bytes,
            evaluate=compute,
        )
        with frozen_heap():
            return engine.run()
