"""Memory model: what each compute node and each data owner must hold during training.

A compute node keeps K instances of its part all round: weights, buffers and optimizer state. A
node runs one task at a time and each optimizer step frees the gradients it used
(``zero_grad(set_to_none=True)``), so gradients exist for one instance at a time. Every batch in
flight at the node (forwarded, not yet backpropagated) holds what autograd saved for its backward;
with one batch in flight per data owner that is up to K batches: we size for that worst case
(``in_flight`` lowers it).

What autograd saves comes from the profile's per-layer ``saved_bytes`` (measured by the profiler),
with a tensor kept on both sides of a cut inside the part counted once. A profile without them
(the imported reference tables) falls back to the part's input plus every layer's output; one
without ``optimizer_bytes`` is taken to train with the runtime's default optimizer, SGD with
momentum (one buffer per parameter).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mpsl.profile.format import LayerProfile, Profile
from mpsl.split import part_ranges


def _layers(profile: Profile, first: int, last: int) -> list[LayerProfile]:
    return profile.layers[first - 1 : last]


def optimizer_state_bytes(layer: LayerProfile) -> int:
    """The layer's optimizer state; not measured: one momentum buffer (the runtime's default SGD
    with momentum keeps one per parameter)."""
    return layer.param_bytes if layer.optimizer_bytes is None else layer.optimizer_bytes


def part_state_bytes(profile: Profile, first: int, last: int) -> int:
    """Weights, buffers and optimizer state: what one instance of layers first..last keeps."""
    return sum(
        lp.param_bytes + (lp.buffer_bytes or 0) + optimizer_state_bytes(lp)
        for lp in _layers(profile, first, last)
    )


def part_grad_bytes(profile: Profile, first: int, last: int) -> int:
    """Gradients of one instance of layers first..last (from its backward to its optimizer step)."""
    return sum(
        lp.param_bytes if lp.grad_bytes is None else lp.grad_bytes
        for lp in _layers(profile, first, last)
    )


def part_activation_bytes(profile: Profile, first: int, last: int, scale: float = 1.0) -> int:
    """What one batch leaves behind for backward in layers first..last.

    Measured profiles: the layers' ``saved_bytes``, less each tensor between two layers of the part
    that both keep (the output of one is the input of the next). Otherwise: the part's input and
    every layer's output. ``scale`` is (batch size trained) / (profile's batch size).
    """
    layers = _layers(profile, first, last)
    if all(lp.saved_bytes is not None for lp in layers):
        total = sum(lp.saved_bytes or 0 for lp in layers)
        total -= sum(
            a.output_bytes
            for a, b in itertools.pairwise(layers)
            if a.saves_output and b.saves_input
        )
    else:
        inputs = profile.layers[first - 2].output_bytes if first > 1 else (profile.input_bytes or 0)
        total = inputs + sum(lp.output_bytes for lp in layers)
    return round(total * scale)


def node_memory_bytes(
    profile: Profile,
    first: int,
    last: int,
    owners: int,
    in_flight: int | None = None,
    scale: float = 1.0,
) -> int:
    """Peak bytes at a compute node hosting layers first..last for ``owners`` data owners."""
    batches = owners if in_flight is None else min(in_flight, owners)
    state = owners * part_state_bytes(profile, first, last) + part_grad_bytes(profile, first, last)
    return state + batches * part_activation_bytes(profile, first, last, scale)


@dataclass(frozen=True)
class NodeMemory:
    """A compute node's memory under a budget (docs/memory.md) and what the budget costs."""

    bytes: int  # peak bytes, at most the budget (or the floor: one instance and one batch)
    unbudgeted_bytes: int  # node_memory_bytes: every instance resident
    resident: int  # instances that fit (K without a budget or when all fit)
    owners: int  # K
    instance_bytes: int  # weights, buffers and optimizer state of one instance

    @property
    def swapped(self) -> int:
        """Instances that do not fit: K - resident."""
        return self.owners - self.resident

    def swap_ms(self, swap_bytes_per_s: float) -> float:
        """Expected swap time a forward task pays: 2 x instance bytes (write the slot's previous
        instance, read this one) over the disk rate, for the (K - resident) / K of the instances
        that are not resident. A backward finds its instance pinned (resident) since its forward."""
        if self.swapped <= 0:
            return 0.0
        return 1000.0 * 2 * self.instance_bytes / swap_bytes_per_s * self.swapped / self.owners


def budgeted_node_memory(
    profile: Profile,
    first: int,
    last: int,
    owners: int,
    budget: float | None,
    scale: float = 1.0,
) -> NodeMemory:
    """A node's memory with ``budget`` bytes (None: no budget, exactly node_memory_bytes).

    The runtime counts ``resident x instance + gradients + activations of batches in flight`` and
    pins an instance from its forward to its backward, so at most one batch in flight per resident
    instance: resident = (budget - gradients) // (instance + one batch), at least 1, at most K.
    """
    full = node_memory_bytes(profile, first, last, owners, scale=scale)
    state = part_state_bytes(profile, first, last)
    if budget is None or full <= budget:
        return NodeMemory(full, full, owners, owners, state)
    grad = part_grad_bytes(profile, first, last)
    act = part_activation_bytes(profile, first, last, scale)
    resident = min(owners, max(1, int((budget - grad) // max(1, state + act))))
    return NodeMemory(resident * (state + act) + grad, full, resident, owners, state)


def owner_memory_bytes(profile: Profile, cuts: Sequence[int], scale: float = 1.0) -> int:
    """Peak bytes at a data owner: its first and last part, one batch in flight.

    The first part's saved activations live from its forward to its backward, across the last
    part's whole step; gradients exist for one part at a time.
    """
    ranges = part_ranges(cuts, profile.num_layers)
    (f1, l1), (fp, lp) = ranges[0], ranges[-1]
    return (
        part_state_bytes(profile, f1, l1)
        + part_state_bytes(profile, fp, lp)
        + max(part_grad_bytes(profile, f1, l1), part_grad_bytes(profile, fp, lp))
        + part_activation_bytes(profile, f1, l1, scale)
        + part_activation_bytes(profile, fp, lp, scale)
    )


def paper_node_memory_bytes(profile: Profile, first: int, last: int, owners: int) -> int:
    """The published ILP's memory: K x sum over the part's layers of (output + param bytes)."""
    layers = profile.layers[first - 1 : last]
    return owners * sum(lp.output_bytes + lp.param_bytes for lp in layers)


def memory_by_role(
    profile: Profile,
    cuts: Sequence[int],
    owners: int,
    nodes: Sequence[str],
    scale: float = 1.0,
    budgets: Mapping[str, float | None] | None = None,
) -> dict[str, int]:
    """Peak bytes per compute node (by name) and per data owner (key ``data_owner``); a node with
    a budget in ``budgets`` is capped by it (budgeted_node_memory)."""
    ranges = part_ranges(cuts, profile.num_layers)
    budgets = budgets or {}
    result = {
        name: budgeted_node_memory(
            profile, first, last, owners, budgets.get(name), scale=scale
        ).bytes
        for name, (first, last) in zip(nodes, ranges[1:-1], strict=True)
    }
    result["data_owner"] = owner_memory_bytes(profile, cuts, scale)
    return result
