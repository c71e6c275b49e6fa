"""A role process: register with the coordinator, build the part it is given, serve, report.

The role objects are the in-process engine's own (ComputeNode, DataOwner, Aggregator); only the
transport differs. The process knows nothing but the coordinator's address: its routes, the run
config and the cuts arrive in the coordinator's ASSIGN message.

A member says what it waits for (every ``NOTE_S`` seconds, and when it gives up after ``wait_s``):
nothing answers at the coordinator's address, the coordinator refused our key, or we are
registered and the others are not yet. A refused key or a coordinator that speaks another
mechanism ends the wait at once. ``run`` returns only when the run completed: a STOP that aborts
the run, a coordinator gone silent, a signal (``signals.py``) or any failure raise, after
telling the coordinator when the failure is this member's own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import zmq

from mpsl.deploy.address import is_wildcard as _wildcard
from mpsl.deploy.address import local_ip_toward
from mpsl.deploy.control import (
    Assignment,
    Control,
    ControlKind,
    Metrics,
    Record,
    Records,
    Routes,
    abort_reason,
    clip,
    ready,
    registration,
)
from mpsl.deploy.gate import Gate, gate_for
from mpsl.deploy.keys import load_credentials
from mpsl.deploy.liveness import Liveness
from mpsl.deploy.threads import ComputeThread
from mpsl.deploy.transport import ZmqTransport
from mpsl.errors import ConfigError, ProtocolError, RuntimeFailure, TransportTimeout
from mpsl.runtime.aggregator import Aggregator
from mpsl.runtime.events import EventLog
from mpsl.runtime.layout import RoleKind
from mpsl.runtime.messages import Kind, Message
from mpsl.runtime.observe import Recorder, observation_file
from mpsl.runtime.setup import Role as Worker
from mpsl.runtime.setup import RunSetup, build_role
from mpsl.runtime.worker import Stopped
from mpsl.signals import deferred
from mpsl.tasks import COORDINATOR

log = logging.getLogger(__name__)

NOTE_S = 10.0  # how often a member waiting for the coordinator says what it waits for
POLL_S = 0.25  # how often it looks at its connection to the coordinator meanwhile
LEAVE_LINGER_S = 0.5  # a member of a failed run flushes its last word (an ERROR) this long
HOPELESS_HANDSHAKES = 3  # handshakes failed in a row (without detail) that mean a wrong key


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
    wait_s: float = 600.0  # how long to wait for the coordinator's assignment
    device: str | None = None  # a compute node's torch device, instead of the run config's
    # A compute node that records what it receives (a privacy audit, docs/privacy.md) writes
    # it to observe/observed-<name>.npz at the end of the run; observe_rounds: those kept
    # (from 0; None: every round).
    observe: Path | None = None
    observe_rounds: tuple[int, ...] | None = None


class _NotOurs(RuntimeFailure):
    """A failure the coordinator need not be told of: it caused it, or it cannot hear us."""


class _StopNoted:
    """The member's transport as its role sees it, noting the STOP that ends the role.

    The runtime's roles stop on any STOP (``runtime/worker.py``); whether it ended a complete run
    or aborted one is in its text, which only the deployment reads (``control.abort_reason``).
    When the member stops while its role is still at work (interrupted, coordinator gone), the
    role's next send raises the runtime's own ``Stopped``, which ends its serve loop quietly.
    """

    def __init__(self, transport: ZmqTransport) -> None:
        self.transport = transport
        self.stop: Message | None = None
        self.leaving = False  # the member stops: the role's sends end it quietly (Stopped)
        self.observe: Callable[[Message], None] | None = None  # shown every message received

    def send(self, dest: str, msg: Message) -> None:
        """Send, as the transport does; once the member is leaving, end the role instead."""
        if self.leaving:
            raise Stopped
        try:
            self.transport.send(dest, msg)
        except (ProtocolError, zmq.ZMQError):
            if self.leaving:  # closed under the role's feet
                raise Stopped from None
            raise

    def recv(self, endpoint: str, timeout: float | None = None) -> Message:
        """Receive, as the transport does; note a STOP; follow a member that moved (ROUTE)."""
        msg = self.transport.recv_message(timeout, self._control)
        if msg.kind is Kind.STOP:
            self.stop = msg
        if self.observe is not None:
            self.observe(msg)
        return msg

    def _control(self, packet: Control) -> None:
        if packet.kind is not ControlKind.ROUTE:
            raise ProtocolError(f"unexpected {packet.kind.value} from {packet.sender}")
        assert isinstance(packet.body, Routes)
        for member, route in packet.body.routes.items():
            log.info("%s is now at %s", member, route.address)
            self.transport.add_route(
                member, route.address, route.public_key, fresh=True, sealed=route.sealed
            )

    def close(self) -> None:
        """The member closes the transport itself."""


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
        self.transport.add_route(COORDINATOR, options.coordinator, key, monitor=True)
        self._stops = _StopNoted(self.transport)
        self.events = EventLog()
        self._wall0 = time.time()
        self._t0_wall: float | None = None  # the coordinator's clock, from the assignment
        self._recorder: Recorder | None = None  # with --observe, what the role receives
        self.compute = ComputeThread(options.name)  # all of the member's torch work

    def run(self) -> None:
        """Register, build, serve until STOP, then send metrics.

        Raises unless the run completed: the coordinator aborted it, went silent or cannot be
        reached, or this member failed or was interrupted (then the coordinator is told).
        """
        name = self.options.name
        linger_s = LEAVE_LINGER_S  # what is still queued to peers of a failed run may go
        try:
            self.transport.send(
                COORDINATOR,
                registration(
                    name, self.transport.address, self.options.role, self.transport.sealed_address
                ),
            )
            assign = self._assignment()
            self._t0_wall = assign.t0_wall
            worker, gate = self.compute.call(lambda: self._build(assign))
            self.transport.gate = gate
            self.transport.send(COORDINATOR, ready(name))
            self._serve(worker, assign.heartbeat_s, assign.timeout_s)
            self.compute.call(self._write_observed)  # torch converts what it kept
            self._report(worker)
            linger_s = 2.0  # the metrics must reach the coordinator
        except _NotOurs:
            raise
        except BaseException as exc:
            self._leave(exc)
            raise
        finally:
            self._stops.leaving = True
            self.compute.close()
            with deferred():
                self.transport.close(linger_s)

    def _leave(self, exc: BaseException) -> None:
        """Tell the coordinator that this member stops, and why (best effort)."""
        role = self.options.role.value if self.options.role else "member"
        why = str(exc) or ("interrupted" if isinstance(exc, KeyboardInterrupt) else repr(exc))
        text = clip(f"{role} {self.options.name} stopped: {why}")
        # Stopped by its operator, the member leaves (a data owner's run goes on without it);
        # any other end is a failure of the run.
        kind = Kind.LEFT if isinstance(exc, KeyboardInterrupt) else Kind.ERROR
        with deferred():
            try:
                self.transport.send(COORDINATOR, Message(kind, self.options.name, text=text))
            except Exception:  # the member is failing already
                log.debug("could not tell the coordinator", exc_info=True)

    def _assignment(self) -> Assignment:
        msg = self._await_coordinator()
        while isinstance(msg, Message) and msg.kind not in (Kind.ERROR, Kind.STOP):
            # queued for an earlier process of this member (a restart at the same address)
            log.info("ignored %s from %s before the assignment", msg.kind.value, msg.sender)
            msg = self._await_coordinator()
        if msg.kind is Kind.ERROR:
            raise _NotOurs(f"the coordinator refused {self.options.name}: {msg.text}")
        if msg.kind is Kind.STOP:
            assert isinstance(msg, Message)
            raise _NotOurs(
                f"{self.options.name}: the coordinator stopped before the run began: "
                f"{abort_reason(msg)}"
            )
        if not isinstance(msg, Control) or msg.kind is not ControlKind.ASSIGN:
            raise RuntimeFailure(f"expected an assignment, got {msg.kind.value}")
        assert isinstance(msg.body, Assignment)
        for member, route in msg.body.routes.items():
            self.transport.add_route(member, route.address, route.public_key, sealed=route.sealed)
        return msg.body

    def _await_coordinator(self) -> Control | Message:
        """The coordinator's first answer; says what it waits for, gives up after ``wait_s``."""
        name, wait = self.options.name, self.options.wait_s
        start = time.monotonic()
        note = start + NOTE_S
        while True:
            left = start + wait - time.monotonic()
            if left <= 0:
                state, _ = self._waiting_for()
                raise RuntimeFailure(
                    f"{name}: gave up after {wait:g} s (--wait) waiting for the coordinator: "
                    f"{state}"
                )
            try:
                return self.transport.recv_packet(timeout=min(POLL_S, left))
            except TransportTimeout:
                pass
            state, hopeless = self._waiting_for()
            if hopeless:
                raise _NotOurs(f"{name}: {state}")
            if time.monotonic() >= note:
                log.info("%s: waiting for the coordinator (%.0f s): %s", name, note - start, state)
                note += NOTE_S

    def _waiting_for(self) -> tuple[str, bool]:
        """What this member knows of the coordinator while it waits; whether waiting is hopeless."""
        at, name = self.options.coordinator, self.options.name
        keys = self.options.keys
        if COORDINATOR in self.transport.last_seen:
            return f"registered at {at}; waiting for the other members to register", False
        shake = self.transport.handshake(COORDINATOR)
        if shake.failure == "auth":
            return (
                f"the coordinator at {at} refused our CURVE key (handshake failed: "
                f"authentication): its keys/public/{name}.key is missing or is not the public "
                f"key of {keys}/{name}.key_secret; give every host the keys of one `mpsl keys` "
                "run",
                True,
            )
        if shake.failure == "protocol":
            return (
                f"{at} does not speak our security mechanism (handshake failed: protocol): one "
                "side runs with --insecure and the other with --keys, or this is not an MP-SL "
                "coordinator",
                True,
            )
        if shake.failures >= HOPELESS_HANDSHAKES:
            return (
                f"the CURVE handshake with {at} failed {shake.failures} times in a row: "
                f"{keys}/public/coordinator.key is not the public key of the coordinator "
                "listening there (keys of another `mpsl keys` run?), or that coordinator runs "
                "with --insecure",
                True,
            )
        if shake.succeeded:
            return f"connected to the coordinator at {at}; no answer to our registration yet", False
        if shake.connected:
            return f"connected to {at}; the handshake has not completed yet", False
        if shake.retries:
            return (
                f"nothing answers at {at} (connection refused): is the coordinator running, at "
                "this address?",
                False,
            )
        return f"no connection to {at} yet: is the coordinator running, can we reach it?", False

    def _build(self, assign: Assignment) -> tuple[Worker, Gate]:
        config = assign.config
        if self.options.data_path:
            config = config.model_copy(update={"data_path": self.options.data_path})
        if threads := self.options.threads or config.threads:
            torch.set_num_threads(threads)
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
        if self.options.device is not None and role is not RoleKind.COMPUTE_NODE:
            raise ConfigError(
                f"{name} is a {role.value} in this run: only a compute node takes a device "
                "(data owners compute on the CPU)",
                field="--device",
            )
        if self.options.observe is not None:
            self._observe(setup, role)
        worker = build_role(setup, name, self._stops, self.events, node_device=self.options.device)
        return worker, gate_for(setup, name)

    def _observe(self, setup: RunSetup, role: RoleKind) -> None:
        """Record what this compute node's role receives, as the in-process audit's observer."""
        name = self.options.name
        if role is not RoleKind.COMPUTE_NODE:
            raise ConfigError(
                f"{name} is a {role.value}: only a compute node records what it receives",
                field="observe",
            )
        recorder = Recorder(
            nodes=[name],
            last_node=setup.layout.nodes[-1],
            owners=setup.config.data_owners,
            rounds=self.options.observe_rounds,
        )
        self._recorder = recorder
        self._stops.observe = lambda msg: recorder(name, msg)

    def _write_observed(self) -> None:
        """With --observe, what the role received, to observe/observed-<name>.npz."""
        if self._recorder is None or self.options.observe is None:
            return
        self.options.observe.mkdir(parents=True, exist_ok=True)
        path = observation_file(self.options.observe, self.options.name)
        # Not atomic (the deployment does not import the store): the audit reads it only once
        # this process has exited, and a half-written file fails its read naming the file.
        path.write_bytes(self._recorder.to_bytes())
        log.info("%s: what it received written to %s", self.options.name, path)

    def _serve(self, worker: Worker, heartbeat_s: float, timeout_s: float) -> None:
        done = threading.Event()
        failed: list[BaseException] = []

        def serve() -> None:
            try:
                worker.serve()
            except BaseException as exc:  # raised in the main thread below
                failed.append(exc)
            finally:
                done.set()

        self.compute.submit(serve)  # where the part was built: one OpenMP pool
        liveness = Liveness(self.transport, [COORDINATOR], heartbeat_s, timeout_s)
        silence = liveness.watch(done, every_beat=self._send_records)
        if silence is not None:
            raise _NotOurs(
                f"{self.options.name}: the coordinator at {self.options.coordinator} has "
                f"been silent for {silence.seconds:.0f} s (no heartbeat); stopping"
            )
        if failed:
            raise failed[0]
        assert self._stops.stop is not None  # a role returns on STOP only
        reason = abort_reason(self._stops.stop)
        if reason is not None:
            raise _NotOurs(f"{self.options.name}: the coordinator aborted the run: {reason}")

    def _records(self) -> list[Record]:
        """The task records since the last report, on the coordinator's clock."""
        assert self._t0_wall is not None
        shift = self._wall0 - self._t0_wall  # this log's clock started later than the coordinator's
        return [
            Record(**{**r.to_json(), "start": r.start + shift, "end": r.end + shift})
            for r in self.events.drain()
        ]

    def _send_records(self) -> None:
        """Report the latest task records (with the heartbeats): the log stays small."""
        if records := self._records():
            body = Records(records=records)
            self.transport.send(COORDINATOR, Control(ControlKind.RECORDS, self.options.name, body))

    def _report(self, worker: Worker) -> None:
        metrics = Metrics(
            records=self._records(),
            peak_memory_bytes=None if isinstance(worker, Aggregator) else worker.peak_memory_bytes,
            bytes_sent={f"{a}->{b}": n for (a, b), n in self.transport.bytes_sent.items()},
            rejected=self.transport.rejected,
        )
        self.transport.send(COORDINATOR, Control(ControlKind.METRICS, self.options.name, metrics))
