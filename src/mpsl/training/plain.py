"""Plain local training: the reference that MP-SL must reproduce, and the overhead baseline."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from mpsl.data.base import Labeled
from mpsl.training.fedavg import fedavg_trained
from mpsl.training.steps import OptimizerFactory, Workload, batch_plan, loss_fn, owner_seed


def train_steps(
    model: nn.Module,
    data: Labeled,
    batches: Sequence[torch.Tensor],
    optimizer: torch.optim.Optimizer | None,
) -> int:
    """SGD steps of the whole model over ``batches``; returns the samples seen."""
    seen = 0
    for idx in batches:
        loss = loss_fn(model(data.x[idx]), data.y[idx])
        loss.backward()
        if optimizer is not None:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        seen += len(idx)
    return seen


def fedavg_round(
    model: nn.Module,
    shares: Sequence[Labeled],
    workload: Workload,
    make_optimizer: OptimizerFactory,
    round_: int,
) -> dict[str, torch.Tensor]:
    """One FedAvg round of full models, each trained locally on one data owner's share with the
    same batches, order and optimizer an MP-SL data owner would use."""
    states, weights = [], []
    for k, data in enumerate(shares):
        local = copy.deepcopy(model)
        batches = batch_plan(
            len(data),
            workload.batch_size,
            workload.batches_per_epoch,
            workload.local_epochs,
            owner_seed(workload.seed, k, round_),
        )
        weights.append(train_steps(local, data, batches, make_optimizer(local)))
        states.append(local.state_dict())
    return fedavg_trained(states, weights)
