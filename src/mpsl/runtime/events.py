"""The task log: one record per task a role ran (node, owner, batch, kind, start, end, bytes)."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TaskRecord:
    """One task: times in seconds from the start of the run."""

    node: str
    owner: int
    batch: int
    round: int
    kind: str  # fwd, bwd (compute node); first_fwd, last, first_bwd (data owner); aggregate
    start: float
    end: float
    bytes: int

    def to_json(self) -> dict[str, object]:
        """The record as a JSON-ready dict."""
        return asdict(self)


class EventLog:
    """Thread-safe append-only list of TaskRecords, with one shared clock."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self._lock = threading.Lock()
        self.records: list[TaskRecord] = []

    def now(self) -> float:
        """Seconds since the log began."""
        return time.perf_counter() - self._t0

    def add(self, record: TaskRecord) -> None:
        """Append one record."""
        with self._lock:
            self.records.append(record)
