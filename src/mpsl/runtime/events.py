"""The task log of a run: every role appends a TaskRecord per task, on one shared clock."""

from __future__ import annotations

import threading
import time

from mpsl.tasks import TaskRecord


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

    def drain(self) -> list[TaskRecord]:
        """Take every record so far: a caller that streams the log keeps it from growing."""
        with self._lock:
            taken, self.records = self.records, []
        return taken
