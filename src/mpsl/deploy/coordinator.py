"""The deployment coordinator: waits for the members, assigns parts and routes, drives rounds.

It holds the run config and the plan (cuts; node i hosts part i + 1), registers every compute
node, the aggregator and every data owner (each tells its own address), sends each its
assignment, then runs the rounds with the same Coordinator as the in-process engine. Heartbeats
go both ways; a member that falls silent ends the run with an error naming it, instead of a hang.
At the end every member reports its task records and memory, for the usual run report.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from mpsl.deploy.gate import CoordinatorGate
from mpsl.deploy.role import role_of
from mpsl.deploy.transport import ZmqTransport
from mpsl.errors import ConfigError, RuntimeFailure
from mpsl.models import build_model
from mpsl.runtime.config import RunConfig
from mpsl.runtime.coordinator import Coordinator, Progress, RoundResult
from mpsl.runtime.engine import Layout, RunResult, load_run_data, resolve_cuts
from mpsl.runtime.events import EventLog
from mpsl.runtime.messages import Kind, Message
from mpsl.split import split_model
from mpsl.tasks import TaskRecord, node_endpoint, owner_endpoint

log = logging.getLogger(__name__)

NAME = "coordinator"
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
        if config.schedule:
            raise ConfigError(
                "a deployment runs the multihop chain; following a schedule (horizontal one hop) "
                "runs in one process (--engine cooperative or threads)",
                field="schedule",
            )
        self.config = config
        self.heartbeat_s, self.timeout_s, self.wait_s = heartbeat_s, timeout_s, wait_s
        self.dataset = load_run_data(config)  # the coordinator evaluates on the test split
        self.num_classes = config.num_classes or self.dataset.num_classes
        self.model = build_model(
            config.model, self.num_classes, self.dataset.input_shape, seed=config.seed
        )
        self.cuts = resolve_cuts(config, self.model.num_layers)
        self.parts = split_model(self.model, self.cuts)
        nodes = len(self.parts) - 2
        self.layout = Layout.chain(nodes, config.data_owners)
        self.members = [node_endpoint(i) for i in range(nodes)] + ["aggregator"]
        self.members += [owner_endpoint(k) for k in range(config.data_owners)]
        self.addresses: dict[str, str] = {}
        self.keys: dict[str, str | None] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()  # every member built its part: silence now means trouble

    def run(
        self,
        transport: ZmqTransport,
        progress: Progress | None = None,
        on_round: Callable[[RoundResult], None] | None = None,
        on_member: OnMember | None = None,
    ) -> RunResult:
        """Register everyone over ``transport``, train the configured rounds, collect metrics."""
        self.transport = transport
        transport.gate = CoordinatorGate(len(self.parts) - 2, self.config.data_owners)
        self._register(on_member)
        watch = threading.Thread(target=self._watch, name="heartbeats", daemon=True)
        results: list[RoundResult] = []
        events = EventLog()
        try:
            watch.start()
            self._assign(time.time() - events.now())
            self._ready.set()
            coordinator = Coordinator(
                self.transport,
                self.parts,
                self.model,
                self.config.data_owners,
                self.dataset.test,
                node_parts=self.layout.node_parts,
            )
            for r in range(self.config.rounds):
                results.append(coordinator.run_round(r, progress))
                if on_round:
                    on_round(results[-1])
            coordinator.stop(self.members)
            links, memory = self._collect(events)
        except BaseException:
            self._abort()
            raise
        finally:
            self._stop.set()
        return RunResult(self.config, self.cuts, results, events, links, memory, self.model)

    def _register(self, on_member: OnMember | None) -> None:
        deadline = time.monotonic() + self.wait_s
        while len(self.addresses) < len(self.members):
            msg = self._next(deadline, "registrations", set(self.members) - set(self.addresses))
            if msg.kind is not Kind.REGISTER:
                log.warning("ignored %s from %s before the run", msg.kind.value, msg.sender)
                continue
            address, role = msg.meta.get("address"), msg.meta.get("role")
            if not isinstance(address, str) or not address.startswith("tcp://"):
                log.warning("%s registered without a tcp:// address; ignored", msg.sender)
                continue
            if role != role_of(msg.sender):
                log.warning(
                    "%s registered as %s, not %s; ignored", msg.sender, role, role_of(msg.sender)
                )
                continue
            if msg.sender in self.addresses:
                log.warning("%s registered again, now at %s", msg.sender, address)
            key = (
                self.transport.credentials.public_key_of(msg.sender)
                if self.transport.credentials
                else None
            )
            self.transport.add_route(msg.sender, address, key)
            self.addresses[msg.sender], self.keys[msg.sender] = address, key
            if on_member:
                on_member(msg.sender, address, len(self.addresses), len(self.members))

    def _assign(self, t0_wall: float) -> None:
        routes = {m: [self.addresses[m], self.keys[m]] for m in self.members}
        meta = {
            "config": self.config.model_dump(mode="json"),
            "cuts": list(self.cuts),
            "num_classes": self.num_classes,
            "input_shape": list(self.dataset.input_shape),
            "routes": routes,
            "t0_wall": t0_wall,
            "heartbeat_s": self.heartbeat_s,
            "timeout_s": self.timeout_s,
        }
        for member in self.members:
            self.transport.send(member, Message(Kind.ASSIGN, NAME, meta=meta))
        waiting = set(self.members)
        deadline = time.monotonic() + self.wait_s
        while waiting:
            msg = self._next(deadline, "members to get ready", waiting)
            if msg.kind is Kind.ERROR:
                raise RuntimeFailure(msg.text)
            if msg.kind is Kind.READY:
                waiting.discard(msg.sender)

    def _watch(self) -> None:
        """Send heartbeats; report the first member that has been silent too long."""
        seen = self.transport.last_seen
        start = None
        while not self._stop.wait(self.heartbeat_s):
            for member in self.members:
                self.transport.send(member, Message(Kind.HEARTBEAT, NAME))
            now = time.monotonic()
            if not self._ready.is_set():
                continue
            start = start or now
            for member in self.members:
                silent = now - max(seen.get(member, start), start)
                if silent > self.timeout_s:
                    text = (
                        f"{role_of(member)} {member} at {self.addresses[member]} has been silent "
                        f"for {silent:.0f} s (no heartbeat): it vanished; stopping the run"
                    )
                    log.error(text)
                    self.transport.inject(Message(Kind.ERROR, member, text=text))
                    return

    def _collect(self, events: EventLog) -> tuple[dict[str, int], dict[str, int]]:
        links: dict[str, int] = {}
        memory: dict[str, int] = {}
        waiting = set(self.members)
        deadline = time.monotonic() + max(self.timeout_s, 10.0)
        while waiting:
            msg = self._next(deadline, "final metrics", waiting)
            if msg.kind is not Kind.METRICS:
                continue
            waiting.discard(msg.sender)
            for rec in msg.meta.get("records", []):
                events.add(TaskRecord.from_json(rec))
            for link, n in msg.meta.get("bytes_sent", {}).items():
                if NAME not in link.split("->"):
                    links[link] = n
            if msg.meta.get("peak_memory_bytes") is not None:
                memory[msg.sender] = int(msg.meta["peak_memory_bytes"])
        return dict(sorted(links.items())), memory

    def _abort(self) -> None:
        for member in self.addresses:
            try:
                self.transport.send(member, Message(Kind.STOP, NAME))
            except Exception:  # best effort: the run is failing already
                log.debug("could not stop %s", member, exc_info=True)

    def _next(self, deadline: float, what: str, waiting: set[str]) -> Message:
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise queue.Empty
            return self.transport.recv(NAME, timeout=remaining)
        except queue.Empty:
            missing = [m for m in self.members if m in waiting]
            raise RuntimeFailure(
                f"timed out waiting for {what}; not heard from: {', '.join(missing)}"
            ) from None
