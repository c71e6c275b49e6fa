"""One entry point for every scheduling method, and ``auto``'s choice between exact and fast."""

from __future__ import annotations

import dataclasses
import logging
from enum import StrEnum

from mpsl.errors import ConfigError
from mpsl.schedule.baselines import solve_balanced_greedy, solve_random
from mpsl.schedule.cpsat import solve_exact
from mpsl.schedule.evaluate import Schedule
from mpsl.schedule.fast import solve_fast
from mpsl.schedule.scenario import Scenario

log = logging.getLogger(__name__)

# auto runs exact up to this many data owners: on the reference scenarios CP-SAT proves
# optimality there within seconds (benchmarks/scheduler.py), beyond it often not in minutes
AUTO_EXACT_MAX_OWNERS = 20
DEFAULT_TIME_LIMIT_S = 10.0


class Method(StrEnum):
    """The scheduling methods of ``mpsl schedule --method``."""

    AUTO = "auto"
    EXACT = "exact"
    FAST = "fast"
    BALANCED_GREEDY = "balanced-greedy"
    RANDOM = "random"


def parse_method(name: str) -> Method:
    """The Method called ``name``, or ConfigError listing the choices."""
    try:
        return Method(name)
    except ValueError:
        choices = ", ".join(m.value for m in Method)
        raise ConfigError(
            f"unknown method '{name}'; choose one of {choices}", field="--method"
        ) from None


def auto_pick(sc: Scenario) -> Method:
    """exact when the instance is small enough to prove optimality quickly, else fast."""
    return Method.EXACT if sc.num_owners <= AUTO_EXACT_MAX_OWNERS else Method.FAST


def solve(
    sc: Scenario,
    method: Method | str = Method.AUTO,
    *,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    seed: int = 0,
) -> Schedule:
    """Schedule ``sc`` with ``method``; ``auto`` says in the notes which method it picked."""
    m = parse_method(str(method))
    if time_limit_s <= 0:
        raise ConfigError(
            f"expected a positive number of seconds; got {time_limit_s}", field="--time-limit"
        )
    note: str | None = None
    if m == Method.AUTO:
        m = auto_pick(sc)
        note = (
            f"auto picked {m.value}: {sc.num_owners} data owners "
            f"{'<=' if m == Method.EXACT else '>'} {AUTO_EXACT_MAX_OWNERS}"
        )
        log.info(note)
    if m == Method.EXACT:
        result = solve_exact(sc, time_limit_s=time_limit_s, seed=seed)
    elif m == Method.FAST:
        result = solve_fast(sc, seed=seed)
    elif m == Method.BALANCED_GREEDY:
        result = solve_balanced_greedy(sc)
    else:
        result = solve_random(sc, seed=seed)
    if note is not None:
        result = dataclasses.replace(result, notes=(note, *result.notes))
    return result
