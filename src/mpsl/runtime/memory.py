"""Counting the tensor bytes a role holds: its parts' state and the activations autograd saves."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn


def state_bytes(module: nn.Module, optimizer: torch.optim.Optimizer | None) -> int:
    """Weights, buffers, gradients and optimizer state of one part instance."""
    total = sum(p.nbytes for p in module.parameters()) + sum(b.nbytes for b in module.buffers())
    total += sum(p.grad.nbytes for p in module.parameters() if p.grad is not None)
    if optimizer is not None:
        for st in optimizer.state.values():
            total += sum(v.nbytes for v in st.values() if isinstance(v, torch.Tensor))
    return total


@contextlib.contextmanager
def saved_bytes(counter: list[int], exclude: Iterable[nn.Parameter] = ()) -> Iterator[None]:
    """Add to ``counter[0]`` the bytes of tensors autograd saves for backward (weights excluded)."""
    skip = {p.untyped_storage().data_ptr() for p in exclude}
    seen: set[int] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in skip and ptr not in seen:
            seen.add(ptr)
            counter[0] += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield
