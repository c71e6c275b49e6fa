"""A role process: register with the coordinator, build the part it is given, serve, report.

The role objects are the in-process engine's own (ComputeNode, DataOwner, Aggregator); only the
transport differs. The process knows nothing but the coordinator's address: its routes, the run
config and the cuts arrive in the coordinator's ASSIGN message.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from mpsl.deploy.address import is_wildcard as _wildcard
from mpsl.deploy.address import local_ip_toward
from mpsl.deploy.control import (
    Assignment,
    Control,
    ControlKind,
    Metrics,
    Record,
    ready,
    registration,
)
from mpsl.deploy.gate import Gate, gate_for
from mpsl.deploy.keys import load_credentials
from mpsl.deploy.liveness import Liveness
from mpsl.deploy.transport import ZmqTransport
from mpsl.errors import ConfigError, RuntimeFailure, TransportTimeout
from mpsl.runtime.aggregator import Aggregator
from mpsl.runtime.events import EventLog
from mpsl.runtime.layout import RoleKind
from mpsl.runtime.messages import Kind
from mpsl.runtime.setup import Role as Worker
from mpsl.runtime.setup import RunSetup, build_role
from mpsl.tasks import COORDINATOR

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoleOptions:
    """How to start one role process."""

    name: str  # the member name (and key name): a compute node's, owner<k> or aggregator
    coordinator: str  # the coordinator's address, tcp://HOST:PORT
    listen: str = "tcp://127.0.0.1:*"
    advertise: str | None = None  # host name peers use to reach this process
    keys: Path | None = None  # keys directory; None: no encryption (loopback tests only)
    data_path: str | None = None  # a data owner's own copy of the dataset
    threads: int | None = None  # torch intra-op threads
    role: RoleKind | None = None  # the role it was started as (checked against the assignment)


class Role:
    """One member of a deployment, from registration to its final metrics."""

    def __init__(self, options: RoleOptions) -> None:
        self.options = options
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
                COORDINATOR, registration(name, self.transport.address, self.options.role)
            )
            assign = self._assignment()
            worker, gate = self._build(assign)
            self.transport.gate = gate
            self.transport.send(COORDINATOR, ready(name))
            self._serve(worker, assign.heartbeat_s, assign.timeout_s)
            self._report(worker, assign.t0_wall)
        finally:
            self.transport.close()

    def _assignment(self) -> Assignment:
        deadline = 600.0
        try:
            msg = self.transport.recv_packet(timeout=deadline)
        except TransportTimeout:
            raise RuntimeFailure(
                f"{self.options.name}: no answer from the coordinator at "
                f"{self.options.coordinator} in {deadline:.0f} s"
            ) from None
        if msg.kind is Kind.ERROR:
            raise RuntimeFailure(f"the coordinator refused {self.options.name}: {msg.text}")
        if not isinstance(msg, Control) or msg.kind is not ControlKind.ASSIGN:
            raise RuntimeFailure(f"expected an assignment, got {msg.kind.value}")
        assert isinstance(msg.body, Assignment)
        for member, route in msg.body.routes.items():
            self.transport.add_route(member, route.address, route.public_key)
        return msg.body

    def _build(self, assign: Assignment) -> tuple[Worker, Gate]:
        config = assign.config
        if self.options.data_path:
            config = config.model_copy(update={"data_path": self.options.data_path})
        setup = RunSetup.build(
            config, input_shape=assign.input_shape, num_classes=assign.num_classes
        )
        name = self.options.name
        role = setup.layout.role_of(name)
        if self.options.role is not None and role is not self.options.role:
            raise ConfigError(
                f"{name} is a {role.value} in this run, not a {self.options.role.value}",
                field="name",
            )
        return build_role(setup, name, self.transport, self.events), gate_for(setup, name)

    def _serve(self, worker: Worker, heartbeat_s: float, timeout_s: float) -> None:
        done = threading.Event()

        def serve() -> None:
            try:
                worker.serve()
            finally:
                done.set()

        threading.Thread(target=serve, name=self.options.name, daemon=True).start()
        liveness = Liveness(self.transport, [COORDINATOR], heartbeat_s, timeout_s)
        silence = liveness.watch(done)
        if silence is not None:
            raise RuntimeFailure(
                f"{self.options.name}: the coordinator at {self.options.coordinator} has "
                f"been silent for {silence.seconds:.0f} s (no heartbeat); stopping"
            )

    def _report(self, worker: Worker, t0_wall: float) -> None:
        shift = self._wall0 - t0_wall  # this log's clock started later than the coordinator's
        records = [
            Record(**{**r.to_json(), "start": r.start + shift, "end": r.end + shift})
            for r in self.events.records
        ]
        metrics = Metrics(
            records=records,
            peak_memory_bytes=None if isinstance(worker, Aggregator) else worker.peak_memory_bytes,
            bytes_sent={f"{a}->{b}": n for (a, b), n in self.transport.bytes_sent.items()},
            rejected=self.transport.rejected,
        )
        self.transport.send(COORDINATOR, Control(ControlKind.METRICS, self.options.name, metrics))
