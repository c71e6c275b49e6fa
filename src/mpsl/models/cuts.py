"""Where a traced graph can be cut: positions that exactly one floating-point tensor crosses.

The graph's operations are numbered in topological order (placeholders, parameter reads and the
output are not operations). Position ``p`` lies between operation ``p - 1`` and ``p``; a cut
there is valid when the only value produced before ``p`` and still used from ``p`` on is one
floating-point tensor (the activation one part sends and whose gradient comes back), produced
after the previous cut (else the layer would compute nothing that leaves it), and no operation
from ``p`` on changes it in place (the receiving part holds it as a leaf that requires grad).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from torch import fx


@dataclass
class Facts:
    """What one probe run of the graph showed about its values."""

    floating: set[fx.Node] = field(default_factory=set)  # nodes whose value is a float tensor
    storage: dict[fx.Node, int] = field(default_factory=dict)  # a tensor value's storage
    mutated: dict[fx.Node, set[int]] = field(default_factory=dict)  # storages changed in place


@dataclass(frozen=True)
class Cut:
    """A valid cut: the first operation after it, and the one tensor that crosses it."""

    position: int
    value: fx.Node


def operations(graph: fx.Graph) -> list[fx.Node]:
    """The nodes that compute, in order: not the input, parameter reads or the output."""
    return [n for n in graph.nodes if n.op not in ("placeholder", "get_attr", "output")]


def find_cuts(graph: fx.Graph, facts: Facts) -> list[Cut]:
    """Every valid cut of ``graph``, in order."""
    ops = operations(graph)
    index = {n: i for i, n in enumerate(ops)}
    end = len(ops)  # the output node uses a value "at" position len(ops)
    last_use: dict[fx.Node, int] = {}
    for node in graph.nodes:
        if node.op == "get_attr":  # read again wherever used: never crosses a cut
            continue
        uses = [index.get(u, end) for u in node.users]
        if uses:
            last_use[node] = max(uses)
    last_change: dict[int, int] = {}
    for i, op in enumerate(ops):
        for storage in facts.mutated.get(op, ()):
            last_change[storage] = i
    dying: dict[int, list[fx.Node]] = defaultdict(list)
    for node, use in last_use.items():
        dying[use].append(node)
    live = {n for n in graph.nodes if n.op == "placeholder" and n in last_use}
    cuts: list[Cut] = []
    previous: fx.Node | None = next(iter(live), None)
    for p in range(1, end):
        produced = ops[p - 1]
        if produced in last_use:
            live.add(produced)
        live.difference_update(dying.get(p - 1, ()))
        if len(live) != 1:
            continue
        (value,) = live
        where = facts.storage.get(value)
        changed_later = where is not None and last_change.get(where, -1) >= p
        if value in facts.floating and value is not previous and not changed_later:
            cuts.append(Cut(p, value))
            previous = value
    return cuts
