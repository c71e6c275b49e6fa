"""Pieces of training shared by the roles and by plain local training: loss, optimizer, batches,
and FedAvg. Keeping them in one place is what makes MP-SL and local training comparable."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mpsl.data.base import Labeled


def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy; token models' (B, T, V) logits are flattened against (B, T) targets."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


_FUSED_DEVICES = ("cpu", "cuda")  # where torch has fused SGD and Adam kernels


OptimizerFactory = Callable[[nn.Module], torch.optim.Optimizer | None]
"""Makes the optimizer of one part instance (None for a part without parameters)."""


def make_optimizer(
    params: Sequence[nn.Parameter] | Iterator[nn.Parameter],
    kind: str,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer | None:
    """SGD (with momentum) or Adam over ``params``; None for a part without parameters."""
    params = list(params)
    if not params:
        return None
    # The fused step is one kernel call instead of a Python loop over the parameters: on a
    # digits_cnn batch it cut a step from 32 to 18 us, and the loop held the interpreter lock that
    # every role thread of the in-process engine competes for. Same update, bit for bit, for SGD.
    fused = all(p.is_floating_point() and p.device.type in _FUSED_DEVICES for p in params)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)
    return torch.optim.SGD(
        params, lr=lr, momentum=momentum, weight_decay=weight_decay, fused=fused or None
    )


@dataclass(frozen=True)
class Workload:
    """How much a data owner trains each round."""

    batch_size: int
    local_epochs: int
    batches_per_epoch: int | None
    seed: int


def batch_plan(
    samples: int, batch_size: int, batches_per_epoch: int | None, epochs: int, seed: int
) -> list[torch.Tensor]:
    """Sample indices of every batch of ``epochs`` local epochs, reshuffled each epoch.

    With ``batches_per_epoch`` an epoch is that many batches (wrapping around the data);
    otherwise an epoch is one pass over all samples.
    """
    gen = torch.Generator().manual_seed(seed)
    per_epoch = batches_per_epoch or -(-samples // batch_size)
    batches = []
    for _ in range(epochs):
        order = torch.randperm(samples, generator=gen)
        need = per_epoch * batch_size
        if need > samples and batches_per_epoch:
            reps = -(-need // samples)
            order = torch.cat(
                [order] + [torch.randperm(samples, generator=gen) for _ in range(reps - 1)]
            )
        for b in range(per_epoch):
            chunk = order[b * batch_size : (b + 1) * batch_size]
            if len(chunk):
                batches.append(chunk)
    return batches


def owner_seed(seed: int, owner: int, round_: int) -> int:
    """The data-order seed of one data owner in one round."""
    return (seed * 1_000_003 + owner * 10_007 + round_) % (2**31)


def evaluate(model: nn.Module, data: Labeled, batch_size: int = 512) -> tuple[float, float]:
    """(mean loss, accuracy) of ``model`` on ``data``."""
    was_training = model.training
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for i in range(0, len(data), batch_size):
            x, y = data.x[i : i + batch_size], data.y[i : i + batch_size]
            logits = model(x)
            loss_sum += float(loss_fn(logits, y)) * y.numel()
            correct += int((logits.argmax(dim=-1) == y).sum())
            count += y.numel()
    model.train(was_training)
    return loss_sum / max(count, 1), correct / max(count, 1)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads in this thread (None: leave as is)."""
    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
