"""Plan: the planner's answer, a plain data object the runtime receives (cuts and each part's node).

JSON form (docs/formats.md, "Plan file format")::

    {"model": "vgg19", "num_layers": 25, "feasible": true, "cuts": [3, 9, 15, 20],
     "parts": [{"node": "vm1", "first_layer": 4, "last_layer": 9}, ...],
     "objective": "epoch", "objective_value": 1234.5, "predicted": {"round_s": 1234.5, ...},
     "memory_bytes": {"vm1": 12000000000, ...}, ...}
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mpsl.fileformat import load_model, save_model

ManualKind = Literal["balanced", "equal"]  # plan/manual.py
ObjectiveName = Literal["epoch", "paper", "cost", "memory"]  # problem.Objective's values


class PlanPart(BaseModel):
    """One middle part: the compute node that hosts it and its layers (1-based, inclusive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    node: str
    first_layer: int = Field(ge=1)
    last_layer: int = Field(ge=1)


class Baseline(BaseModel):
    """A manual split (first N nodes in cluster order; load-balanced or equal-layer cuts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: ManualKind = Field(
        default="balanced", description="balanced: least largest part load; equal: layer counts"
    )
    cuts: list[int]
    nodes: list[str]
    runnable: bool = Field(description="fits in memory and every layer is measured on its node")
    reason: str | None = None
    objective_value: float | None = None
    round_s: float | None = None
    memory_bytes: dict[str, int] = Field(default_factory=dict)
    gain_pct: float | None = Field(default=None, description="how much lower the plan's objective")


class FrontierPoint(BaseModel):
    """One non-dominated (round time, cost) plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    nodes: list[str]
    cuts: list[int]
    round_s: float
    cost: float


class Plan(BaseModel):
    """Cuts, the node of each middle part, and what the planner predicts for them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model: str
    num_layers: int = Field(ge=2)
    feasible: bool
    reason: str | None = Field(default=None, description="why no plan exists (feasible: false)")
    cuts: list[int] = Field(default_factory=list)
    parts: list[PlanPart] = Field(default_factory=list)
    objective: ObjectiveName = "epoch"
    objective_value: float | None = None
    objective_unit: str | None = None
    predicted: dict[str, float] = Field(default_factory=dict)
    memory_bytes: dict[str, int] = Field(default_factory=dict)
    memory_unbudgeted_bytes: dict[str, int] | None = Field(
        default=None,
        description="memory per node with every instance resident; only when a node has a budget",
    )
    num_data_owners: int | None = None
    hops: str = Field(default="auto", description="the --hops asked for")
    method: str = "dp"
    solve_ms: float | None = None
    manual: Baseline | None = None
    frontier: list[FrontierPoint] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        if not self.feasible:
            if not self.reason:
                raise ValueError("an infeasible plan needs a reason")
            return self
        if len(self.cuts) < 2 or len(self.parts) != len(self.cuts) - 1:
            raise ValueError(
                f"{len(self.parts)} parts need {len(self.parts) + 1} cuts; got cuts {self.cuts}"
            )
        if any(b <= a for a, b in zip(self.cuts, self.cuts[1:], strict=False)):
            raise ValueError(f"cuts must increase strictly; got {self.cuts}")
        if self.cuts[0] < 1 or self.cuts[-1] > self.num_layers - 1:
            raise ValueError(f"cuts must lie in 1..{self.num_layers - 1}; got {self.cuts}")
        for i, part in enumerate(self.parts):
            want = (self.cuts[i] + 1, self.cuts[i + 1])
            if (part.first_layer, part.last_layer) != want:
                raise ValueError(
                    f"parts[{i}] should hold layers {want[0]}..{want[1]} by the cuts "
                    f"{self.cuts}; got {part.first_layer}..{part.last_layer}"
                )
        names = [p.node for p in self.parts]
        if len(set(names)) != len(names):
            raise ValueError(f"a compute node can host one part only; got {names}")
        return self

    @property
    def nodes(self) -> list[str]:
        """The compute node of each middle part, in chain order."""
        return [p.node for p in self.parts]

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        """Read and validate a plan file."""
        return load_model(cls, path)

    def save(self, path: str | Path) -> None:
        """Write this plan as JSON."""
        save_model(self, path)
