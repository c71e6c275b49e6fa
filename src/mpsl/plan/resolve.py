"""Turning a run's plan request into the Plan the run follows: a plan file, or one made now."""

from __future__ import annotations

from mpsl.cluster import Cluster
from mpsl.errors import ConfigError
from mpsl.plan.make import make_plan
from mpsl.plan.types import Plan
from mpsl.profile.shipped import load_profile


def resolve_plan(
    plan: str,
    *,
    profile: str | None = None,
    cluster: str | None = None,
    first_cut: int | None = None,
    last_cut: int | None = None,
    objective: str = "epoch",
) -> Plan:
    """The feasible plan ``plan`` names: ``auto`` (made now from profile and cluster) or a file."""
    if plan == "auto":
        given = {
            "profile": profile,
            "cluster": cluster,
            "first_cut": first_cut,
            "last_cut": last_cut,
        }
        missing = [name for name, v in given.items() if v is None]
        if missing:
            raise ConfigError(f"plan 'auto' also needs {', '.join(missing)}", field="plan")
        assert profile and cluster and first_cut and last_cut
        made = make_plan(
            load_profile(profile), Cluster.load(cluster), first_cut, last_cut, objective
        )
    else:
        made = Plan.load(plan)
    if not made.feasible:
        raise ConfigError(f"no feasible plan: {made.reason}", field="plan")
    return made


def check_plan_model(plan: Plan, model: str, num_layers: int) -> None:
    """Raise ConfigError when ``plan`` was made for a model of another number of layers."""
    if plan.num_layers != num_layers:
        raise ConfigError(
            f"the plan is for a model of {plan.num_layers} layers ({plan.model}); "
            f"{model} has {num_layers}",
            field="plan",
        )
