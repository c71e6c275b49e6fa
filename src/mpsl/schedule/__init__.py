"""Parallel-SL workflow optimizer: which data owner goes to which helper, and in what order.

One-hop parallel split learning with several helpers: every data owner is served by one helper,
which runs its part-2 forward and backward tasks one task at a time. ``solve`` minimises the
makespan (when the last data owner finishes its batch) with one of the methods in ``Method``;
every method's schedule is timed by the one evaluator (``evaluate``), in continuous time.
"""

from mpsl.schedule.build import from_cluster
from mpsl.schedule.evaluate import Schedule, Task, evaluate
from mpsl.schedule.generate import generate
from mpsl.schedule.orders import load_schedule
from mpsl.schedule.scenario import Scenario
from mpsl.schedule.solve import Method, solve

__all__ = [
    "Method",
    "Scenario",
    "Schedule",
    "Task",
    "evaluate",
    "from_cluster",
    "generate",
    "load_schedule",
    "solve",
]
