"""The deployment coordinator: waits for the members, assigns parts and routes, drives rounds.

It assembles the run (``RunSetup``: the config's cuts and placement, the model, the test split),
registers every compute node, the aggregator and every data owner (each tells its own address),
sends each its assignment, then runs the rounds with the same Coordinator as the in-process engine.
Heartbeats go both ways (``liveness.py``); a member that falls silent ends the run with an error
naming it, instead of a hang. At the end every member reports its task records and memory, for
the usual run report.

Every way a run can end is said to the members in the STOP's text (``control.end_of_run``, or
``control.abort`` with the reason: a failure, a silent or departed member, SIGINT/SIGTERM), so that
a member of an aborted run exits non-zero saying why. A member that leaves before the run begins
(its ERROR, e.g. it was interrupted) is forgotten, and may register again; once the run has begun,
any ERROR ends it.
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
    Registration,
    Route,
    abort,
    end_of_run,
    heartbeat,
)
from mpsl.deploy.gate import CoordinatorGate
from mpsl.deploy.liveness import Liveness
from mpsl.deploy.transport import ZmqTransport
from mpsl.deploy.wire import Packet
from mpsl.errors import RuntimeFailure, TransportTimeout
from mpsl.runtime.config import RunConfig
from mpsl.runtime.coordinator import Progress, RoundResult
from mpsl.runtime.engine import RunResult
from mpsl.runtime.events import EventLog
from mpsl.runtime.messages import Kind, Message
from mpsl.runtime.setup import RunSetup, build_coordinator
from mpsl.signals import deferred
from mpsl.tasks import COORDINATOR

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
        self._ready = threading.Event()  # every member built its part: silence now means trouble
        # The last round is done and the members were told to stop: a member may exit now.
        self.finished = threading.Event()
        self._lock = threading.Lock()
        self._inbox: ZmqTransport | None = None  # the transport, once the run has one
        self._failure: str | None = None

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
        watch = threading.Thread(target=self._watch, name="heartbeats", daemon=True)
        results: list[RoundResult] = []
        events = EventLog()
        try:
            self._register(on_member)
            watch.start()
            self._assign(time.time() - events.now())
            self._ready.set()
            coordinator = build_coordinator(self.setup, self.transport)
            for r in range(start_round, self.config.rounds):
                results.append(coordinator.run_round(r, progress))
                if on_round:
                    on_round(results[-1])
            self.finished.set()
            for member in self.members:
                self.transport.send(member, end_of_run(COORDINATOR))
            links, memory = self._collect(events)
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)  # SIGINT, or SIGTERM (signals.py)
            self._abort(str(exc) or ("interrupted" if interrupted else type(exc).__name__))
            raise
        finally:
            self._stop.set()
        model = self.setup.model
        return RunResult(self.config, self.cuts, results, events, links, memory, model)

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
            if msg.kind is Kind.ERROR:  # a member left before the run began
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
            creds = self.transport.credentials
            key = creds.public_key_of(msg.sender) if creds else None
            self.transport.add_route(msg.sender, msg.body.address, key)
            self.routes[msg.sender] = Route(address=msg.body.address, public_key=key)
            # The member hears that it is registered (and waits for the others, not for us).
            self.transport.send(msg.sender, heartbeat(COORDINATOR))
            if on_member:
                on_member(msg.sender, msg.body.address, len(self.routes), len(self.members))

    def _assign(self, t0_wall: float) -> None:
        assignment = Assignment(
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
        """Send heartbeats; report the first member that has been silent too long."""
        liveness = Liveness(self.transport, self.members, self.heartbeat_s, self.timeout_s)
        silence = liveness.watch(self._stop, armed=self._ready)
        if silence is None:
            return
        member = silence.peer
        text = (
            f"{self.layout.role_of(member).value} {member} at {self.routes[member].address} has "
            f"been silent for {silence.seconds:.0f} s (no heartbeat): it vanished; stopping the run"
        )
        log.error(text)
        self.transport.inject(Message(Kind.ERROR, member, text=text))

    def _collect(self, events: EventLog) -> tuple[dict[str, int], dict[str, int]]:
        links: dict[str, int] = {}
        memory: dict[str, int] = {}
        waiting = set(self.members)
        deadline = time.monotonic() + max(self.timeout_s, 10.0)
        while waiting:
            msg = self._next(deadline, "final metrics", waiting)
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
        """The next message; an ERROR raises (a member's is returned unless ``member_errors``)."""
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
        return msg
