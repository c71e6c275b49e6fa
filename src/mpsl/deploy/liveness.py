"""Liveness: heartbeats to peers, and the first peer that has been silent too long.

One mechanism for both directions: the coordinator watches every member, each member watches the
coordinator. Any message a peer sends counts as a sign of life (the transport notes when it last
heard from each peer); heartbeats keep a peer that has nothing else to say heard.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mpsl.deploy.control import heartbeat
from mpsl.deploy.transport import ZmqTransport


@dataclass(frozen=True)
class Silence:
    """A peer that has not been heard from for ``seconds``."""

    peer: str
    seconds: float


class Liveness:
    """Sends heartbeats from ``transport`` to ``peers`` and watches that they answer."""

    def __init__(
        self, transport: ZmqTransport, peers: list[str], heartbeat_s: float, timeout_s: float
    ) -> None:
        self.transport = transport
        self.peers = list(peers)
        self.heartbeat_s, self.timeout_s = heartbeat_s, timeout_s
        self._lock = threading.Lock()

    def add(self, peer: str) -> None:
        """Watch ``peer`` (again: a member that came back)."""
        with self._lock:
            if peer not in self.peers:
                self.peers.append(peer)

    def forget(self, peer: str) -> None:
        """Stop watching ``peer`` (it left)."""
        with self._lock:
            if peer in self.peers:
                self.peers.remove(peer)

    def watch(
        self,
        stop: threading.Event,
        armed: threading.Event | None = None,
        on_silence: Callable[[Silence], None] | None = None,
        every_beat: Callable[[], None] | None = None,
    ) -> Silence | None:
        """Beat every ``heartbeat_s`` until ``stop``; the first peer silent past ``timeout_s``.

        With ``on_silence``, every silent peer is told to it instead, and no longer watched (nor
        sent heartbeats) until ``add`` brings it back; the watch goes on. Silence counts only once
        ``armed`` is set (before that, peers may be busy building their parts), and from then
        on at the earliest.
        """
        since: float | None = None
        while not stop.wait(self.heartbeat_s):
            with self._lock:
                peers = list(self.peers)
            for peer in peers:
                self.transport.send(peer, heartbeat(self.transport.name))
            if every_beat is not None:
                every_beat()
            now = time.monotonic()
            if armed is not None and not armed.is_set():
                continue
            since = since or now
            for peer in peers:
                silent = now - max(self.transport.last_seen.get(peer, since), since)
                if silent <= self.timeout_s:
                    continue
                if on_silence is None:
                    return Silence(peer, silent)
                self.forget(peer)
                on_silence(Silence(peer, silent))
        return None
