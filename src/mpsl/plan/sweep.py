"""One exact plan per multihop level: P = N + 2 parts for each N compute nodes in a range.

``mpsl plan --sweep-parts 3..6`` (or ``3..``: up to the most the model and cluster allow). With
``--objective memory`` this is the papers' "memory of the largest compute node vs multihop level".
JSON form (docs/formats.md, "Parts sweep")::

    {"model": "vgg19", "objective": "memory", "first_cut": 3, "last_cut": 20,
     "num_data_owners": 100, "points": [{"parts": 3, "largest_node_bytes": 4.1e10, "plan": {...}}]}
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mpsl.cluster import Cluster
from mpsl.errors import ConfigError
from mpsl.plan.make import make_plan
from mpsl.plan.problem import build_problem
from mpsl.plan.types import Plan
from mpsl.profile.format import Profile


class SweepPoint(BaseModel):
    """The plan of one multihop level."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    parts: int = Field(ge=3, description="P: the data owner's two parts and N = P - 2 middle parts")
    largest_node_bytes: int | None = Field(
        default=None, description="memory of the plan's largest compute node; none if infeasible"
    )
    plan: Plan


class PartsSweep(BaseModel):
    """One plan per multihop level, same profile, cluster, cuts and objective."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model: str
    objective: str
    first_cut: int
    last_cut: int
    num_data_owners: int
    points: list[SweepPoint]


def parse_parts(text: str, most: int) -> range:
    """``A..B``, ``A..`` (up to ``most``) or ``A``: the multihop levels to plan, checked."""
    lo_text, sep, hi_text = text.partition("..")
    try:
        lo = int(lo_text)
        hi = (int(hi_text) if hi_text else most) if sep else lo
    except ValueError:
        raise ConfigError(
            f"expected parts as A..B, A.. or A (e.g. 3..6); got {text!r}", field="--sweep-parts"
        ) from None
    if not 3 <= lo <= hi <= most:
        raise ConfigError(
            f"expected 3 <= A <= B <= {most} (P = compute nodes + 2, at most one node per middle "
            f"layer and per cluster node); got {text!r}",
            field="--sweep-parts",
        )
    return range(lo, hi + 1)


def most_parts(cluster: Cluster, first_cut: int, last_cut: int) -> int:
    """The largest multihop level a plan can have: one middle layer per node, every node used."""
    return min(len(cluster.compute_nodes), last_cut - first_cut) + 2


def sweep_parts(
    profile: Profile,
    cluster: Cluster,
    first_cut: int,
    last_cut: int,
    parts: str,
    objective: str = "epoch",
    *,
    method: str = "dp",
    manual: str = "balanced",
) -> PartsSweep:
    """The optimal plan for ``objective`` at each multihop level in ``parts`` (``A..B``)."""
    build_problem(profile, cluster, first_cut, last_cut, objective)  # cuts and devices, checked
    levels = parse_parts(parts, most_parts(cluster, first_cut, last_cut))
    points = []
    for p in levels:
        plan = make_plan(
            profile, cluster, first_cut, last_cut, objective, p - 2, method=method, manual=manual
        )
        largest = max(plan.memory_bytes.values()) if plan.feasible else None
        points.append(SweepPoint(parts=p, largest_node_bytes=largest, plan=plan))
    return PartsSweep(
        model=profile.model,
        objective=objective,
        first_cut=first_cut,
        last_cut=last_cut,
        num_data_owners=cluster.num_data_owners,
        points=points,
    )
