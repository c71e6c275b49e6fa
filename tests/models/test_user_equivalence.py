"""A traced user model trains under MP-SL exactly as FedAvg of the user's own module would."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from mpsl.data.synthetic import load_synthetic
from mpsl.models import build_model
from mpsl.models.user import load_function
from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import InProcessEngine
from mpsl.runtime.setup import optimizer_factory, owner_shares
from mpsl.training.plain import fedavg_round
from mpsl.training.steps import Workload

MODELS = Path(__file__).parent / "user_models.py"


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.mark.parametrize(
    ("function", "shape", "classes", "cuts", "optimizer"),
    [
        ("resnet", (3, 8, 8), 10, [2, 3, 4], "sgd"),  # BatchNorm buffers averaged too
        ("transformer", (8,), 32, [1, 3, 5], "adam"),  # attention, LayerNorm, token input
        ("functional", (1, 8, 8), 10, [1, 3], "sgd"),  # F.relu, torch.flatten, x + y
    ],
)
def test_one_round_equals_fedavg_of_the_users_own_module(function, shape, classes, cuts, optimizer):
    spec = f"{MODELS}:{function}"
    tokens = len(shape) == 1
    data = load_synthetic(shape, classes, train_size=48, test_size=8, seed=3, tokens=tokens)
    cfg = RunConfig(
        model=spec,
        dataset="synthetic",
        input_shape=list(shape),
        num_classes=classes,
        data_owners=3,
        cuts=cuts,
        rounds=1,
        local_epochs=2,
        batch_size=8,
        optimizer=optimizer,
        lr=0.01 if optimizer == "adam" else 0.05,
        seed=11,
    )
    # the user's own module, built the way build_model builds it (same seed, same weights)
    torch.manual_seed(5)
    own = load_function(spec)(num_classes=classes, input_shape=shape)
    chain = build_model(spec, classes, shape, seed=5)
    assert _max_diff(chain.source_state_dict(), own.state_dict()) == 0

    result = InProcessEngine(cfg, dataset=data, model=chain).run()

    shares = owner_shares(cfg, data)
    workload = Workload(cfg.batch_size, cfg.local_epochs, cfg.batches_per_epoch, cfg.seed)
    start = copy.deepcopy(own.state_dict())
    expected = fedavg_round(own, shares, workload, optimizer_factory(cfg), round_=0)

    assert _max_diff(result.model.source_state_dict(), expected) < 1e-5
    assert _max_diff(start, expected) > 1e-3  # training moved the weights
