"""A role process: register with the coordinator, build the part it is given, serve, report.

The role objects are the in-process engine's own (ComputeNode, DataOwner, Aggregator); only the
transport differs. The process knows nothing but the coordinator's address: its routes, the run
config and the cuts arrive in the coordinator's ASSIGN message.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mpsl.deploy.gate import AggregatorGate, Gate, NodeGate, OwnerGate, part_shapes
from mpsl.deploy.keys import load_credentials
from mpsl.deploy.transport import ZmqTransport
from mpsl.errors import ConfigError, RuntimeFailure
from mpsl.models import build_model
from mpsl.runtime.aggregator import Aggregator
from mpsl.runtime.compute_node import ComputeNode
from mpsl.runtime.config import RunConfig
from mpsl.runtime.data_owner import DataOwner
from mpsl.runtime.engine import (
    Layout,
    load_run_data,
    optimizer_factory,
    owner_shares,
    owner_workload,
)
from mpsl.runtime.events import EventLog
from mpsl.runtime.messages import Kind, Message
from mpsl.split import split_model
from mpsl.tasks import QueuePolicy, node_endpoint

log = logging.getLogger(__name__)

ROLES = ("compute-node", "aggregator", "data-owner")
COORDINATOR = "coordinator"


def role_of(name: str) -> str:
    """The role a member name stands for: node<i>, owner<k> or aggregator."""
    if name == "aggregator":
        return "aggregator"
    for prefix, role in (("node", "compute-node"), ("owner", "data-owner")):
        number = name[len(prefix) :]
        if name.startswith(prefix) and number.isdigit() and int(number) >= 1:
            return role
    raise ConfigError(
        f"member name '{name}' must be node<i>, owner<k> (from 1) or aggregator", field="name"
    )


@dataclass(frozen=True)
class RoleOptions:
    """How to start one role process."""

    name: str  # node1.., owner1.., aggregator: the member name (and key name)
    coordinator: str  # the coordinator's address, tcp://HOST:PORT
    listen: str = "tcp://127.0.0.1:*"
    advertise: str | None = None  # host name peers use to reach this process
    keys: Path | None = None  # keys directory; None: no encryption (loopback tests only)
    data_path: str | None = None  # a data owner's own copy of the dataset
    threads: int | None = None  # torch intra-op threads


def _wildcard(address: str) -> bool:
    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    return host in ("*", "0.0.0.0", "")


def local_ip_toward(address: str) -> str:
    """This host's IP address on the route to ``address`` (what peers there can reach)."""
    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host, 9))  # UDP: picks the route, sends nothing
            return str(probe.getsockname()[0])
        except OSError as exc:
            raise ConfigError(f"cannot route to the coordinator at {address}: {exc}") from None


class Role:
    """One member of a deployment, from registration to its final metrics."""

    def __init__(self, options: RoleOptions) -> None:
        self.options = options
        self.role = role_of(options.name)
        creds = load_credentials(options.keys, options.name) if options.keys else None
        advertise = options.advertise
        if advertise is None and _wildcard(options.listen):
            advertise = local_ip_toward(options.coordinator)
        self.transport = ZmqTransport(options.name, options.listen, creds, advertise, gate=Gate())
        key = creds.public_key_of(COORDINATOR) if creds else None
        self.transport.add_route(COORDINATOR, options.coordinator, key)
        self.events = EventLog()
        self._wall0 = time.time()

    def run(self) -> None:
        """Register, build, serve until STOP, then send metrics; raises if the coordinator dies."""
        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        name = self.options.name
        try:
            self.transport.send(
                COORDINATOR,
                Message(
                    Kind.REGISTER, name, meta={"role": self.role, "address": self.transport.address}
                ),
            )
            assign = self._assignment()
            worker, gate = self._build(assign.meta)
            self.transport.gate = gate
            self.transport.send(COORDINATOR, Message(Kind.READY, name))
            self._serve(worker, float(assign.meta["heartbeat_s"]), float(assign.meta["timeout_s"]))
            self._report(worker, float(assign.meta["t0_wall"]))
        finally:
            self.transport.close()

    def _assignment(self) -> Message:
        deadline = 600.0
        try:
            msg = self.transport.recv(self.options.name, timeout=deadline)
        except queue.Empty:
            raise RuntimeFailure(
                f"{self.options.name}: no answer from the coordinator at "
                f"{self.options.coordinator} in {deadline:.0f} s"
            ) from None
        if msg.kind is Kind.ERROR:
            raise RuntimeFailure(f"the coordinator refused {self.options.name}: {msg.text}")
        if msg.kind is not Kind.ASSIGN:
            raise RuntimeFailure(f"expected an assignment, got {msg.kind.value}")
        for member, (address, key) in msg.meta["routes"].items():
            self.transport.add_route(member, address, key)
        return msg

    def _build(self, meta: dict[str, Any]) -> tuple[ComputeNode | DataOwner | Aggregator, Gate]:
        config = RunConfig.model_validate(meta["config"])
        if self.options.data_path:
            config = config.model_copy(update={"data_path": self.options.data_path})
        shape = tuple(meta["input_shape"])
        model = build_model(config.model, meta["num_classes"], shape, seed=config.seed)
        parts = split_model(model, meta["cuts"])
        owners = config.data_owners
        layout = Layout.chain(len(parts) - 2, owners)
        make_opt = optimizer_factory(config)
        shapes = part_shapes(parts, shape)
        name = self.options.name
        if self.role == "compute-node":
            i = int(name[len("node") :]) - 1
            part = layout.node_parts[i]
            node = ComputeNode(
                name,
                parts[part],
                layout.prev_hop(i),
                layout.next_hop(i),
                self.transport,
                self.events,
                make_opt,
                QueuePolicy(config.queue_policy),
            )
            prev = {k: layout.prev_hop(i)(k) for k in range(owners)}
            nxt = {k: layout.next_hop(i)(k) for k in range(owners)}
            return node, NodeGate(prev, nxt, *shapes[part])
        if self.role == "data-owner":
            k = int(name[len("owner") :]) - 1
            share = owner_shares(config, load_run_data(config))[k]
            entry, exit_ = node_endpoint(layout.entry[k]), node_endpoint(layout.exit[k])
            owner = DataOwner(
                k,
                share,
                parts[0],
                parts[-1],
                entry,
                exit_,
                self.transport,
                self.events,
                make_opt,
                owner_workload(config),
            )
            return owner, OwnerGate(k, entry, exit_, shapes[0][1], shapes[-1][0])
        state = {f"first.{k}": v for k, v in parts[0].state_dict().items()}
        state |= {f"last.{k}": v for k, v in parts[-1].state_dict().items()}
        return Aggregator(owners, self.transport, self.events), AggregatorGate(owners, state)

    def _serve(
        self, worker: ComputeNode | DataOwner | Aggregator, heartbeat_s: float, timeout_s: float
    ) -> None:
        done = threading.Event()

        def serve() -> None:
            try:
                worker.serve()
            finally:
                done.set()

        threading.Thread(target=serve, name=self.options.name, daemon=True).start()
        self.transport.last_seen[COORDINATOR] = time.monotonic()
        while not done.wait(heartbeat_s):
            self.transport.send(COORDINATOR, Message(Kind.HEARTBEAT, self.options.name))
            silent = time.monotonic() - self.transport.last_seen.get(COORDINATOR, 0.0)
            if silent > timeout_s:
                raise RuntimeFailure(
                    f"{self.options.name}: the coordinator at {self.options.coordinator} has "
                    f"been silent for {silent:.0f} s (no heartbeat); stopping"
                )

    def _report(self, worker: ComputeNode | DataOwner | Aggregator, t0_wall: float) -> None:
        shift = self._wall0 - t0_wall  # this log's clock started later than the coordinator's
        records = [
            {**r.to_json(), "start": r.start + shift, "end": r.end + shift}
            for r in self.events.records
        ]
        sent = {f"{a}->{b}": n for (a, b), n in self.transport.bytes_sent.items()}
        meta = {
            "records": records,
            "peak_memory_bytes": getattr(worker, "peak_memory_bytes", None),
            "bytes_sent": sent,
            "rejected": self.transport.rejected,
        }
        self.transport.send(COORDINATOR, Message(Kind.METRICS, self.options.name, meta=meta))
