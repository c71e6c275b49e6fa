"""Dispatch rules: list scheduling of one helper's tasks, producing a task order.

When the helper is free it starts, among the tasks that are ready, the one the rule prefers; when
none is ready it waits for the earliest (active-longest-tail may also wait for one more urgent task
about to arrive). Running the resulting order through the evaluator (``evaluate.helper_times``)
reproduces the same times, so a rule is just a way to make an order.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from enum import StrEnum

from mpsl.schedule.evaluate import Step
from mpsl.schedule.scenario import Scenario
from mpsl.tasks import TaskKind

_FWD, _BWD = 0, 1


class Rule(StrEnum):
    """Which ready task a free helper starts."""

    FCFS = "fcfs"
    """First come first served: the task that became ready first (the published baseline)."""
    BWD_FIRST = "bwd-first"
    """A ready backward task first (it finishes a data owner); forward tasks by release."""
    BWD_FIRST_TAIL = "bwd-first-tail"
    """A ready backward task, longest tail first; then forward tasks, longest path after them."""
    LONGEST_TAIL = "longest-tail"
    """Any ready task with the longest time still to come after it (Schrage's rule)."""
    ACTIVE_LONGEST_TAIL = "active-longest-tail"
    """As longest-tail, but the helper waits for the next task to arrive when that one is more
    urgent and the preferred ready task would delay it (one step of an active schedule)."""


ALL_RULES: tuple[Rule, ...] = tuple(Rule)

# key(ready_ms, kind, after_ms, owner) -> smaller is preferred; after_ms = time that must still
# follow the task's end before its data owner is done, when nothing waits. Keys are fixed once a
# task exists, so a heap of ready tasks serves every rule.
_Key = Callable[[float, int, float, int], tuple[float, ...]]
_KEYS: dict[Rule, _Key] = {
    Rule.FCFS: lambda ready, kind, after, k: (ready, -kind, k),
    Rule.BWD_FIRST: lambda ready, kind, after, k: (-kind, ready, k),
    Rule.BWD_FIRST_TAIL: lambda ready, kind, after, k: (-kind, -after, ready, k),
    Rule.LONGEST_TAIL: lambda ready, kind, after, k: (-after, ready, -kind, k),
    Rule.ACTIVE_LONGEST_TAIL: lambda ready, kind, after, k: (-after, ready, -kind, k),
}


Columns = tuple[list[float], list[float], list[float], list[float], list[float]]
"""One helper's column of the scenario: release, fwd, lag, bwd, tail per data owner."""


def columns(sc: Scenario, h: int) -> Columns:
    """Helper ``h``'s times per data owner (rows of the dispatch loop, indexed once)."""
    return tuple(  # type: ignore[return-value]
        [row[h] for row in m] for m in (sc.release_ms, sc.fwd_ms, sc.lag_ms, sc.bwd_ms, sc.tail_ms)
    )


def dispatch(
    sc: Scenario | Columns, h: int, owners: Sequence[int], rule: Rule, bar: float = math.inf
) -> tuple[float, list[Step] | None]:
    """List-schedule ``owners`` on helper ``h`` by ``rule``: (latest completion, task order).

    ``sc`` may be the helper's ``columns`` (faster when called often). Stops early, returning
    (a value >= ``bar``, None), once the completion must reach ``bar``: searches only need to
    know that a candidate is no better than what they have.
    """
    key = _KEYS[rule]
    active = rule == Rule.ACTIVE_LONGEST_TAIL
    rel, fwd, lag, bwd, tail = columns(sc, h) if isinstance(sc, Scenario) else sc
    # waiting: (ready_ms, owner, kind, after_ms), not yet eligible;
    # eligible: (rule key, owner, kind, ready_ms, duration_ms)
    waiting = [(rel[k], k, _FWD, lag[k] + bwd[k] + tail[k]) for k in owners]
    heapq.heapify(waiting)
    eligible: list[tuple[tuple[float, ...], int, int, float, float]] = []
    # the helper is busy at least ``left`` more, then some owner still needs its tail
    left = sum(fwd[k] + bwd[k] for k in owners)
    least_tail = min((tail[k] for k in owners), default=0.0)
    now = 0.0
    done = 0.0
    order: list[Step] = []
    while waiting or eligible:
        if not eligible and waiting[0][0] > now:
            now = waiting[0][0]
        if now + left + least_tail >= bar:
            return max(done, now + left + least_tail), None
        while waiting and waiting[0][0] <= now:
            r, k, kind, after = heapq.heappop(waiting)
            dur = fwd[k] if kind == _FWD else bwd[k]
            heapq.heappush(eligible, (key(r, kind, after, k), k, kind, r, dur))
        # active: wait for the next task to arrive if it is more urgent and would be delayed
        if active and waiting and waiting[0][0] < now + eligible[0][4]:
            r, k, kind, after = waiting[0]
            if key(r, kind, after, k) < eligible[0][0]:
                heapq.heappop(waiting)
                dur = fwd[k] if kind == _FWD else bwd[k]
                heapq.heappush(eligible, (key(r, kind, after, k), k, kind, r, dur))
        _, k, kind, r, dur = heapq.heappop(eligible)
        now = max(now, r) + dur
        left -= dur
        if kind == _FWD:
            heapq.heappush(waiting, (now + lag[k], k, _BWD, tail[k]))
            order.append((k, TaskKind.FWD))
        else:
            if now + tail[k] > done:
                done = now + tail[k]
                if done >= bar:
                    return done, None
            order.append((k, TaskKind.BWD))
    return done, order


def best_dispatch(
    sc: Scenario | Columns,
    h: int,
    owners: Sequence[int],
    rules: Sequence[Rule] = ALL_RULES,
    bar: float = math.inf,
) -> tuple[float, list[Step] | None, Rule | None]:
    """The best of ``rules`` for these owners on ``h``: (completion, order, rule).

    With a finite ``bar``, (a value >= bar, None, None) when no rule ends before it.
    """
    best: tuple[float, list[Step] | None, Rule | None] = (math.inf, None, None)
    if isinstance(sc, Scenario):
        sc = columns(sc, h)
    for rule in rules:
        done, order = dispatch(sc, h, owners, rule, min(bar, best[0]))
        if order is not None and done < best[0]:
            best = (done, order, rule)
    if best[1] is None:
        return max(bar, 0.0), None, None
    return best


def _order(sc: Scenario, h: int, owners: Sequence[int], rules: Sequence[Rule]) -> list[Step]:
    order = best_dispatch(sc, h, owners, rules)[1]
    assert order is not None, "no bar, so every rule completes"
    return order


def dispatch_all(
    sc: Scenario, assignment: Sequence[int], rules: Sequence[Rule] = ALL_RULES
) -> list[list[Step]]:
    """Per helper, the order of the best of ``rules`` for the owners ``assignment`` gives it."""
    orders: list[list[Step]] = []
    for h in range(sc.num_helpers):
        owners = [k for k, a in enumerate(assignment) if a == h]
        orders.append(_order(sc, h, owners, rules))
    return orders
