"""MP-SL must compute exactly what FedAvg of locally trained full models computes."""

from __future__ import annotations

import copy

import pytest
import torch

from mpsl.data import partition
from mpsl.data.synthetic import load_synthetic
from mpsl.models import build_model
from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import InProcessEngine
from mpsl.runtime.setup import optimizer_factory
from mpsl.training.plain import fedavg_round
from mpsl.training.steps import Workload


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


# None: every instance resident; 1 byte: the smallest budget, a swap on every task.
@pytest.mark.parametrize("budget", [None, 1])
@pytest.mark.parametrize("scheduling", ["cooperative", "threads"])
@pytest.mark.parametrize(
    ("model", "cuts", "optimizer", "partitioning"),
    [
        ("digits_cnn", [1, 3, 5], "sgd", "iid"),  # P = 4
        ("digits_cnn", [2, 4], "adam", "dirichlet"),  # P = 3
        ("lenet5", [1, 2, 4, 6], "sgd", "dirichlet"),  # P = 5
    ],
)
def test_one_round_equivalence_with_fedavg_of_local_training(
    model, cuts, optimizer, partitioning, scheduling, budget
):
    shape = (1, 8, 8) if model == "digits_cnn" else (1, 16, 16)
    data = load_synthetic(shape, 10, train_size=96, test_size=16, seed=3)
    cfg = RunConfig(
        model=model,
        dataset="synthetic",
        input_shape=list(shape),
        data_owners=3,
        cuts=cuts,
        rounds=1,
        local_epochs=2,
        batch_size=8,
        optimizer=optimizer,
        lr=0.01 if optimizer == "adam" else 0.05,
        partition=partitioning,
        alpha=1.0,
        seed=11,
        node_memory_budget=budget,
    )
    start = build_model(model, 10, shape, seed=5)
    reference_start = copy.deepcopy(start)
    result = InProcessEngine(cfg, dataset=data, model=start, scheduling=scheduling).run()

    shares_idx = partition(data.train.y.numpy(), 3, partitioning, 1.0, 11)
    shares = [data.train.subset(torch.from_numpy(i)) for i in shares_idx]
    workload = Workload(cfg.batch_size, cfg.local_epochs, cfg.batches_per_epoch, cfg.seed)
    expected = fedavg_round(reference_start, shares, workload, optimizer_factory(cfg), round_=0)

    assert _max_diff(result.model.state_dict(), expected) < 1e-5
    # and training really moved the weights (the check above is not vacuous)
    assert _max_diff(reference_start.state_dict(), expected) > 1e-3


@pytest.mark.parametrize("budget", [None, 1])
@pytest.mark.parametrize("scheduling", ["cooperative", "threads"])
def test_rounds_after_the_first_still_match_fedavg_of_local_training(scheduling, budget):
    """Round two starts compute nodes' reused part instances from the averaged weights."""
    shape = (1, 8, 8)
    data = load_synthetic(shape, 10, train_size=72, test_size=8, seed=4)
    cfg = RunConfig(
        dataset="synthetic",
        input_shape=list(shape),
        data_owners=3,
        cuts=[1, 3, 5],
        rounds=2,
        local_epochs=1,
        batch_size=8,
        seed=7,
        node_memory_budget=budget,
    )
    start = build_model("digits_cnn", 10, shape, seed=2)
    reference = copy.deepcopy(start)
    result = InProcessEngine(cfg, dataset=data, model=start, scheduling=scheduling).run()

    shares_idx = partition(data.train.y.numpy(), 3, "iid", 0.5, 7)
    shares = [data.train.subset(torch.from_numpy(i)) for i in shares_idx]
    workload = Workload(cfg.batch_size, cfg.local_epochs, cfg.batches_per_epoch, cfg.seed)
    after_first = fedavg_round(reference, shares, workload, optimizer_factory(cfg), round_=0)
    reference.load_state_dict(after_first)
    expected = fedavg_round(reference, shares, workload, optimizer_factory(cfg), round_=1)

    assert _max_diff(result.model.state_dict(), expected) < 1e-5
    assert _max_diff(after_first, expected) > 1e-3


@pytest.mark.parametrize("scheduling", ["cooperative", "threads"])
def test_runs_are_deterministic_whatever_the_arrival_order(scheduling):
    """FedAvg sums in data-owner order, not in the order the threads happened to finish."""
    data = load_synthetic((1, 8, 8), 10, train_size=64, test_size=8, seed=1)
    cfg = RunConfig(dataset="synthetic", data_owners=4, cuts=[1, 3, 5], rounds=1, batch_size=8)
    states = [
        InProcessEngine(
            cfg,
            dataset=data,
            model=build_model("digits_cnn", 10, (1, 8, 8), seed=0),
            scheduling=scheduling,
        )
        .run()
        .model.state_dict()
        for _ in range(2)
    ]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
