"""Cut lists and parts: a cut list c0 < c1 < ... < cN splits a chain of S layers into N + 2 parts.

The data owner holds layers 1..c0 (the first part) and cN+1..S (the last part); compute node i holds
c(i-1)+1..c(i). Layers are numbered from 1, as in profiles.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from torch import nn

from mpsl.errors import CutError
from mpsl.models.chain import LayerChain


def check_cuts(cuts: Sequence[int], num_layers: int, model: str = "the model") -> tuple[int, ...]:
    """Validate a cut list against a chain of ``num_layers`` layers; return it as a tuple."""
    cuts = tuple(int(c) for c in cuts)
    if len(cuts) < 2:
        raise CutError(
            f"a cut list needs at least 2 cuts (first part | compute-node parts | last part); "
            f"got {list(cuts)}"
        )
    for c in cuts:
        if not 1 <= c <= num_layers - 1:
            raise CutError(
                f"cut {c} is outside {model}'s layers 1..{num_layers}; "
                f"choose cuts in 1..{num_layers - 1} so that no part is empty"
            )
    for a, b in itertools.pairwise(cuts):
        if b <= a:
            raise CutError(
                f"cuts must increase strictly (each part needs at least one layer); "
                f"{b} follows {a} in {list(cuts)}"
            )
    return cuts


def part_ranges(cuts: Sequence[int], num_layers: int) -> list[tuple[int, int]]:
    """1-based inclusive (first, last) layer of each part, data owner's first part first."""
    bounds = [0, *check_cuts(cuts, num_layers), num_layers]
    return [(a + 1, b) for a, b in itertools.pairwise(bounds)]


def split_model(chain: LayerChain, cuts: Sequence[int]) -> list[nn.Sequential]:
    """The P = len(cuts) + 1 parts of ``chain``; they share modules with it."""
    check_cuts(cuts, chain.num_layers, chain.model_name)
    children = list(chain.named_children())
    parts = []
    for first, last in part_ranges(cuts, chain.num_layers):
        part = nn.Sequential()
        for name, layer in children[first - 1 : last]:
            part.add_module(name, layer)
        parts.append(part)
    return parts


def even_cuts(num_layers: int, compute_nodes: int) -> tuple[int, ...]:
    """A default cut list: the data owner keeps the first and last layer, the middle is shared
    as evenly as layer counts allow among ``compute_nodes`` nodes."""
    middle = num_layers - 2
    if compute_nodes < 1:
        raise CutError(f"need at least 1 compute node; got {compute_nodes}")
    if compute_nodes > middle:
        raise CutError(
            f"{compute_nodes} compute nodes need at least {compute_nodes} middle layers; "
            f"the model has {num_layers} layers, so at most {middle} compute nodes"
        )
    return equal_cuts(1, num_layers - 1, compute_nodes)


def equal_cuts(first_cut: int, last_cut: int, compute_nodes: int) -> tuple[int, ...]:
    """Full cut list giving each of ``compute_nodes`` nodes the same number of the layers
    first_cut+1..last_cut (as near as integers allow): the split a person picks by counting."""
    middle = last_cut - first_cut
    if not 1 <= compute_nodes <= middle:
        raise CutError(
            f"{compute_nodes} compute nodes cannot share the {middle} layers "
            f"{first_cut + 1}..{last_cut}; choose 1..{max(middle, 1)} compute nodes"
        )
    ends = (first_cut + round(i * middle / compute_nodes) for i in range(1, compute_nodes + 1))
    return (first_cut, *ends)
