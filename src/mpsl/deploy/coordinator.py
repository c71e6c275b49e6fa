"""The deployment coordinator: waits for the members, assigns parts and routes, drives rounds.

It assembles the run (``RunSetup``: the config's cuts and placement, the model, the test split),
registers every compute node, the aggregator and every data owner (each tells its own address),
sends each its assignment, then runs the rounds with the same Coordinator as the in-process engine.
Heartbeats go both ways (``liveness.py``); a member that falls silent ends the run with an error
naming it, instead of a hang. At the end every member reports its task records and memory, for
the usual run report.

Every way a run can end is said to the members in the STOP's text (``control.end_of_run``, or
``control.abort`` with the reason: a failure, a silent or departed compute node or aggregator,
SIGINT/SIGTERM), so that a member of an aborted run exits non-zero saying why. A member that leaves
before the run begins (e.g. it was interrupted) is forgotten, and may register again; once the run
has begun, any ERROR ends it.

A data owner that leaves during the run (interrupted, killed, silent past the heartbeat timeout)
is dropped (the runtime's ``Coordinator``: its round goes on without it). When it registers again
under its name (its key), it gets the assignment, the other members its new address (ROUTE), and it
takes part from the round after it is ready. A compute node or the aggregator cannot come back into
a running round (its instances held every data owner's part): the run stops, its checkpoints kept,
and ``mpsl coordinator --resume`` continues it with every member started afresh.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from mpsl.deploy.control import (
    Assignment,
    Control,
    ControlKind,
    Metrics,
    Records,
    Registration,
    Route,
    Routes,
    abort,
    end_of_run,
    heartbeat,
)
from mpsl.deploy.gate import CoordinatorGate
from mpsl.deploy.liveness import Liveness, Silence
from mpsl.deploy.transport import ZmqTransport
from mpsl.deploy.wire import Packet
from mpsl.errors import ConfigError, RuntimeFailure, TransportTimeout
from mpsl.runtime.config import RunConfig
from mpsl.runtime.coordinator import Coordinator, Progress, RoundResult
from mpsl.runtime.engine import RunResult
from mpsl.runtime.events import EventLog
from mpsl.runtime.layout import RoleKind
from mpsl.runtime.messages import Kind, Message
from mpsl.runtime.setup import RunSetup, build_coordinator
from mpsl.signals import deferred
from mpsl.tasks import COORDINATOR, owner_index

log = logging.getLogger(__name__)

OnMember = Callable[[str, str, int, int], None]  # (name, address, registered, expected)


class DeploymentCoordinator:
    """Runs one training run over members that register from anywhere."""

    def __init__(
        self,
        config: RunConfig,
        heartbeat_s: float = 1.0,
        timeout_s: float = 30.0,
        wait_s: float = 600.0,
    ) -> None:
        for value, option in ((timeout_s, "heartbeat_timeout"), (wait_s, "wait")):
            if not value > 0:
                raise ConfigError(f"must be seconds above 0, got {value:g}", field=option)
        self.setup = RunSetup.build(config)  # the coordinator evaluates on the test split
        self.config = config.model_copy(
            update={"cuts": list(self.setup.cuts), "nodes": list(self.setup.layout.nodes)}
        )
        self.heartbeat_s, self.timeout_s, self.wait_s = heartbeat_s, timeout_s, wait_s
        self.cuts = self.setup.cuts
        self.layout = self.setup.layout
        self.members = self.layout.members
        self.routes: dict[str, Route] = {}
        self._stop = threading.Event()
        # Every member built its part and the rounds run: silence now means trouble, and a data
        # owner that leaves is dropped.
        self.started = threading.Event()
        # The last round is done and the members were told to stop: a member may exit now.
        self.finished = threading.Event()
        self._lock = threading.Lock()
        self._inbox: ZmqTransport | None = None  # the transport, once the run has one
        self._failure: str | None = None
        self._assignment: Assignment | None = None
        self._liveness: Liveness | None = None
        self._coordinator: Coordinator | None = None  # the rounds' driver, once they run
        self._rejoining: set[str] = set()  # data owners that registered again, not ready yet
        # The members' task records as they report them (a recorder drains it every round).
        self.events = EventLog()

    def run(
        self,
        transport: ZmqTransport,
        progress: Progress | None = None,
        on_round: Callable[[RoundResult], None] | None = None,
        on_member: OnMember | None = None,
        start_round: int = 0,
    ) -> RunResult:
        """Register everyone over ``transport``, train the configured rounds from
        ``start_round`` on (``setup.model`` holds the weights after the rounds before), collect
        metrics."""
        self.transport = transport
        transport.gate = CoordinatorGate(self.layout)
        with self._lock:
            self._inbox = transport
            if self._failure is not None:
                transport.inject(Message(Kind.ERROR, COORDINATOR, text=self._failure))
        self._liveness = Liveness(transport, self.members, self.heartbeat_s, self.timeout_s)
        watch = threading.Thread(target=self._watch, name="heartbeats", daemon=True)
        results: list[RoundResult] = []
        events = self.events
        try:
            self._register(on_member)
            watch.start()
            self._assign(time.time() - events.now())
            self.started.set()
            coordinator = build_coordinator(self.setup, _RoundInbox(self))
            self._coordinator = coordinator
            for r in range(start_round, self.config.rounds):
                results.append(coordinator.run_round(r, progress))
                if on_round:
                    on_round(results[-1])
            self.finished.set()
            for member in self._rejoining:  # back too late: told, rather than left to time out
                self.transport.send(member, abort(COORDINATOR, "the run ended before it rejoined"))
            present = self._present()
            for member in present:
                self.transport.send(member, end_of_run(COORDINATOR))
            links, memory = self._collect(events, present)
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)  # SIGINT, or SIGTERM (signals.py)
            self._abort(str(exc) or ("interrupted" if interrupted else type(exc).__name__))
            raise
        finally:
            self._stop.set()
        model = self.setup.model
        return RunResult(self.config, self.cuts, results, events, links, memory, model)

    def left(self, member: str, text: str) -> None:
        """``member`` is gone (``text`` says how); from any thread (the launcher's watch).

        A data owner is dropped once the rounds run; before that, or for any other member, the
        run ends.
        """
        if self.layout.role_of(member) is not RoleKind.DATA_OWNER or not self.started.is_set():
            self.fail(text)
            return
        with self._lock:
            if self._inbox is not None:
                self._inbox.inject(Message(Kind.LEFT, member, text=text))

    def fail(self, text: str) -> None:
        """End the run now with ``text``; from any thread (the launcher's watch on processes)."""
        with self._lock:
            self._failure = text
            if self._inbox is not None:
                self._inbox.inject(Message(Kind.ERROR, COORDINATOR, text=text))

    def _register(self, on_member: OnMember | None) -> None:
        deadline = time.monotonic() + self.wait_s
        while len(self.routes) < len(self.members):
            waiting = set(self.members) - set(self.routes)
            msg = self._next(deadline, "registrations", waiting, member_errors=False)
            if msg.kind in (Kind.ERROR, Kind.LEFT):  # a member left before the run began
                assert isinstance(msg, Message)
                log.warning("%s; waiting for it to register again", msg.text)
                self.routes.pop(msg.sender, None)
                continue
            if msg.kind is not ControlKind.REGISTER:
                log.warning("ignored %s from %s before the run", msg.kind.value, msg.sender)
                continue
            assert isinstance(msg, Control) and isinstance(msg.body, Registration)
            role = self.layout.role_of(msg.sender)
            if msg.body.role is not None and msg.body.role is not role:
                log.warning(
                    "%s registered as %s, not %s; ignored", msg.sender, msg.body.role.value, role
                )
                continue
            if msg.sender in self.routes:
                log.warning("%s registered again, now at %s", msg.sender, msg.body.address)
            self._route(msg.sender, msg.body)
            # The member hears that it is registered (and waits for the others, not for us).
            self.transport.send(msg.sender, heartbeat(COORDINATOR))
            if on_member:
                on_member(msg.sender, msg.body.address, len(self.routes), len(self.members))

    def _route(self, member: str, where: Registration, fresh: bool = False) -> Route:
        """Reach ``member`` where it registered from now on (with its key, from the keys
        directory); ``fresh``: on a new connection even at the same address (what was queued
        for an earlier process there must not reach this one)."""
        creds = self.transport.credentials
        key = creds.public_key_of(member) if creds else None
        sealed = where.sealed if creds else None
        self.transport.add_route(member, where.address, key, fresh=fresh, sealed=sealed)
        self.routes[member] = Route(address=where.address, public_key=key, sealed=sealed)
        return self.routes[member]

    def _assign(self, t0_wall: float) -> None:
        assignment = self._assignment = Assignment(
            config=self.config,
            num_classes=self.setup.num_classes,
            input_shape=list(self.setup.input_shape),
            routes={m: self.routes[m] for m in self.members},
            t0_wall=t0_wall,
            heartbeat_s=self.heartbeat_s,
            timeout_s=self.timeout_s,
        )
        for member in self.members:
            self.transport.send(member, Control(ControlKind.ASSIGN, COORDINATOR, assignment))
        waiting = set(self.members)
        deadline = time.monotonic() + self.wait_s
        while waiting:
            msg = self._next(deadline, "members to get ready", waiting)
            if msg.kind is ControlKind.READY:
                waiting.discard(msg.sender)

    def _watch(self) -> None:
        """Send heartbeats; report every member that has been silent too long."""
        assert self._liveness is not None
        self._liveness.watch(self._stop, armed=self.started, on_silence=self._silent)

    def _silent(self, silence: Silence) -> None:
        member = silence.peer
        text = (
            f"{self.layout.role_of(member).value} {member} at {self.routes[member].address} has "
            f"been silent for {silence.seconds:.0f} s (no heartbeat): it vanished"
        )
        self.left(member, text)

    def _present(self) -> list[str]:
        """The members in the run now: all but the data owners gone and not back."""
        lost = self._coordinator.lost if self._coordinator is not None else {}
        return [m for m in self.members if m not in self.owners or owner_index(m) not in lost]

    @property
    def owners(self) -> set[str]:
        """The data owners' names."""
        return {m for m in self.members if self.layout.role_of(m) is RoleKind.DATA_OWNER}

    def _between(self, packet: Control) -> None:
        """A control message while the rounds run: a data owner back, or ready again."""
        member = packet.sender
        if packet.kind is ControlKind.REGISTER:
            assert isinstance(packet.body, Registration)
            role = self.layout.role_of(member)
            if packet.body.role is not None and packet.body.role is not role:
                log.warning("%s registered as %s, not %s; ignored", member, packet.body.role, role)
                return
            if member not in self.owners:
                raise RuntimeFailure(
                    f"{self.layout.role_of(member).value} {member} registered again while the "
                    "run was under way: its earlier process is gone, and with it its part of "
                    "every data owner's round; the checkpoints are kept: continue with mpsl "
                    "coordinator --resume OUT, every member started afresh"
                )
            self._rejoin(member, packet.body)
        elif packet.kind is ControlKind.RECORDS:
            assert isinstance(packet.body, Records)
            for rec in packet.body.records:
                self.events.add(rec.task())
        elif packet.kind is ControlKind.READY and member in self._rejoining:
            self._rejoining.discard(member)
            assert self._liveness is not None and self._coordinator is not None
            self._liveness.add(member)
            self._coordinator.rejoin(owner_index(member))
            log.warning("%s is back; it takes part from the next round", member)
        else:
            log.warning("ignored %s from %s during the run", packet.kind.value, member)

    def _rejoin(self, member: str, where: Registration) -> None:
        """Data owner ``member`` registered again: its earlier self has left; assign it anew."""
        assert self._coordinator is not None and self._assignment is not None
        k = owner_index(member)
        if k not in self._coordinator.lost:  # back before we noticed that it was gone
            self.transport.inject(
                Message(Kind.LEFT, member, text=f"{member} registered again: it had left")
            )
        route = self._route(member, where, fresh=True)
        self._assignment = self._assignment.model_copy(update={"routes": dict(self.routes)})
        self.transport.send(member, Control(ControlKind.ASSIGN, COORDINATOR, self._assignment))
        moved = Control(ControlKind.ROUTE, COORDINATOR, Routes(routes={member: route}))
        for other in self._present():
            if other != member:
                self.transport.send(other, moved)
        self._rejoining.add(member)
        log.warning("%s registered again at %s", member, where.address)

    def _collect(
        self, events: EventLog, present: list[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        links: dict[str, int] = {}
        memory: dict[str, int] = {}
        waiting = set(present)
        deadline = time.monotonic() + max(self.timeout_s, 10.0)
        while waiting and time.monotonic() < deadline:
            msg = self._next(deadline, "final metrics", waiting, member_errors=False)
            if msg.kind in (Kind.ERROR, Kind.LEFT):  # every round is done: the run stands
                log.warning("no final metrics from %s: %s", msg.sender, getattr(msg, "text", ""))
                waiting.discard(msg.sender)
                continue
            if isinstance(msg, Control) and msg.kind is ControlKind.RECORDS:
                self._between(msg)  # sent before the member's last word, the metrics
            if msg.kind is not ControlKind.METRICS:
                continue
            assert isinstance(msg, Control) and isinstance(msg.body, Metrics)
            waiting.discard(msg.sender)
            for rec in msg.body.records:
                events.add(rec.task())
            for link, n in msg.body.bytes_sent.items():
                if COORDINATOR not in link.split("->"):
                    links[link] = n
            if msg.body.peak_memory_bytes is not None:
                memory[msg.sender] = msg.body.peak_memory_bytes
        if waiting:
            log.warning(
                "no final metrics from %s: the report lacks them", ", ".join(sorted(waiting))
            )
        return dict(sorted(links.items())), memory

    def _abort(self, reason: str) -> None:
        """Tell every registered member that the run is over, and why."""
        with deferred():  # a signal now must not cut the others off
            for member in self.routes:
                try:
                    self.transport.send(member, abort(COORDINATOR, reason))
                except Exception:  # best effort: the run is failing already
                    log.debug("could not stop %s", member, exc_info=True)

    def _next(
        self, deadline: float, what: str, waiting: set[str], member_errors: bool = True
    ) -> Packet:
        """The next message; an ERROR or a LEFT raises (a member's is returned unless
        ``member_errors``)."""
        try:
            msg = self.transport.recv_packet(timeout=max(0.0, deadline - time.monotonic()))
        except TransportTimeout:
            missing = [m for m in self.members if m in waiting]
            raise RuntimeFailure(
                f"timed out waiting for {what}; not heard from: {', '.join(missing)}"
            ) from None
        if msg.kind is Kind.ERROR and (member_errors or msg.sender == COORDINATOR):
            assert isinstance(msg, Message)
            raise RuntimeFailure(msg.text)
        if msg.kind is Kind.LEFT and member_errors:  # before the rounds, any member is needed
            assert isinstance(msg, Message)
            raise RuntimeFailure(f"{msg.text}; it left before the rounds began")
        return msg


class _RoundInbox:
    """The transport as the runtime's Coordinator sees it while the rounds run: the
    deployment's own control messages (a data owner coming back) are handled on the way."""

    def __init__(self, deployment: DeploymentCoordinator) -> None:
        self.deployment = deployment

    def send(self, dest: str, msg: Message) -> None:
        """Send, as the transport does."""
        self.deployment.transport.send(dest, msg)

    def recv(self, endpoint: str, timeout: float | None = None) -> Message:
        """The next runtime message (TransportTimeout after ``timeout`` seconds)."""
        msg = self.deployment.transport.recv_message(timeout, self.deployment._between)
        if msg.kind is Kind.LEFT and self.deployment._liveness is not None:
            self.deployment._liveness.forget(msg.sender)  # no heartbeats to the gone
        return msg

    def close(self) -> None:
        """The deployment closes the transport itself."""
