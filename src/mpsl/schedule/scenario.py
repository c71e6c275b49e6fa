"""Scenario: the data of one parallel-SL scheduling problem (K data owners, H helpers).

JSON form (docs/schedule.md, "Scenario file format")::

    {"release_ms": [[K x H]], "fwd_ms": [[K x H]], "lag_ms": [[K x H]], "bwd_ms": [[K x H]],
     "tail_ms": [[K x H]], "demand_bytes": [K], "capacity_bytes": [H]}

Row k, column h is data owner k served by helper h. Optional ``owner_names``, ``helper_names`` and
``source`` only label the output.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mpsl.errors import InfeasibleError
from mpsl.fileformat import load_model, save_model

MatrixField = Literal["release_ms", "fwd_ms", "lag_ms", "bwd_ms", "tail_ms"]
MATRICES: tuple[MatrixField, ...] = ("release_ms", "fwd_ms", "lag_ms", "bwd_ms", "tail_ms")


def _check_entries(rows: list[list[float]]) -> list[list[float]]:
    for k, row in enumerate(rows):
        for h, v in enumerate(row):
            if not math.isfinite(v) or v < 0:
                raise ValueError(
                    f"row {k} (data owner {k}), column {h} (helper {h}) is {v}; expected a finite "
                    f"number of milliseconds >= 0"
                )
    return rows


class Scenario(BaseModel):
    """Times (ms) per (data owner, helper), memory demand per data owner, capacity per helper."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    release_ms: list[list[float]] = Field(description="k's forward task can start at h")
    fwd_ms: list[list[float]] = Field(description="h's part-2 forward for k")
    lag_ms: list[list[float]] = Field(description="end of k's forward task -> its backward ready")
    bwd_ms: list[list[float]] = Field(description="h's part-2 backward + update for k")
    tail_ms: list[list[float]] = Field(description="end of k's backward task -> k done")
    demand_bytes: list[int] = Field(min_length=1, description="k's memory at its helper")
    capacity_bytes: list[int] = Field(min_length=1, description="memory of each helper")
    owner_names: list[str] | None = None
    helper_names: list[str] | None = None
    source: str | None = None

    @field_validator(*MATRICES)
    @classmethod
    def _finite(cls, rows: list[list[float]]) -> list[list[float]]:
        return _check_entries(rows)

    @field_validator("demand_bytes", "capacity_bytes")
    @classmethod
    def _non_negative(cls, values: list[int]) -> list[int]:
        for i, v in enumerate(values):
            if v < 0:
                raise ValueError(f"entry {i} is {v}; expected bytes >= 0")
        return values

    @model_validator(mode="after")
    def _shapes(self) -> Scenario:
        k, h = len(self.demand_bytes), len(self.capacity_bytes)
        for name in MATRICES:
            rows: list[list[float]] = getattr(self, name)
            if len(rows) != k:
                raise ValueError(
                    f"{name} has {len(rows)} rows; expected {k}, one per data owner "
                    f"(demand_bytes has {k} entries)"
                )
            for i, row in enumerate(rows):
                if len(row) != h:
                    raise ValueError(
                        f"{name} row {i} (data owner {i}) has {len(row)} values; expected {h}, one "
                        f"per helper (capacity_bytes has {h} entries)"
                    )
        for label, names, n in (("owner_names", self.owner_names, k),
                                ("helper_names", self.helper_names, h)):  # fmt: skip
            if names is not None and len(names) != n:
                raise ValueError(f"{label} has {len(names)} entries; expected {n}")
        return self

    @property
    def num_owners(self) -> int:
        """K: the number of data owners."""
        return len(self.demand_bytes)

    @property
    def num_helpers(self) -> int:
        """H: the number of helpers."""
        return len(self.capacity_bytes)

    def path_ms(self, k: int, h: int) -> float:
        """k's batch time at h with no waiting: a lower bound on k's completion there."""
        return (
            self.release_ms[k][h] + self.fwd_ms[k][h] + self.lag_ms[k][h] + self.bwd_ms[k][h]
            + self.tail_ms[k][h]
        )  # fmt: skip

    def fits(self, k: int, h: int) -> bool:
        """Whether data owner k alone fits helper h's memory."""
        return self.demand_bytes[k] <= self.capacity_bytes[h]

    def helper_label(self, h: int) -> str:
        """Name of helper h (given, or h<index>)."""
        return self.helper_names[h] if self.helper_names else f"h{h}"

    def owner_label(self, k: int) -> str:
        """Name of data owner k (given, or k<index>)."""
        return self.owner_names[k] if self.owner_names else f"k{k}"

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """Read and validate a scenario file."""
        return load_model(cls, path)

    def save(self, path: str | Path) -> None:
        """Write this scenario as JSON."""
        save_model(self, path)


def trivial_lower_bound(sc: Scenario) -> float:
    """max over data owners of the shortest no-wait batch time at a helper it fits."""
    best = 0.0
    for k in range(sc.num_owners):
        paths = [sc.path_ms(k, h) for h in range(sc.num_helpers) if sc.fits(k, h)]
        best = max(best, min(paths, default=0.0))
    return best


def check_capacity(sc: Scenario) -> None:
    """Raise InfeasibleError when memory rules out every assignment (necessary conditions)."""
    caps = ", ".join(f"{sc.helper_label(h)}={c:,}" for h, c in enumerate(sc.capacity_bytes))
    biggest = max(sc.capacity_bytes)
    for k, d in enumerate(sc.demand_bytes):
        if d > biggest:
            raise InfeasibleError(
                f"data owner {sc.owner_label(k)} needs {d:,} bytes but the largest helper has "
                f"{biggest:,} (capacities: {caps}); add helper memory or cut the model so that "
                f"part 2 is smaller"
            )
    total, room = sum(sc.demand_bytes), sum(sc.capacity_bytes)
    if total > room:
        raise InfeasibleError(
            f"the {sc.num_owners} data owners need {total:,} bytes in all but the helpers have "
            f"{room:,} (capacities: {caps}); add helpers or memory, or serve fewer data owners"
        )
