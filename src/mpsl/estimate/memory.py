"""Memory model: what each compute node and each data owner must hold during training.

A compute node keeps K instances of its part (weights, gradients, optimizer state) and, for every
batch in flight, the activations its layers saved for backward plus the input it received. With one
batch in flight per data owner, up to K batches can be in flight at a node: we size for that
worst case (``in_flight`` lowers it).
"""

from __future__ import annotations

from collections.abc import Sequence

from mpsl.profile.format import Profile
from mpsl.split import part_ranges


def part_state_bytes(profile: Profile, first: int, last: int) -> int:
    """Weights + gradients + optimizer state of one instance of layers first..last."""
    return sum(profile.layers[i - 1].train_state_bytes for i in range(first, last + 1))


def part_activation_bytes(profile: Profile, first: int, last: int, scale: float = 1.0) -> int:
    """Activations one batch leaves behind for backward in layers first..last, with its input.

    ``scale`` is (batch size trained) / (profile's batch size): activations grow with the batch.
    """
    inputs = profile.layers[first - 2].output_bytes if first > 1 else (profile.input_bytes or 0)
    total = inputs + sum(profile.layers[i - 1].output_bytes for i in range(first, last + 1))
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
    state = owners * part_state_bytes(profile, first, last)
    return state + batches * part_activation_bytes(profile, first, last, scale)


def paper_node_memory_bytes(profile: Profile, first: int, last: int, owners: int) -> int:
    """The published ILP's memory: K x sum over the part's layers of (output + param bytes)."""
    layers = profile.layers[first - 1 : last]
    return owners * sum(lp.output_bytes + lp.param_bytes for lp in layers)


def memory_by_role(
    profile: Profile, cuts: Sequence[int], owners: int, nodes: Sequence[str], scale: float = 1.0
) -> dict[str, int]:
    """Peak bytes per compute node (by name) and per data owner (key ``data_owner``)."""
    ranges = part_ranges(cuts, profile.num_layers)
    result = {
        name: node_memory_bytes(profile, first, last, owners, scale=scale)
        for name, (first, last) in zip(nodes, ranges[1:-1], strict=True)
    }
    (f1, l1), (fp, lp) = ranges[0], ranges[-1]
    result["data_owner"] = (
        part_state_bytes(profile, f1, l1)
        + part_state_bytes(profile, fp, lp)
        + part_activation_bytes(profile, f1, l1, scale)
        + part_activation_bytes(profile, fp, lp, scale)
    )
    return result
