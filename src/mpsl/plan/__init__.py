"""Planner: provably optimal cuts and node assignment under memory limits.

``make_plan`` (alias ``plan``) is the entry point; ``Plan`` is the plain data object it returns and
the runtime receives. Solvers: dp (exact combinatorial, the default), milp (HiGHS cross-check),
brute (enumeration, small instances only). ``sweep_parts``: one plan per multihop level.
"""

from mpsl.plan.make import make_plan, solve
from mpsl.plan.problem import Objective, Problem, Solution, build_problem
from mpsl.plan.resolve import check_plan_model, resolve_plan
from mpsl.plan.sweep import PartsSweep, SweepPoint, sweep_parts
from mpsl.plan.types import Baseline, FrontierPoint, Plan, PlanPart

plan = make_plan

__all__ = [
    "Baseline",
    "FrontierPoint",
    "Objective",
    "PartsSweep",
    "Plan",
    "PlanPart",
    "Problem",
    "Solution",
    "SweepPoint",
    "build_problem",
    "check_plan_model",
    "make_plan",
    "plan",
    "resolve_plan",
    "solve",
    "sweep_parts",
]
