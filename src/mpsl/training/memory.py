"""Counting the tensor bytes a role holds: its parts' state and the activations autograd saves."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import torch
from torch import nn

T = TypeVar("T")


def state_bytes(module: nn.Module, optimizer: torch.optim.Optimizer | None) -> int:
    """Weights, buffers, gradients and optimizer state of one part instance."""
    total = sum(p.nbytes for p in module.parameters()) + sum(b.nbytes for b in module.buffers())
    total += sum(p.grad.nbytes for p in module.parameters() if p.grad is not None)
    if optimizer is not None:
        for st in optimizer.state.values():
            total += sum(v.nbytes for v in st.values() if isinstance(v, torch.Tensor))
    return total


@contextlib.contextmanager
def saved_storages(exclude: Iterable[nn.Parameter] = ()) -> Iterator[dict[int, int]]:
    """Collect the storages autograd saves for backward in the block (weights excluded), as
    {storage pointer: bytes}: each storage once, however many saved tensors view it."""
    skip = {p.untyped_storage().data_ptr() for p in exclude}
    kept: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            kept[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield kept


class SavedBytesMeter:
    """Bytes of ``saved_storages`` of a forward, measured once per kind of input and then reused.

    What autograd saves depends on the module and on the input's shape, dtype and whether it needs
    a gradient, not on its values. Measuring needs a Python hook call per saved tensor and a pass
    over the weights, on role threads that compete for the interpreter lock, every batch; so the
    hooks run on the first forward of each kind of input only.
    """

    def __init__(self) -> None:
        self._known: dict[tuple[object, ...], int] = {}

    def run(self, fn: Callable[[], T], module: nn.Module, x: torch.Tensor) -> tuple[T, int]:
        """``fn()`` (a forward of ``module`` on ``x``) and the activation bytes it saved."""
        key = (tuple(x.shape), x.dtype, x.requires_grad, module.training, torch.is_grad_enabled())
        known = self._known.get(key)
        if known is not None:
            return fn(), known
        with saved_storages(module.parameters()) as kept:
            result = fn()
        self._known[key] = sum(kept.values())
        return result, self._known[key]
